"""The ``/metrics`` body in multiprocess mode, from the workers' files.

Written here because prometheus_client's ``MultiProcessCollector`` decodes
every key of every file, validates every label and builds a sample object
for each value on every scrape: about a second for 50 routes x all status
codes x 4 workers. A key never changes once written (values are updated in
place, new keys appended), so this reader parses each entry once (a file's
new tail only; a histogram's label set once, not once per bucket) and keeps
where its value lies and which output lines it adds to. The files stay
mapped; a scrape picks each file's values out of the mapping at C speed
(one ``struct`` unpacking per file), adds them slot by slot
(``map(operator.add, ...)``, in prometheus_client's file order, so the floats
round alike), and renders again only the series whose value changed since
the last scrape; nothing changed, nothing is done. The result is what
prometheus_client renders for the same files, in the text format and in
OpenMetrics; what this reader does not know (another file type, a name that
needs UTF-8 quoting) raises ``Unsupported`` so the caller can fall back to
prometheus_client.

Measured with ``bench/scrape.py`` (4 workers' files written by prometheus_client,
the bench's 50 routes x 18 codes x 2 methods; in-process, medians of 15
interleaved rounds against the previous reader, 8040dde; a busy 2-CPU machine;
bench/notes.md): a worker's first scrape 236 ms of CPU (was 611), a later one
after 800 new observations 27 ms (was 71), with nothing new 8 ms (was 73), after
a fifth worker's file appeared 73 ms (was 128). prometheus_client: 1211 ms.
Reading the values with one ``struct`` per file instead of an ``itemgetter``
over a ``memoryview``, and keeping the lines encoded: after 80 new observations
28 ms against 35 (medians of 9 rounds against d025fdd, on a slower day); the
parse, which ``prepare`` does in the background, 532 ms against 491.
"""

from __future__ import annotations

import bisect
import functools
import json
import math
import mmap
import operator
import os
import re
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, chain, compress, repeat

from prometheus_client import utils

_LEGACY_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LEGACY_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_INT = struct.Struct("i")  # native, as prometheus_client writes
_LE = b'"le": "'
_SUMMED = frozenset(("counter", "histogram", "summary"))
_SUM_MODES = frozenset(("sum", "livesum"))
_RECENT_MODES = frozenset(("mostrecent", "livemostrecent"))
_GAUGE_MODES = _SUM_MODES | _RECENT_MODES | {"all", "liveall", "min", "livemin", "max", "livemax"}
# Each mapping holds a file descriptor: files beyond these (dead workers' files
# piling up) are mapped for one scrape only.
_KEPT_MAPPED = 64

Labels = tuple[tuple[str, str], ...]
_go_float: Callable[[float], str] = utils.floatToGoString


class Unsupported(Exception):
    """The files hold something this reader leaves to prometheus_client."""


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _pairs(labels: Labels) -> list[str]:
    """``name="value"`` per label, in name order."""
    return [f'{name}="{_escape(value)}"' for name, value in sorted(labels)]


def _braced(pairs: list[str]) -> str:
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _joined(prefixes: list[str], numbers: list[str]) -> str:
    """The lines: each prefix, its number, a newline (one copy of each piece)."""
    return "".join(chain.from_iterable(zip(prefixes, numbers, repeat("\n"))))


def _numbers(values: list[float]) -> list[str]:
    """Values as prometheus_client writes them (Go's float format)."""
    if not values:
        return []
    total = sum(values)
    # A NaN (or inf - inf) makes the total NaN, the one value not equal to itself.
    if total == total and max(values) < 1e6 and min(values) > -1e6:
        return list(map(repr, values))  # where repr and Go agree
    return list(map(_go_float, values))


def _split_le(key: bytes) -> tuple[bytes, float] | None:
    """A bucket's key without its ``le`` value, and that bound, read off the
    text: the keys of one label set's buckets differ only there."""
    # In a JSON string a quote is escaped: a real label's name follows "{" or ", ",
    # so there is one such place; "le" sorts late, hence from the end.
    at = key.rfind(_LE)
    if at < 1 or key[at - 1] not in b"{ ":
        return None
    start = at + len(_LE)
    end = key.find(b'"', start)
    bound = _bound(key[start:end]) if end > 0 else None
    if bound is None:
        return None
    return key[:start] + key[end:], bound


