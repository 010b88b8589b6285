"""PostgreSQL connections with a deadline on every round trip (README.md, "Database").

PostgreSQL ends a slow statement itself (``statement_timeout``) and libpq
bounds opening a connection (``connect_timeout``), but nothing bounds the wait
for an answer that never comes: libpq has no read timeout, and TCP notices a
peer that vanished only after many minutes of retransmissions. A database
host that dies or drops off the network would hold requests, and the pool's
connections, for that long. So every wait for the server here has a
deadline, as a socket read timeout would: past it, the connection's socket
is shut down, psycopg fails the operation as a lost connection (raised as
``NoAnswer``), the pool discards the connection and the request gets 503.

- A statement (and a commit or rollback) may take DB_STATEMENT_TIMEOUT +
  DB_CONNECT_TIMEOUT: the server cancels it at the first, the second allows
  for the network.
- Checking a pooled connection before use (``checking``) may take
  DB_CONNECT_TIMEOUT, as opening one may.

On a real network, TCP keepalives and ``tcp_user_timeout`` (``libpq_options``)
also close connections whose peer is gone, before a request picks them.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.abc import PQGen
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

from .config import Settings

# Probes of an idle connection: the first after 30 s of silence, then every
# 10 s (libpq's keepalives_* parameters). A probe or any data left
# unacknowledged for as long as a statement may take closes the connection
# (tcp_user_timeout), before three probes would.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 30, 10, 3

# A pooled connection given back this recently is reused without a check (a
# round trip per request otherwise; HikariCP's aliveBypassWindowMs is the same
# 500 ms): one that died meanwhile fails its statement, a 503 like a failed
# check, and the pool drops it.
CHECK_AFTER_IDLE = 0.5


class NoAnswer(psycopg.OperationalError):
    """The database did not answer within the round trip's deadline."""


def statement_deadline(settings: Settings) -> float:
    return settings.db_statement_timeout + settings.db_connect_timeout


def libpq_options(settings: Settings) -> dict[str, Any]:
    """psycopg's connection parameters beyond where to connect: those of
    ``DATABASE_URL``'s query string, then timeouts, keepalives and the service's name."""
    return {
        **dict(settings.database.options),
        # libpq counts whole seconds and treats anything below 2 as 2.
        "connect_timeout": max(2, math.ceil(settings.db_connect_timeout)),
        "options": f"-c statement_timeout={int(settings.db_statement_timeout * 1000)}",
        "application_name": settings.service_name,
        "keepalives": 1,
        "keepalives_idle": KEEPALIVE_IDLE,
        "keepalives_interval": KEEPALIVE_INTERVAL,
        "keepalives_count": KEEPALIVE_COUNT,
        "tcp_user_timeout": int(statement_deadline(settings) * 1000),
    }


def shut_down(fileno: int) -> None:
    """Wake a poll on the socket with end-of-file: shut down a second descriptor
    of it, so the connection's own stays open until psycopg closes it."""
    with contextlib.suppress(OSError):
        duplicate = os.dup(fileno)
        with socket.socket(fileno=duplicate) as sock:
            sock.shutdown(socket.SHUT_RDWR)


class Watch:
    """A connection's deadline, set again for each of its waits (one at a time)."""

    __slots__ = ("__weakref__", "expires", "fileno", "fired", "generation", "on")

    def __init__(self) -> None:
        self.expires = 0.0
        self.fileno = -1
        self.fired = False
        self.on = False
        self.generation = 0  # of the _Watchdog state that knows this watch (none yet)


class _Watchdog:
    """One thread per process that fires the deadlines of blocking waits.

    It looks ten times a second, whether or not a wait is under way: waking it
    for each wait would cost a thread switch per database round trip, and
    deadlines are seconds long, so a tenth of a second late is on time. Each
    connection has one ``Watch`` that its waits set and clear: two uncontended
    locks, 1.07 µs a wait against 4.8 for a new deadline on a heap (timeit).
    """

    def __init__(self) -> None:
        self._generation = 0
        self._forked()
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        # A lock held by a thread of the parent would stay held in the child.
        self._lock = threading.Lock()
        self._watches: weakref.WeakSet[Watch] = weakref.WeakSet()
        self._generation += 1
        self._running = False

    def arm(self, watch: Watch, fileno: int, seconds: float) -> None:
        expires = time.monotonic() + seconds
        with self._lock:
            if watch.generation != self._generation:  # new, or made before a fork
                watch.generation = self._generation
                self._watches.add(watch)
                if not self._running:
                    self._running = True
                    threading.Thread(target=self._run, name="db-deadlines", daemon=True).start()
            watch.fileno, watch.expires, watch.fired, watch.on = fileno, expires, False, True

    def disarm(self, watch: Watch) -> None:
        with self._lock:  # never fires once this returns
            watch.on = False

    def _run(self) -> None:
        while True:
            time.sleep(0.1)
            with self._lock:
                now = time.monotonic()
                for watch in list(self._watches):
                    if watch.on and watch.expires <= now:
                        watch.on, watch.fired = False, True
                        shut_down(watch.fileno)


_watchdog = _Watchdog()


def no_answer(seconds: float) -> NoAnswer:
    return NoAnswer(f"no answer from the database within {seconds:g}s")


class Deadlines:
    """The deadlines of a connection's waits for the server."""

    statement_deadline = 60.0
    check_deadline = 10.0
    _checking = False

    def set_deadlines(self, settings: Settings) -> None:
        self.statement_deadline = statement_deadline(settings)
        self.check_deadline = settings.db_connect_timeout

    @contextlib.contextmanager
    def checking(self) -> Iterator[None]:
        """Round trips in this block are a check of the connection."""
        self._checking = True
        try:
            yield
        finally:
            self._checking = False

    @property
    def wait_deadline(self) -> float:
        return self.check_deadline if self._checking else self.statement_deadline


class Connection(Deadlines, psycopg.Connection[TupleRow]):
    """psycopg's connection; every wait for the server has a deadline."""

    @classmethod
    def open(cls, settings: Settings, conninfo: str = "", **kwargs: Any) -> Connection:
        connection = cls.connect(conninfo, **kwargs)
        connection.set_deadlines(settings)
        return connection

    _watch: Watch | None = None

    def _set_autocommit(self, value: bool) -> None:
        # Django sets it at every checkout of a pooled connection, which has it
        # set already: unchanged outside a transaction there is nothing to check,
        # and psycopg would take its lock and run a wait for nothing.
        idle = self.pgconn.transaction_status == TransactionStatus.IDLE
        if bool(value) == self.autocommit and idle:
            return
        super()._set_autocommit(value)

    def wait(self, gen: PQGen[Any], *args: Any, **kwargs: Any) -> Any:
        seconds = self.wait_deadline
        watch = self._watch
        if watch is None:
            watch = self._watch = Watch()
        _watchdog.arm(watch, self.pgconn.socket, seconds)
        try:
            return super().wait(gen, *args, **kwargs)
        except psycopg.OperationalError as error:
            if watch.fired:
                raise no_answer(seconds) from error
            raise
        finally:
            _watchdog.disarm(watch)
