"""Bounded in-memory storage of samples: a recent-metrics buffer and per-series rolling windows.

Every structure has a hard cap (buffer length, window length, series per agent), so memory
stays bounded however many samples agents send; what a cap refuses is counted.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .parsing import Sample
from .window import Window

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]  # (metric name, sorted labels)


@dataclass
class AgentSeries:
    """The rolling windows of one agent, keyed by series."""

    windows: dict[SeriesKey, Window] = field(default_factory=dict)
    by_name: dict[str, list[SeriesKey]] = field(default_factory=dict)  # metric name -> its series, first first
    # metric name -> the window `latest` reads: the unlabelled series, else the first label set seen
    primary: dict[str, Window] = field(default_factory=dict)
    version: int = 0  # changes with each sample stored: what was read from the windows holds while it stays


class MetricStore:
    """Recent samples of all agents plus a rolling window per agent and series."""

    def __init__(self, recent_size: int, window_size: int, max_series_per_agent: int) -> None:
        self.recent: deque[Sample] = deque(maxlen=recent_size)
        self._window_size = window_size
        self._max_series = max_series_per_agent
        self._agents: dict[str, AgentSeries] = {}
        self.dropped_series = 0
        self._stored = 0

    def add(self, sample: Sample) -> Window | None:
        """Store a sample; return its series window (None when the agent's series cap refused it)."""
        self.recent.append(sample)
        series = self._agents.get(sample.agent_id)
        if series is None:  # not setdefault: that would build an AgentSeries for every sample
            series = self._agents[sample.agent_id] = AgentSeries()
        key = (sample.name, sample.labels)
        window = series.windows.get(key)
        if window is None:
            if len(series.windows) >= self._max_series:
                self.dropped_series += 1
                return None
            window = series.windows[key] = Window(self._window_size)
            series.by_name.setdefault(sample.name, []).append(key)
            if not sample.labels or sample.name not in series.primary:
                series.primary[sample.name] = window
        if window.add(sample.timestamp, sample.value):  # refused when out of order
            self._stored += 1
            series.version = self._stored  # unique across the store: an agent forgotten and back starts anew
        return window

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

    def series_count(self, agent_id: str) -> int:
        series = self._agents.get(agent_id)
        return len(series.windows) if series else 0

    def forget(self, agent_id: str) -> None:
        """Free an agent's windows (its samples age out of the recent buffer on their own)."""
        self._agents.pop(agent_id, None)