@functools.cache
def _bound(text: bytes) -> float | None:
    """A bucket's bound from its text in a key (a histogram has a few)."""
    if b"\\" in text:  # escaped: not what prometheus_client writes
        return None
    try:
        return float(text)
    except ValueError:
        return None


@functools.cache
def _bound_text(bound: float) -> str:
    return _go_float(bound)


def _signs(values: tuple[float, ...]) -> list[float]:
    return list(map(math.copysign, repeat(1.0), values))


_NOTHING = struct.Struct("")
# ``prepare`` renders ahead of the scrape when the files gained at least this
# share of their entries: it reads every value for one new series as for a
# thousand, and a few new lines cost the scrape next to nothing.
_RENDER_AHEAD = 0.01


def _gather(indices: Sequence[int]) -> Callable[[Sequence[float]], tuple[float, ...]]:
    """A function picking ``indices`` out of a sequence, as a tuple, at C speed."""
    if len(indices) > 1:
        return operator.itemgetter(*indices)
    return lambda seq: tuple(seq[i] for i in indices)


class _Line:
    """One sample line of a counter, a gauge or a summary."""

    def __init__(self, family: _Family, prefix: str, slot: int) -> None:
        self.family, self.prefix, self.slot, self.text = family, prefix, slot, b""

    def render(self, values: list[float], present: set[int]) -> None:
        if self.slot in present:
            self.text = f"{self.prefix}{_numbers([values[self.slot]])[0]}\n".encode()
        else:
            self.text = b""


class _Buckets:
    """A histogram's lines for one label set: cumulative buckets, count, sum."""

    def __init__(self, family: _Family, labels: Labels) -> None:
        self.family, self.name, self.labels = family, family.name, labels
        self.by_bound: dict[float, int] = {}
        self.total = -1  # the sum's slot
        self.order: tuple[int, ...] = ()  # the bucket slots by bound
        self.prefixes: list[str] = []
        self.laid_out = False
        self.text = b""

    def add(self, bound: float | None, slot: int) -> None:
        if bound is None:
            self.total = slot
        else:
            self.by_bound[bound] = slot
        self.laid_out = False

    def layout(self) -> None:
        bounds = sorted(self.by_bound)
        self.order = tuple(self.by_bound[bound] for bound in bounds)
        pairs = _pairs(self.labels)
        # ``le`` goes where it sorts among the other labels.
        at = bisect.bisect([name for name, _ in sorted(self.labels)], "le")
        start = f'{self.name}_bucket{{{"".join(pair + "," for pair in pairs[:at])}le="'
        end = f'"{"".join("," + pair for pair in pairs[at:])}}} '
        # -0.0 equals 0.0 (one cache entry) but is written differently.
        texts = [_bound_text(b) if b else _go_float(b) for b in bounds]
        self.prefixes = [start + text + end for text in texts]
        self.prefixes.append(f"{self.name}_count{_braced(pairs)} ")
        if self.total >= 0:
            self.prefixes.append(f"{self.name}_sum{_braced(pairs)} ")
        self.laid_out = True

    def render(self, values: list[float], present: set[int]) -> None:
        if not self.laid_out:
            self.layout()
        if present.isdisjoint(self.order):  # every file that had it is gone
            self.text = b""
            return
        numbers = list(accumulate(map(values.__getitem__, self.order)))
        numbers.append(numbers[-1])
        if self.total >= 0:
            numbers.append(values[self.total])
        self.text = _joined(self.prefixes, _numbers(numbers)).encode()


@dataclass(eq=False)
class _Family:
    name: str
    kind: str
    documentation: str
    series: list[_Line | _Buckets] = field(default_factory=list)
    by_labels: dict[Labels, _Buckets] = field(default_factory=dict)  # histograms
    text: bytes = b""

    def header(self, openmetrics: bool) -> str:
        name = self.name
        if self.kind == "counter" and not openmetrics:
            name += "_total"
        documentation = self.documentation.replace("\\", r"\\").replace("\n", r"\n")
        if openmetrics:
            documentation = documentation.replace('"', r"\"")
        return f"# HELP {name} {documentation}\n# TYPE {name} {self.kind}\n"


