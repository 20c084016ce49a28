"""Reading TrafficWindows from the rollups, remembering the settled part of long windows.

A rollout controller asks for the same growing window every interval ("since the phase started",
up to 14 days): re-reading and re-parsing a few hundred rollup hashes each time would cost tens of
milliseconds with the pure-Python Redis parser, for numbers that cannot change any more. Slots that
ended more than ``settle_s`` ago are *settled*: every process has flushed into them (flushes run
every second, a record lands in the slot of its own clock). So for a window reaching past the
settled boundary, the part before it is summed once and kept per window start, and each later call
reads only the slots that settled since, plus the unsettled tail - one batch either way.

What is given up: a record that reaches the store more than ``settle_s`` after its slot ended (a
replica whose clock lags by more than that, a flush stalled that long) is missing from a remembered
prefix, though a fresh reader sees it. Windows whose settled part is shorter than ``min_prefix_s``
are not remembered (a "last interval" window moves every call: nothing to reuse).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from voxshift.core.rollout.window import OperationWindow, TrafficWindow
from voxshift.core.time_buckets import Slot, cover, span
from voxshift.services.metrics import rollups
from voxshift.stores.state import StateStore


@dataclass
class _Prefix:
    start: float  # what the first read covered (earlier than the window's start if widened)
    upto: int  # settled boundary summed so far (exclusive)
    window: TrafficWindow


def _copy(window: TrafficWindow, start: float, end: float) -> TrafficWindow:
    ops = {op: OperationWindow().merge(w) for op, w in window.operations.items()}
    return TrafficWindow(start, end, ops)


class TrafficReader:
    def __init__(
        self,
        store: StateStore,
        resolutions: tuple[int, ...],
        retentions: tuple[float, ...],
        systems: tuple[str, str],
        *,
        settle_s: float = 10.0,
        min_prefix_s: float = 600.0,
        max_prefixes: int = 8,
    ) -> None:
        self.store = store
        self.resolutions = resolutions
        self.retentions = retentions
        self.systems = systems
        self.settle_s = settle_s
        self.min_prefix_s = min_prefix_s
        self.max_prefixes = max_prefixes
        self._prefixes: OrderedDict[int, _Prefix] = OrderedDict()

    def _cover(self, since: float, until: float, now: float) -> list[Slot]:
        return cover(since, until, self.resolutions, now=now, retentions=self.retentions)

    async def _read(self, slots: list[Slot]) -> list[object]:
        return list(await self.store.execute(rollups.read_batch(slots))) if slots else []

    async def read(self, since: float, until: float, now: float) -> TrafficWindow:
        """Both operations over ``[since, until)`` (see ``MigrationMetrics.traffic``)."""
        fine = self.resolutions[0]
        lo = math.ceil(since / fine) * fine
        settled = math.floor((now - self.settle_s) / fine) * fine
        if math.ceil(until / fine) * fine <= settled or settled - lo < self.min_prefix_s:
            return await self._fresh(since, until, now)
        prefix = self._prefixes.get(lo)
        if prefix is not None and prefix.upto > settled:
            prefix = None  # the clock went back (an injected one): start the sum again
        upto = lo if prefix is None else prefix.upto
        new = self._cover(since if prefix is None else upto, settled, now) if settled > upto else []
        if any((index + 1) * res > settled for res, index in new):
            # A slot widened past the settled boundary (a tiny fine retention): do not remember it.
            return await self._fresh(since, until, now)
        tail = self._cover(settled, until, now)
        found = await self._read(new + tail)
        if prefix is None:
            first = span(new)
            prefix = _Prefix(lo if first is None else first[0], settled, TrafficWindow(lo, settled))
        rollups.accumulate(prefix.window, found[: len(new)], self.systems)
        prefix.upto = max(prefix.upto, settled)
        self._remember(lo, prefix)
        last = span(tail)
        window = _copy(prefix.window, prefix.start, settled if last is None else last[1])
        return rollups.accumulate(window, found[len(new) :], self.systems)

    async def _fresh(self, since: float, until: float, now: float) -> TrafficWindow:
        slots = self._cover(since, until, now)
        read = span(slots)
        window = TrafficWindow(since, until) if read is None else TrafficWindow(*read)
        return rollups.accumulate(window, await self._read(slots), self.systems)

    def _remember(self, lo: int, prefix: _Prefix) -> None:
        self._prefixes[lo] = prefix
        self._prefixes.move_to_end(lo)
        while len(self._prefixes) > self.max_prefixes:
            self._prefixes.popitem(last=False)
