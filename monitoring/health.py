"""Health scores (the course's formula) and each agent's health summary.

Health score of an agent: start at 100; CPU > 80 % -30, > 60 % -15; memory > 85 % -25,
> 70 % -10; status other than active -50; -10 per active alert; clamped to 0..100.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from .agents import AgentStatus
from .alerts import iso

if TYPE_CHECKING:
    from .agents import AgentState
    from .alerts import Alert, AlertBook
    from .settings import MonitoringSettings
    from .store import MetricStore


class ScrapeCounts(Protocol):
    """The collector's scrape counters the overview reports."""

    @property
    def scrapes_ok(self) -> int: ...
    @property
    def scrapes_failed(self) -> int: ...
    @property
    def samples(self) -> int: ...


class CollectorView(Protocol):
    """What health reads from the collector (monitoring.collector.Collector satisfies it).

    A protocol rather than the Collector class: the collector's reports build on this module,
    so health must not import the collector back.
    """

    @property
    def settings(self) -> MonitoringSettings: ...
    @property
    def agents(self) -> Mapping[str, AgentState]: ...
    @property
    def store(self) -> MetricStore: ...
    @property
    def alerts(self) -> AlertBook: ...
    @property
    def stats(self) -> ScrapeCounts: ...


def resource_penalty(cpu: float | None, memory: float | None) -> float:
    """What CPU and memory readings take off the health score; missing readings cost nothing."""
    penalty = 0.0
    if cpu is not None:
        penalty += 30 if cpu > 80 else 15 if cpu > 60 else 0
    if memory is not None:
        penalty += 25 if memory > 85 else 10 if memory > 70 else 0
    return penalty


def health_score(cpu: float | None, memory: float | None, active: bool, active_alerts: int) -> float:
    """The seed's health score."""
    return _score(resource_penalty(cpu, memory), active, active_alerts)


def _score(penalty: float, active: bool, active_alerts: int) -> float:
    return max(0.0, min(100.0, 100.0 - penalty - (0 if active else 50) - 10 * active_alerts))


def distinct_alerts(alerts: Iterable[Alert]) -> list[Alert]:
    """One alert per (rule, agent, metric): a rule firing on several series of a metric is one alert
    to people (and to the course's counts and health score), however many series fire."""
    seen: dict[tuple[str, str, str], Alert] = {}
    for alert in alerts:
        seen.setdefault((alert.rule_id, alert.agent_id, alert.metric), alert)
    return list(seen.values())


def active_alert_counts(collector: CollectorView) -> Counter[str]:
    """Active alerts per agent id (see distinct_alerts), counted once per overview, not once per agent."""
    return Counter(alert.agent_id for alert in distinct_alerts(collector.alerts.active.values()))


MEMORY_LIMIT_INFO = "memory_limit_bytes"  # key of an agent's info holding its memory limit
MIN_MEMORY_LIMIT = 2**20                  # smaller "limits" are typos (1Gi written as 1), not limits
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_SUFFIX = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


@functools.lru_cache(maxsize=4096)  # a handful of distinct limits, read for every agent at every /metrics
def quantity_bytes(text: str) -> int | None:
    """Bytes of a Kubernetes memory quantity (1073741824, 1Gi, 512M, 1.5Gi), or None if it isn't one."""
    match = _QUANTITY.match(text.strip()) if len(text) <= 64 else None
    return int(Decimal(match.group(1)) * _SUFFIX[match.group(2)]) if match else None


def memory_limit(state: AgentState) -> float | None:
    """The agent's memory limit in bytes (from discovery or its registration's info, a byte count or a
    Kubernetes quantity), if it has a plausible one (at least 1 MiB)."""
    limit = quantity_bytes(state.info.get(MEMORY_LIMIT_INFO, ""))
    return float(limit) if limit is not None and limit >= MIN_MEMORY_LIMIT else None


def memory_percentages(settings: MonitoringSettings, state: AgentState, values: list[float]) -> list[float]:
    """Readings of health.memory_metric as percentages (bytes against the agent's limit); [] when a limit is
    needed and unknown."""
    if settings.health.memory_unit == "percent":
        return values
    limit = memory_limit(state)
    return [100 * value / limit for value in values] if limit else []


def refresh_penalty(collector: CollectorView, state: AgentState) -> tuple[int, float]:
    """The agent's resource penalty, worked out again unless its samples are unchanged since the last time.
    The collector calls this right after storing a scrape (the readings are still in the CPU's caches), so
    that /metrics, which needs every agent's score, finds them ready."""
    version = collector.store.version(state.agent_id)
    cached = state.penalty
    if cached is not None and cached[0] == version:
        return cached
    health = collector.settings.health
    cpu, memory = collector.store.latest_pair(state.agent_id, health.cpu_metric, health.memory_metric)
    if memory is not None and health.memory_unit != "percent":
        limit = memory_limit(state)
        memory = 100 * memory / limit if limit else None
    state.penalty = (version, resource_penalty(cpu, memory))
    return state.penalty


def current_scores(collector: CollectorView, alert_counts: Counter[str]) -> Iterator[tuple[AgentState, float]]:
    """Every agent's health score now (what agent_health reports, without the rest of its summary): the
    resource penalties worked out at the agents' scrapes, with their status and alerts now."""
    active = AgentStatus.ACTIVE
    for agent_id, state in collector.agents.items():
        yield state, _score(refresh_penalty(collector, state)[1], state.status is active, alert_counts.get(agent_id, 0))


def agent_health(collector: CollectorView, state: AgentState, alert_counts: Counter[str]) -> dict[str, Any]:
    """One agent's status, resource readings and health score (`alert_counts` from active_alert_counts)."""
    health = collector.settings.health
    cpu = collector.store.latest(state.agent_id, health.cpu_metric)
    reading = collector.store.latest(state.agent_id, health.memory_metric)
    memory = next(iter(memory_percentages(collector.settings, state, [reading])), None) if reading is not None \
        else None
    alerts = alert_counts.get(state.agent_id, 0)
    return {"status": state.status.value,
            "health_score": health_score(cpu, memory, state.status.value == "active", alerts),
            "cpu_usage": cpu, "memory_usage": memory, "active_alerts": alerts,
            "last_seen": iso(state.last_success) if state.last_success else None,
            "last_scrape_duration_seconds": round(state.last_scrape_duration, 6),
            "last_error": state.last_error}
