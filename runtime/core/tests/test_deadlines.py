"""The deadlines of waits for the database (postgres.py): a wait past its deadline
has its socket shut down, a wait that ended never has, whatever happens next."""

from __future__ import annotations

import socket
import time

from . import runtime_module

postgres = runtime_module("postgres")
Watch, _watchdog = postgres.Watch, postgres._watchdog


def _shut(sock: socket.socket, within: float = 5.0) -> bool:
    """Whether the peer sees the socket shut down (end of file) ``within`` seconds:
    the watchdog looks ten times a second, later on a busy machine."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False


def test_a_wait_past_its_deadline_is_cut_and_told() -> None:
    ours, peer = socket.socketpair()
    with ours, peer:
        watch = Watch()
        _watchdog.arm(watch, ours.fileno(), 0.05)
        assert _shut(peer)
        _watchdog.disarm(watch)
        assert watch.fired


def test_a_wait_that_ended_is_never_cut() -> None:
    ours, peer = socket.socketpair()
    with ours, peer:
        watch = Watch()
        for _ in range(3):  # one watch, set again for each wait of its connection
            _watchdog.arm(watch, ours.fileno(), 0.05)
            _watchdog.disarm(watch)
        time.sleep(0.3)  # past the deadline, and the watchdog has looked twice
        assert not watch.fired
        ours.sendall(b"x")
        assert peer.recv(1) == b"x"


def test_each_wait_gets_its_own_deadline() -> None:
    first, first_peer = socket.socketpair()
    ours, peer = socket.socketpair()
    with first, first_peer, ours, peer:
        watch = Watch()
        _watchdog.arm(watch, first.fileno(), 0.05)
        assert _shut(first_peer)
        _watchdog.disarm(watch)
        _watchdog.arm(watch, ours.fileno(), 30)  # the next wait, a long one
        try:
            assert not watch.fired
            assert not _shut(peer, within=0.5)
        finally:
            _watchdog.disarm(watch)
