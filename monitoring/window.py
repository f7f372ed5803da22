"""One series' rolling window: its last `size` points, oldest first, in two ring buffers of doubles.

A point costs 16 bytes here; in a deque of (timestamp, value) tuples it cost about 110, so 10,000 agents
with six series and 120-point windows took some 800 MB where these take about 120. Reads the rules make at
every sample (the newest point; the oldest one inside a look-back) don't copy the window.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator


class Window:
    """The newest `size` (timestamp, value) points of a series, timestamps never decreasing."""

    __slots__ = ("_times", "_values", "_size", "_next")

    def __init__(self, size: int) -> None:
        self._times = array("d")
        self._values = array("d")
        self._size = size
        self._next = 0  # once full: where the oldest point is, and the next one goes

    @classmethod
    def of(cls, points: Iterable[tuple[float, float]], size: int = 1_000) -> Window:
        window = cls(size)
        for timestamp, value in points:
            window.add(timestamp, value)
        return window

    def add(self, timestamp: float, value: float) -> bool:
        """Keep a point, dropping the oldest when full; False (nothing kept) if older than the newest."""
        times = self._times
        if times and timestamp < times[self._next - 1]:
            return False  # out of order: the window stays monotonic for rate calculations
        if len(times) < self._size:
            times.append(timestamp)
            self._values.append(value)
        else:
            position = self._next
            times[position] = timestamp
            self._values[position] = value
            self._next = position + 1 if position + 1 < self._size else 0
        return True

    def __len__(self) -> int:
        return len(self._times)

    def newest(self) -> tuple[float, float]:
        """The newest point (IndexError when empty)."""
        return self._times[self._next - 1], self._values[self._next - 1]

    def newest_value(self) -> float:
        return self._values[self._next - 1]

    def __getitem__(self, index: int) -> tuple[float, float]:
        """The index-th point, oldest first (negative: from the newest)."""
        count = len(self._times)
        if index < 0:
            index += count
        if not 0 <= index < count:
            raise IndexError("window index out of range")
        position = (self._next + index) % count
        return self._times[position], self._values[position]

    def __iter__(self) -> Iterator[tuple[float, float]]:
        start = self._next
        return zip(self._times[start:] + self._times[:start], self._values[start:] + self._values[:start])

    def values(self) -> list[float]:
        start = self._next
        return (self._values[start:] + self._values[:start]).tolist()

    def first_since(self, cutoff: float) -> tuple[float, float] | None:
        """The oldest point with a timestamp >= cutoff (binary search: timestamps are in order)."""
        count = len(self._times)
        low, high = 0, count
        times, start = self._times, self._next
        while low < high:
            middle = (low + high) // 2
            if times[(start + middle) % count] < cutoff:
                low = middle + 1
            else:
                high = middle
        if low == count:
            return None
        position = (start + low) % count
        return times[position], self._values[position]
