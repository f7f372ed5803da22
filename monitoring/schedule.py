"""When each agent is scraped: one timer heap for all agents instead of a sleeping task per agent.

Each agent starts at a random phase of the interval (so thousands don't fire at once) and then runs
fixed-rate, each slot moved by its own jitter. The collector's one scheduling task wakes at most once per
`batch` seconds and starts every scrape due by then together: waking the event loop once per scrape
cost more CPU than the scrape's own work. A scrape starts at most `batch` late (the lag is measured).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_BATCH = 0.025  # seconds; a hundredth of the interval when that is shorter


class Schedule(Generic[T]):
    """Due times of members (compared by identity) on a fixed-rate grid with per-slot jitter."""

    def __init__(self, interval: float, jitter: float, spread: bool) -> None:
        self.interval = interval
        self._jitter = jitter * interval
        self._spread = spread
        self.batch = min(MAX_BATCH, interval / 100)
        self._heap: list[tuple[float, int, float, T]] = []  # (due, tie-breaker, slot on the grid, member)
        self._order = itertools.count()

    def add(self, member: T, now: float) -> float:
        """Schedule a new member's first slot; returns when it is due."""
        return self._push(member, now + (random.uniform(0, self.interval) if self._spread else 0.0), now)

    def _push(self, member: T, slot: float, now: float) -> float:
        due = max(now, slot + random.uniform(-1, 1) * self._jitter)
        heapq.heappush(self._heap, (due, next(self._order), slot, member))
        return due

    def pop_due(self, now: float, alive: Callable[[T], bool]) -> Iterator[tuple[T, float]]:
        """Members due by `now` that are still `alive` (the others are dropped), with how late each is.
        Each is rescheduled one interval on or, when it fell a whole interval behind (overload), one
        interval from now rather than in a burst."""
        heap, due = self._heap, []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if alive(entry[3]):
                due.append(entry)
        for when, _, slot, member in due:  # rescheduled after popping: never due twice in one call
            slot += self.interval
            self._push(member, slot if slot >= now else now + self.interval, now)
            yield member, now - when

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)
