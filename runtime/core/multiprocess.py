"""The ``/metrics`` body in multiprocess mode, from the workers' files.

Written here because prometheus_client's ``MultiProcessCollector`` decodes
every key of every file, validates every label and builds a sample object
for each value on every scrape: about a second for 50 routes x all status
codes x 4 workers. A key never changes once written (values are updated in
place, new keys appended), so this reader parses each entry once and keeps
where its value lies and which output line it adds to. A scrape then reads
each file, unpacks its values in one ``struct`` call, adds them up and joins
lines rendered in advance. The result is what prometheus_client renders for
the same files, in the text format and in OpenMetrics; what this reader does
not know (another file type, a name that needs UTF-8 quoting) raises
``Unsupported`` so the caller can fall back to prometheus_client.
"""

from __future__ import annotations

import json
import operator
import os
import re
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate

from prometheus_client import utils

_LEGACY_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LEGACY_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_INT = struct.Struct("<i")
_NOTHING = struct.Struct("")
_SUMMED = frozenset(("counter", "histogram", "summary"))
_SUM_MODES = frozenset(("sum", "livesum"))
_GAUGE_MODES = _SUM_MODES | {"all", "liveall", "min", "livemin", "max", "livemax", "mostrecent"}
_GAUGE_MODES |= {"livemostrecent"}

Labels = tuple[tuple[str, str], ...]
_go_float: Callable[[float], str] = utils.floatToGoString


class Unsupported(Exception):
    """The files hold something this reader leaves to prometheus_client."""


def _labels(pairs: Labels) -> str:
    if not pairs:
        return ""
    escaped = (
        (name, value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\""))
        for name, value in sorted(pairs)
    )
    return "{" + ",".join(f'{name}="{value}"' for name, value in escaped) + "}"


def _numbers(values: list[float]) -> list[str]:
    """Values as prometheus_client writes them (Go's float format)."""
    if not values:
        return []
    total = sum(values)
    # A NaN (or inf - inf) makes the total NaN, the one value not equal to itself.
    if total == total and max(values) < 1e6 and min(values) > -1e6:
        return list(map(repr, values))  # where repr and Go agree
    return list(map(_go_float, values))


def _gather(indices: Sequence[int]) -> Callable[[Sequence[float]], tuple[float, ...]]:
    """A function picking ``indices`` out of a sequence, as a tuple, at C speed."""
    if len(indices) > 1:
        return operator.itemgetter(*indices)
    return lambda seq: tuple(seq[i] for i in indices)


def _histogram_numbers(values: list[float], buckets: tuple[int, ...], total: int) -> list[float]:
    """One label set's cumulative buckets, its count and (if it has one) its sum."""
    numbers = list(accumulate(values[s] for s in buckets))
    numbers.append(numbers[-1] if numbers else 0.0)
    if total >= 0:
        numbers.append(values[total])
    return numbers


@dataclass
class _Family:
    name: str
    kind: str
    documentation: str
    # Counters, gauges, summaries: one line per slot.
    series: list[tuple[str, int]] = field(default_factory=list)
    # Histograms: per label set (without ``le``), the bucket slots by bound and the sum's slot.
    buckets: dict[Labels, dict[float, int]] = field(default_factory=dict)
    sums: dict[Labels, int] = field(default_factory=dict)
    # Rendered when the family changes: line prefixes, and per label set the bucket slots.
    prefixes: list[str] = field(default_factory=list)
    ordered: list[tuple[tuple[int, ...], int]] = field(default_factory=list)
    slots: frozenset[int] = frozenset()
    stale: bool = True

    def layout(self) -> None:
        if self.kind == "histogram":
            self.prefixes, self.ordered = [], []
            for labels, by_bound in self.buckets.items():
                bounds = sorted(by_bound)
                self.ordered.append((tuple(by_bound[b] for b in bounds), self.sums.get(labels, -1)))
                self.prefixes.extend(
                    f"{self.name}_bucket{_labels((*labels, ('le', _go_float(b))))} " for b in bounds
                )
                self.prefixes.append(f"{self.name}_count{_labels(labels)} ")
                if labels in self.sums:
                    self.prefixes.append(f"{self.name}_sum{_labels(labels)} ")
            self.slots = frozenset(
                s for buckets, total in self.ordered for s in (*buckets, total) if s >= 0
            )
        else:
            self.prefixes = [prefix for prefix, _ in self.series]
            self.slots = frozenset(slot for _, slot in self.series)
        self.stale = False

    def lines(self, values: list[float], present: set[int]) -> str:
        if self.stale:
            self.layout()
        if not self.slots <= present:  # some files are gone: the slow way, rarely
            return self._lines_of_present(values, present)
        if self.kind == "histogram":
            numbers: list[float] = []
            for buckets, total in self.ordered:
                numbers.extend(_histogram_numbers(values, buckets, total))
        else:
            numbers = [values[slot] for _, slot in self.series]
        return "".join(map("{}{}\n".format, self.prefixes, _numbers(numbers)))

    def _lines_of_present(self, values: list[float], present: set[int]) -> str:
        if self.kind != "histogram":
            kept = [(prefix, slot) for prefix, slot in self.series if slot in present]
            texts = _numbers([values[slot] for _, slot in kept])
            return "".join(map("{}{}\n".format, [prefix for prefix, _ in kept], texts))
        found: list[str] = []
        at = 0
        for buckets, total in self.ordered:
            width = len(buckets) + 1 + (total >= 0)
            if any(s in present for s in buckets):
                numbers = _numbers(_histogram_numbers(values, buckets, total))
                found.extend(map("{}{}\n".format, self.prefixes[at : at + width], numbers))
            at += width
        return "".join(found)