@dataclass(eq=False)
class _File:
    """One worker's file: its mapping and what was parsed of it, up to ``parsed``."""

    inode: int
    kind: str
    mode: str
    pid: str
    mapped: mmap.mmap | None = None
    parsed: int = 8
    slots: list[int] = field(default_factory=list)
    slot_set: frozenset[int] = frozenset()
    # Reads the values in one call, skipping what lies between them: a struct
    # format of "<bytes skipped>x" and "d" (a value) or "2d" (with its timestamp)
    # per entry, native byte order as prometheus_client writes, no alignment.
    layout: str = "="
    read_to: int = 0  # where the last value the layout reads ends
    unpacker: struct.Struct = _NOTHING
    values: tuple[float, ...] = ()
    # Summed files with many slots: their values in slot order (0.0 where the
    # file has no such slot), for ``gathered`` slots in all.
    in_slot_order: Callable[[Sequence[float]], tuple[float, ...]] = tuple
    gathered: int = -1
    spread: tuple[float, ...] | None = None

    @property
    def summed(self) -> bool:
        """Whether the workers' values add up (counters, histograms, summed gauges)."""
        return self.kind in _SUMMED or self.mode in _SUM_MODES

    def mapping(self, path: str, size: int) -> mmap.mmap:
        if self.mapped is None or len(self.mapped) != size:
            self.close()
            with open(path, "rb") as stream:
                self.mapped = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
        return self.mapped

    def close(self) -> None:
        if self.mapped is not None:
            self.mapped.close()
            self.mapped = None

    def refresh(self) -> bool:
        """Read the values again; whether they changed."""
        assert self.mapped is not None
        values: tuple[float, ...] = self.unpacker.unpack_from(self.mapped)
        same = values == self.values
        if same and not self.summed:  # -0.0 equals 0.0 but is written differently
            same = _signs(values) == _signs(self.values)
        self.values = values
        if same:
            return False
        self.spread = None
        return True

    def add_to(self, merged: list[float]) -> list[float]:
        """``merged`` plus this file's values, slot by slot."""
        width = len(merged)
        if len(self.slots) * 2 < width:  # a few of the slots: one by one
            for slot, value in zip(self.slots, self.values, strict=True):
                merged[slot] += value
            return merged
        if self.gathered != width:
            where = dict(zip(self.slots, range(len(self.slots)), strict=True))
            nowhere = len(self.slots)  # the 0.0 appended below
            self.in_slot_order = _gather(list(map(where.get, range(width), repeat(nowhere))))
            self.gathered, self.spread = width, None
        if self.spread is None:
            self.spread = self.in_slot_order((*self.values, 0.0))
        return list(map(operator.add, merged, self.spread))


def _unmap_unkept(files: list[_File]) -> None:
    """Close the mappings beyond those kept (``_KEPT_MAPPED``)."""
    for state in files[_KEPT_MAPPED:]:
        state.close()


