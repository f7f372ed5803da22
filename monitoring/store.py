"""Bounded in-memory storage of samples: a recent-metrics buffer and per-series rolling windows.

Every structure has a hard cap (buffer length, window length, series per agent), so memory
stays bounded however many samples agents send; what a cap refuses is counted. Counts alone
don't bound bytes (a sample's labels may be large), so both stores also keep an estimate of
their bytes, labels included: the buffer drops its oldest samples to stay within its byte
budget, and a new series is refused beyond the agent's or the whole store's (an existing
series is never dropped for a newcomer: its alerts and history stay whole).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .parsing import Sample
from .window import Window

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]  # (metric name, sorted labels)

# Estimates of CPython's sizes (64-bit), measured with sys.getsizeof and tracemalloc and rounded up:
SAMPLE_BYTES = 200  # a Sample (a 6-tuple), its value and timestamp floats, its slots in the buffer
LABEL_BYTES = 170   # one label pair: its 2-tuple, the headers of its two strings, its slot in the labels tuple
SERIES_BYTES = 420  # a Window with its two array headers, its key tuple and entries in the agent's dicts
POINT_BYTES = 16    # a (timestamp, value) point of a window: two doubles


def labels_bytes(labels: tuple[tuple[str, str], ...]) -> int:
    """Estimated bytes of a label tuple (characters counted as bytes: most labels are ASCII)."""
    total = LABEL_BYTES * len(labels)
    for name, value in labels:
        total += len(name) + len(value)
    return total


def sample_bytes(sample: Sample) -> int:
    """Estimated bytes a sample holds in the recent buffer, labels included (what the buffer's budget counts)."""
    labels = sample.labels
    size = SAMPLE_BYTES + len(sample.name)
    if labels:  # written out rather than labels_bytes(): this runs for every sample stored
        size += LABEL_BYTES * len(labels)
        for name, value in labels:
            size += len(name) + len(value)
    return size


def new_series_bytes(name: str, labels: tuple[tuple[str, str], ...], window_size: int) -> int:
    """Estimated bytes a series takes once its window of `window_size` points is full: the one estimate the store's
    budgets and remote-write's namespace quotas share."""
    return SERIES_BYTES + POINT_BYTES * window_size + len(name) + labels_bytes(labels)


@dataclass
class AgentSeries:
    """The rolling windows of one agent, keyed by series."""

    windows: dict[SeriesKey, Window] = field(default_factory=dict)
    by_name: dict[str, list[SeriesKey]] = field(default_factory=dict)  # metric name -> its series, first first
    # metric name -> the window `latest` reads: the unlabelled series, else the first label set seen
    primary: dict[str, Window] = field(default_factory=dict)
    version: int = 0  # changes with each sample stored: what was read from the windows holds while it stays
    bytes: int = 0  # estimated bytes of its windows, their points, keys and labels


class MetricStore:
    """Recent samples of all agents plus a rolling window per agent and series."""

    def __init__(self, recent_size: int, window_size: int, max_series_per_agent: int,
                 recent_bytes: int | None = None, series_bytes: int | None = None,
                 series_bytes_per_agent: int | None = None) -> None:
        self.recent: deque[Sample] = deque(maxlen=recent_size)
        self._recent_sizes: deque[int] = deque()  # each buffered sample's estimate, in the same order
        self.recent_bytes = 0
        self._recent_budget = recent_bytes if recent_bytes is not None else float("inf")
        self._window_size = window_size
        self._max_series = max_series_per_agent
        self._agents: dict[str, AgentSeries] = {}
        self.series_bytes = 0  # estimated bytes of every agent's windows
        self._series_budget = series_bytes if series_bytes is not None else float("inf")
        self._agent_budget = series_bytes_per_agent if series_bytes_per_agent is not None else float("inf")
        self.dropped_series = 0
        self._stored = 0

    def add(self, sample: Sample) -> Window | None:
        """Store a sample; return its series window (None when the agent's series caps refused it)."""
        self._buffer(sample)
        series = self._agents.get(sample.agent_id)
        if series is None:  # not setdefault: that would build an AgentSeries for every sample
            series = self._agents[sample.agent_id] = AgentSeries()
        key = (sample.name, sample.labels)
        window = series.windows.get(key)
        if window is None:
            cost = self.new_series_bytes(sample.name, sample.labels)
            if (len(series.windows) >= self._max_series or series.bytes + cost > self._agent_budget
                    or self.series_bytes + cost > self._series_budget):
                self.dropped_series += 1
                return None
            series.bytes += cost
            self.series_bytes += cost
            window = series.windows[key] = Window(self._window_size)
            series.by_name.setdefault(sample.name, []).append(key)
            if not sample.labels or sample.name not in series.primary:
                series.primary[sample.name] = window
        if window.add(sample.timestamp, sample.value):  # refused when out of order
            self._stored += 1
            series.version = self._stored  # unique across the store: an agent forgotten and back starts anew
        return window

    def _buffer(self, sample: Sample) -> None:
        """Append to the recent buffer, dropping its oldest samples beyond its length or byte budget."""
        recent, sizes = self.recent, self._recent_sizes
        total = self.recent_bytes
        if len(recent) == recent.maxlen:  # append drops the oldest: so does its size
            total -= sizes.popleft()
        size = sample_bytes(sample)
        recent.append(sample)
        sizes.append(size)
        total += size
        if total > self._recent_budget:
            while total > self._recent_budget:
                recent.popleft()
                total -= sizes.popleft()
        self.recent_bytes = total

    def latest(self, agent_id: str, name: str) -> float | None:
        """Latest value of the agent's series `name` (the unlabelled one, else the first label set seen)."""
        window = self._primary(agent_id, name)
        return window.newest_value() if window else None

    def latest_pair(self, agent_id: str, first: str, second: str) -> tuple[float | None, float | None]:
        """latest() of two names at once (one lookup of the agent: /metrics reads two for every agent)."""
        series = self._agents.get(agent_id)
        if series is None:
            return None, None
        one, other = series.primary.get(first), series.primary.get(second)
        # A window exists only once a point is in it: never empty.
        return (one.newest_value() if one is not None else None, other.newest_value() if other is not None else None)

    def series_values(self, agent_id: str, name: str) -> list[float]:
        """The values of that same series' rolling window, oldest first."""
        window = self._primary(agent_id, name)
        return window.values() if window else []

    def values_since(self, agent_id: str, name: str, since: float) -> list[float]:
        """Values of the agent's series `name` (all label sets) with timestamps >= since."""
        series = self._agents.get(agent_id)
        if series is None:
            return []
        return [value for key in series.by_name.get(name, ()) for timestamp, value in series.windows[key]
                if timestamp >= since]

    def _primary(self, agent_id: str, name: str) -> Window | None:
        series = self._agents.get(agent_id)
        return series.primary.get(name) if series is not None else None

    def latest_series(self, agent_id: str) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
        """(name, labels, latest value) of each of the agent's series."""
        series = self._agents.get(agent_id)
        if series is None:
            return []
        return [(name, labels, window.newest_value()) for (name, labels), window in list(series.windows.items())
                if window]

    def version(self, agent_id: str) -> int:
        """Changes whenever a sample of the agent is stored (-1: none stored, or forgotten)."""
        series = self._agents.get(agent_id)
        return series.version if series is not None else -1

    def has_series(self, agent_id: str, name: str, labels: tuple[tuple[str, str], ...]) -> bool:
        """Whether the agent has a window for this series (remote-write charges only new ones to quotas)."""
        series = self._agents.get(agent_id)
        return series is not None and (name, labels) in series.windows

    def new_series_bytes(self, name: str, labels: tuple[tuple[str, str], ...]) -> int:
        """Estimated bytes a new series takes from the budgets (remote-write checks room before adding)."""
        return new_series_bytes(name, labels, self._window_size)

    def series_count(self, agent_id: str) -> int:
        series = self._agents.get(agent_id)
        return len(series.windows) if series else 0

    def agent_bytes(self, agent_id: str) -> int:
        """Estimated bytes of the agent's windows."""
        series = self._agents.get(agent_id)
        return series.bytes if series else 0

    def forget(self, agent_id: str) -> None:
        """Free an agent's windows (its samples age out of the recent buffer on their own)."""
        series = self._agents.pop(agent_id, None)
        if series is not None:
            self.series_bytes -= series.bytes