@dataclass
class _File:
    """What was parsed of one worker's file, up to ``parsed``."""

    inode: int
    kind: str
    mode: str
    pid: str
    parsed: int = 8
    positions: list[int] = field(default_factory=list)  # of each entry's value
    slots: list[int] = field(default_factory=list)
    unpack: struct.Struct = _NOTHING
    # Summed files: their values in slot order (0.0 where the file has no such slot).
    in_slot_order: Callable[[Sequence[float]], tuple[float, ...]] | None = None
    width: int = 0  # how many slots there were when ``in_slot_order`` was made

    @property
    def summed(self) -> bool:
        """Whether the workers' values add up (counters, histograms, summed gauges)."""
        return self.kind in _SUMMED or self.mode in _SUM_MODES


class MultiprocessScrape:
    """Renders the merged metrics of a ``PROMETHEUS_MULTIPROC_DIR``; one per process."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._files: dict[str, _File] = {}
        self._families: dict[str, _Family] = {}
        self._keys: dict[tuple[str, str, str], int] = {}  # (kind, mode, key) -> slot
        self._slots = 0
        self._unsupported = ""
        self._present_key: tuple[tuple[int, int], ...] = ()
        self._present_slots: set[int] = set()

    def render(self, openmetrics: bool) -> str:
        """The families in the text format (0.0.4) or OpenMetrics, without ``# EOF``."""
        with self._lock:
            if self._unsupported:
                raise Unsupported(self._unsupported)
            try:
                values, present = self._collect()
            except Unsupported as error:
                self._unsupported = str(error)
                raise
            return "".join(self._render(values, present, openmetrics))

    def _collect(self) -> tuple[list[float], set[int]]:
        names = sorted(n for n in os.listdir(self._path) if n.endswith(".db"))
        for gone in set(self._files) - set(names):
            del self._files[gone]
        reads: list[tuple[_File, bytes]] = []
        for name in names:
            try:
                with open(os.path.join(self._path, name), "rb") as stream:
                    inode = os.fstat(stream.fileno()).st_ino
                    head = stream.read(4)
                    used = _INT.unpack(head)[0] if len(head) == 4 else 0
                    data = bytes(4) + stream.read(max(used - 4, 0))
            except FileNotFoundError:  # a dead worker's live gauges, just removed
                continue
            if used < 8:  # a worker's file, created but not yet sized
                continue
            state = self._files.get(name)
            if state is None or state.inode != inode or used < state.parsed:
                state = self._files[name] = self._new_file(name, inode)
            if used > state.parsed:
                self._parse(state, data, used)
            reads.append((state, data))

        values = [0.0] * self._slots
        present = self._present(reads)
        others: list[tuple[_File, tuple[float, ...]]] = []
        for state, data in reads:
            unpacked = state.unpack.unpack_from(data)
            if state.summed:
                if state.in_slot_order is None or state.width != self._slots:
                    where = dict(zip(state.slots, range(len(state.slots)), strict=True))
                    nowhere = len(state.slots)  # the 0.0 appended below
                    order = [where.get(slot, nowhere) for slot in range(self._slots)]
                    state.in_slot_order = _gather(order)
                    state.width = self._slots
                values = list(map(operator.add, values, state.in_slot_order((*unpacked, 0.0))))
            else:
                others.append((state, unpacked))
        # Gauges that are not summed (a handful of series): value by value.
        latest: dict[int, float] = {}
        for state, unpacked in others:
            for slot, value, timestamp in zip(
                state.slots, unpacked[0::2], unpacked[1::2], strict=True
            ):
                if slot not in latest:
                    values[slot] = value
                    latest[slot] = timestamp
                elif state.mode in ("min", "livemin"):
                    values[slot] = min(values[slot], value)
                elif state.mode in ("max", "livemax"):
                    values[slot] = max(values[slot], value)
                elif timestamp > latest[slot]:  # mostrecent ("all" has a slot per process)
                    values[slot], latest[slot] = value, timestamp
        return values, present

    def _present(self, reads: list[tuple[_File, bytes]]) -> set[int]:
        """The slots some file has: the same until a file is added, grows or goes."""
        key = tuple((id(state), state.parsed) for state, _ in reads)
        if key != self._present_key:
            self._present_slots = set().union(*(state.slots for state, _ in reads))
            self._present_key = key
        return self._present_slots

    def _new_file(self, name: str, inode: int) -> _File:
        parts = name[: -len(".db")].split("_")
        if parts[0] in _SUMMED and len(parts) == 2:
            return _File(inode, parts[0], "", parts[1])
        if parts[0] == "gauge" and len(parts) == 3 and parts[1] in _GAUGE_MODES:
            return _File(inode, "gauge", parts[1], parts[2])
        raise Unsupported(name)

    def _parse(self, state: _File, data: bytes, used: int) -> None:
        position = state.parsed
        while position < used:
            length = _INT.unpack_from(data, position)[0]
            if position + 4 + length > used:
                raise Unsupported("an entry reaches past the used part of its file")
            key = data[position + 4 : position + 4 + length].decode("utf-8")
            position += 4 + length + (8 - (length + 4) % 8)
            state.positions.append(position)
            state.slots.append(self._slot(state, key))
            position += 16  # the value and its timestamp
        state.parsed = position
        # Summed files need only the values; the others need their timestamps too.
        entry = "d8x" if state.summed else "dd"
        layout, end = ["<"], 0
        for start in state.positions:
            layout.append(f"{start - end}x{entry}")
            end = start + 16
        state.unpack = struct.Struct("".join(layout))
        state.in_slot_order = None

    def _slot(self, state: _File, key: str) -> int:
        # "all" gauges keep a series per process, so the pid is part of the key.
        identity = (state.kind, state.mode, key if "all" not in state.mode else key + state.pid)
        slot = self._keys.get(identity)
        if slot is not None:
            return slot
        metric, sample, labels, documentation = json.loads(key)
        if not _LEGACY_NAME.match(metric) or not all(map(_LEGACY_LABEL.match, labels)):
            raise Unsupported(metric)
        family = self._families.get(metric)
        if family is None:
            family = self._families[metric] = _Family(metric, state.kind, documentation)
        elif family.kind != state.kind:
            raise Unsupported(metric)
        slot = self._keys[identity] = self._slots
        self._slots += 1
        family.stale = True
        pairs: Labels = tuple(labels.items())
        if family.kind == "histogram":
            without = tuple(sorted(pair for pair in pairs if pair[0] != "le"))
            if sample == f"{metric}_bucket" and "le" in labels:
                family.buckets.setdefault(without, {})[float(labels["le"])] = slot
            else:
                family.buckets.setdefault(without, {})
                family.sums[without] = slot
        else:
            if "all" in state.mode:
                pairs = (*pairs, ("pid", state.pid))
            family.series.append((f"{sample}{_labels(pairs)} ", slot))
        return slot

    def _render(self, values: list[float], present: set[int], openmetrics: bool) -> list[str]:
        found: list[str] = []
        for family in self._families.values():
            lines = family.lines(values, present)
            if not lines:  # every file that had the family is gone
                continue
            name = family.name
            if family.kind == "counter" and not openmetrics:
                name += "_total"
            documentation = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
            if openmetrics:
                documentation = documentation.replace('"', r"\"")
            found.append(f"# HELP {name} {documentation}\n# TYPE {name} {family.kind}\n{lines}")
        return found