class MultiprocessScrape:
    """Renders the merged metrics of a ``PROMETHEUS_MULTIPROC_DIR``; one per process."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._files: dict[str, _File] = {}
        self._families: dict[str, _Family] = {}
        # Slots by key, per kind and mode (and per process for the "all" gauges).
        self._keys: dict[tuple[str, str, str], dict[bytes, int]] = {}
        self._owners: list[_Line | _Buckets] = []  # by slot
        self._unsummed: set[int] = set()
        # A histogram's bucket keys without their bound: each label set parsed once.
        self._label_sets: dict[bytes, _Buckets] = {}
        self._unsupported = ""
        self._order: list[_File] = []
        self._values: list[float] = []
        self._present_key: tuple[tuple[int, int], ...] = ()
        self._all_present: set[int] = set()
        self._present: set[int] = set()
        self._bodies: dict[bool, bytes] = {}
        self._entries = 0  # parsed so far, of all files

    def render(self, openmetrics: bool) -> bytes:
        """The families in the text format (0.0.4) or OpenMetrics, without ``# EOF``,
        encoded (each series once, as it changes)."""
        with self._lock:
            if self._unsupported:
                raise Unsupported(self._unsupported)
            try:
                self._render_changes(self._parsed_files())
            except Unsupported as error:
                self._unsupported = str(error)
                raise
            body = self._bodies.get(openmetrics)
            if body is None:
                body = self._bodies[openmetrics] = b"".join(
                    chain.from_iterable(
                        (family.header(openmetrics).encode(), family.text)
                        for family in self._families.values()
                        if family.text
                    )
                )
            return body

    def prepare(self) -> None:
        """Parse what the files gained since the last look; if they gained many
        entries (a new worker's file, series by the hundred), render the lines
        that changed, as a scrape would (all but joining the body).

        A worker calls it in the background (``metrics.prepare_scrapes``), so
        that its first scrape, and the first after new series appear, finds the
        files parsed and the lines rendered. With nothing new it costs a
        directory listing and a ``stat`` per file."""
        with self._lock:
            if self._unsupported:
                return
            known = self._entries
            try:
                files = self._parsed_files()
                gained = self._entries - known
                if gained and gained >= _RENDER_AHEAD * self._entries:
                    self._render_changes(files)
                else:
                    _unmap_unkept(files)
            except Unsupported as error:  # the next scrape falls back to prometheus_client
                self._unsupported = str(error)

    def _render_changes(self, files: list[_File]) -> None:
        """Read the parsed ``files``; render again the lines whose values changed."""
        changed = self._collect(files)
        if changed:
            self._rerender(changed)
            self._bodies.clear()

    def _parsed_files(self) -> list[_File]:
        """The workers' files, each parsed to its end."""
        # In the directory's order, as prometheus_client's glob: sums of floats
        # depend on the order they are added in.
        names = [name for name in os.listdir(self._path) if name.endswith(".db")]
        for gone in self._files.keys() - set(names):
            self._files.pop(gone).close()
        files: list[_File] = []
        for name in names:
            state = self._read(name)
            if state is not None:
                files.append(state)
        return files

    def _collect(self, files: list[_File]) -> set[int]:
        """Read the parsed ``files``; the slots whose value or presence changed."""
        width = len(self._owners)
        changed_files = [state.refresh() for state in files]
        _unmap_unkept(files)
        if files == self._order and not any(changed_files) and len(self._values) == width:
            return set()
        self._order = files

        values = [0.0] * width
        for state in files:
            if state.summed:
                values = state.add_to(values)
        unset = self._merge_unsummed(files, values)
        present = self._present_slots(files)
        if unset:
            present = present - unset

        previous = self._values
        changed = set(compress(range(len(previous)), map(operator.ne, values, previous)))
        changed.update(range(len(previous), width))
        # Always again: -0.0 equals 0.0 but is written differently.
        changed |= self._unsummed
        if present is not self._present:  # the same set while no file is added or grows
            changed |= present ^ self._present
        self._values, self._present = values, present
        return changed

    def _merge_unsummed(self, files: list[_File], values: list[float]) -> set[int]:
        """Gauges whose values do not add up (a handful of series): value by value,
        as prometheus_client merges them; the most recent ones never set."""
        latest: dict[int, float] = {}
        seen: set[int] = set()
        for state in files:
            if state.summed:
                continue
            pairs = zip(state.slots, state.values[0::2], state.values[1::2], strict=True)
            if state.mode in _RECENT_MODES:
                for slot, value, timestamp in pairs:
                    if latest.get(slot, 0.0) < timestamp:
                        values[slot], latest[slot] = value, timestamp
                continue
            for slot, value, _ in pairs:
                if slot not in seen:
                    values[slot] = value
                    seen.add(slot)
                elif state.mode in ("min", "livemin"):
                    values[slot] = min(values[slot], value)
                elif state.mode in ("max", "livemax"):
                    values[slot] = max(values[slot], value)
                else:  # "all": a slot per process
                    values[slot] = value
        return {slot for slot in self._unsummed if slot not in seen and slot not in latest}

    def _present_slots(self, files: list[_File]) -> set[int]:
        """The slots some file has: the same until a file is added, grows or goes."""
        key = tuple((id(state), state.parsed) for state in files)
        if key != self._present_key:
            self._all_present = set().union(*(state.slot_set for state in files))
            self._present_key = key
        return self._all_present

    def _rerender(self, changed: set[int]) -> None:
        again = set(map(self._owners.__getitem__, changed))
        for series in again:
            series.render(self._values, self._present)
        for family in {series.family for series in again}:
            family.text = b"".join([series.text for series in family.series])

    def _read(self, name: str) -> _File | None:
        path = os.path.join(self._path, name)
        try:
            stat = os.stat(path)
        except FileNotFoundError:  # a dead worker's live gauges, just removed
            return None
        if stat.st_size < 8:  # a worker's file, created but not yet sized
            return None
        state = self._files.get(name)
        if state is None or state.inode != stat.st_ino:
            if state is not None:
                state.close()
            state = self._files[name] = self._new_file(name, stat.st_ino)
        try:
            mapped = state.mapping(path, stat.st_size)
            used = _INT.unpack_from(mapped, 0)[0]
            if used > len(mapped):  # grown since: the writer sizes the file first
                mapped = state.mapping(path, os.stat(path).st_size)
                used = _INT.unpack_from(mapped, 0)[0]
        except FileNotFoundError:
            return None
        if used > len(mapped):
            raise Unsupported(f"{name} says it uses more than its size")
        if used < 8:
            return None
        if used < state.parsed:  # not the file that was parsed
            state.close()
            state = self._files[name] = self._new_file(name, stat.st_ino)
            mapped = state.mapping(path, len(mapped))
        if used > state.parsed:
            self._parse(state, mapped, used)
        return state

    def _new_file(self, name: str, inode: int) -> _File:
        parts = name[: -len(".db")].split("_")
        if parts[0] in _SUMMED and len(parts) == 2:
            return _File(inode, parts[0], "", parts[1])
        if parts[0] == "gauge" and len(parts) == 3 and parts[1] in _GAUGE_MODES:
            return _File(inode, "gauge", parts[1], parts[2])
        raise Unsupported(name)

    def _parse(self, state: _File, data: mmap.mmap, used: int) -> None:
        keys = self._keys.setdefault(
            (state.kind, state.mode, state.pid if "all" in state.mode else ""), {}
        )
        slots, layout, read_to = state.slots, [state.layout], state.read_to
        known = len(slots)
        # Summed files need only the values; the others need their timestamps too.
        unit, width = ("d", 8) if state.summed else ("2d", 16)
        position = state.parsed
        # Entries are 8-aligned, so each length is an int of the file read as ints.
        with memoryview(data) as raw, raw[: len(raw) // 4 * 4].cast("i") as lengths:
            while position < used:
                length = lengths[position >> 2]
                start = position + 4
                end = start + length
                if end > used:
                    raise Unsupported("an entry reaches past the used part of its file")
                key = data[start:end]
                slot = keys.get(key)
                if slot is None:
                    slot = keys[key] = self._new_slot(state, key)
                slots.append(slot)
                # The key is padded to 8 bytes; a full 8 when it needs none.
                value = end + 8 - (length + 4) % 8
                layout.append(f"{value - read_to}x{unit}")
                read_to = value + width
                position = value + 16
        self._entries += len(slots) - known
        state.parsed, state.read_to = position, read_to
        state.layout = "".join(layout)
        state.unpacker = struct.Struct(state.layout)
        state.slot_set = frozenset(slots)
        state.gathered = -1

    def _new_slot(self, state: _File, key: bytes) -> int:
        slot = len(self._owners)
        split = _split_le(key) if state.kind == "histogram" else None
        known = self._label_sets.get(split[0]) if split is not None else None
        series: _Line | _Buckets
        if known is not None and split is not None:
            known.add(split[1], slot)
            series = known
        else:
            series = self._place(state, key.decode("utf-8"), slot)
            # Placed as the bucket the text says: its label set's next buckets skip JSON.
            if isinstance(series, _Buckets) and split and series.by_bound.get(split[1]) == slot:
                self._label_sets[split[0]] = series
        self._owners.append(series)
        return slot

    def _place(self, state: _File, key: str, slot: int) -> _Line | _Buckets:
        """The series a new key's value belongs to, from the key."""
        metric, sample, labels, documentation = json.loads(key)
        if not _LEGACY_NAME.match(metric) or not all(map(_LEGACY_LABEL.match, labels)):
            raise Unsupported(metric)
        family = self._families.get(metric)
        if family is None:
            family = self._families[metric] = _Family(metric, state.kind, documentation)
        elif family.kind != state.kind:
            raise Unsupported(metric)
        if family.kind == "histogram":
            without = tuple(sorted((n, v) for n, v in labels.items() if n != "le"))
            buckets = family.by_labels.get(without)
            if buckets is None:
                buckets = family.by_labels[without] = _Buckets(family, without)
                family.series.append(buckets)
            bucket = sample == f"{metric}_bucket" and "le" in labels
            buckets.add(float(labels["le"]) if bucket else None, slot)
            return buckets
        pairs: Labels = tuple(labels.items())
        if "all" in state.mode:
            pairs = (*pairs, ("pid", state.pid))
        line = _Line(family, f"{sample}{_braced(_pairs(pairs))} ", slot)
        family.series.append(line)
        if not state.summed:
            self._unsummed.add(slot)
        return line
