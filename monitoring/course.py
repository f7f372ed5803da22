"""The course's monitoring API (`distributed_monitoring.py`) over the production internals.

`DistributedMetricsCollector` is a thin layer: agents are scraped by the service's Collector
(bounded fetches, Prometheus text or the course's JSON), rules are the service's rules, alerts
its AlertBook, handlers run from its Dispatcher, and the overview and report are the service's
documents, which carry every key the course defines. What the layer adds is the course's
vocabulary: rule dicts, `SystemAlert` objects with the course's ids, async handlers, and the
course's per-agent psutil readings.

Where the course is vague, the choices (say so in the README):
- collection starts at once in the caller's event loop; `await stop()` or `async with` ends it;
- an agent whose endpoint fails is "unhealthy" and gets one critical "Agent Health Issue" alert,
  resolved when it answers again; an alert resolves (`resolved`, `resolution_timestamp`) when its
  condition clears;
- `rate_of_change` compares the per-second change between the last two collections (from the
  samples' own timestamps) with `rate_threshold`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from .alerts import Alert, moment
from .collector import HEARTBEAT_PERIOD, Collector, RegistrationError
from .notifiers import Dispatcher
from .periodic import every
from .settings import AGENT_DOWN_RULE, AlertRuleSpec, MonitoringSettings, Operator, RuleType, Severity, StaticAgent
from .system_metrics import course_system_samples

log = logging.getLogger(__name__)

AlertSeverity = Severity  # info, warning, critical, emergency
HEALTH_ALERT_NAME = "Agent Health Issue"
REQUIRED_RULE_FIELDS = ("name", "description", "condition_type")
FETCH_TIMEOUT_SECONDS = 10.0  # the course's


class MetricType(str, Enum):
    """Kind of a metric, as the course names them."""
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    SUMMARY = "summary"


@dataclass
class AgentMetric:
    """One value of one agent's metric."""

    agent_id: str
    metric_name: str
    metric_type: MetricType
    value: float
    timestamp: datetime = field(default_factory=datetime.now)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class SystemAlert:
    """An alert as the course's handlers receive it; `resolved` is set in place when it clears."""

    alert_id: str
    alert_name: str
    severity: Severity
    description: str
    affected_agents: list[str] = field(default_factory=list)
    timestamp: datetime = field(default_factory=datetime.now)
    resolved: bool = False
    resolution_timestamp: datetime | None = None


AlertHandler = Callable[[SystemAlert], Awaitable[None]]
Model = TypeVar("Model", bound=BaseModel)


class DistributedMetricsCollector:
    """The course's collector: register agents, add rules and handlers, read the overview and report."""

    def __init__(self, collection_interval: float = 30.0, *, collect_system_metrics: bool = True) -> None:
        settings = MonitoringSettings.model_validate({
            "collection_interval": collection_interval, "scrape_timeout": FETCH_TIMEOUT_SECONDS,
            # The course's health score reads these, and it alerts on the first failed collection.
            "health": {"cpu_metric": "system_cpu_usage", "memory_metric": "system_memory_usage",
                       "memory_unit": "percent",
                       "failures_before_alert": 1,
                       "unhealthy_after": 3 * collection_interval, "lost_after": 10 * collection_interval},
        })
        self.collection_interval = collection_interval
        self.alert_rules: list[dict[str, Any]] = []
        self.alert_handlers: list[AlertHandler] = []
        self.active_alerts: dict[str, SystemAlert] = {}
        self.collector = Collector(settings, on_alert_change=self._alert_changed, spread_start=False)
        if collect_system_metrics:
            self.collector.local_samples = course_system_samples
        self._dispatcher: Dispatcher[SystemAlert] | None = None  # made per start: its queue binds to a loop
        self._rule_names: dict[str, str] = {}       # internal rule id -> the course rule's name
        self._rule_numbers = itertools.count(1)
        self._firing: Counter[str] = Counter()      # course alert id -> internal alerts firing under it
        self._agent_info: dict[str, dict[str, Any]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> DistributedMetricsCollector:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.stop()

    async def _start(self) -> None:
        if self._session is not None:
            return
        self._session = self.collector.session = aiohttp.ClientSession()
        self._dispatcher = Dispatcher([self._deliver])
        self.collector.start()
        self._tasks = [asyncio.create_task(self._dispatcher.run(), name="course alert handlers"),
                       asyncio.create_task(self._heartbeats(self._session), name="course heartbeats")]

    async def _heartbeats(self, session: aiohttp.ClientSession) -> None:
        try:
            await every(HEARTBEAT_PERIOD, self.collector.check_heartbeats)
        finally:
            # Course code never stops the collector: when asyncio.run() ends and cancels this
            # task, the HTTP session still closes (no "Unclosed client session" at exit).
            await session.close()

    async def stop(self) -> None:
        """Stop every collection and background task and close the HTTP session."""
        await self.collector.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._dispatcher = None
        if self._session is not None:
            await self._session.close()
            self._session = self.collector.session = None

    # --- the course's API -----------------------------------------------------------------

    async def register_agent(self, agent_id: str, agent_info: dict[str, Any]) -> None:
        """Start collecting from `agent_info["metrics_endpoint"]` (and probing `health_endpoint`) now."""
        agent = _validated(StaticAgent, f"cannot register agent {agent_id!r}", {
            "agent_id": agent_id, "metrics_endpoint": agent_info.get("metrics_endpoint"),
            "health_endpoint": agent_info.get("health_endpoint"),
            "info": {key: str(value) for key, value in agent_info.items()
                     if key not in ("metrics_endpoint", "health_endpoint")}})
        await self._start()
        try:
            self.collector.register(agent.agent_id, str(agent.metrics_endpoint),
                                    str(agent.health_endpoint) if agent.health_endpoint else None, agent.info,
                                    "course")
        except RegistrationError as error:
            raise ValueError(str(error)) from None
        self._agent_info[agent_id] = dict(agent_info)

    async def unregister_agent(self, agent_id: str) -> bool:
        """Stop collecting from an agent and resolve its alerts; False if it was not registered."""
        self._agent_info.pop(agent_id, None)
        return await self.collector.deregister(agent_id)

    def add_alert_rule(self, rule: dict[str, Any]) -> None:
        """Add a rule in the course's form; ValueError names what is missing or wrong."""
        missing = [name for name in REQUIRED_RULE_FIELDS if name not in rule]
        if missing:
            raise ValueError(f"an alert rule needs {', '.join(REQUIRED_RULE_FIELDS)}; missing: {', '.join(missing)}")
        spec = self._spec(rule)
        self.collector.add_rule(spec)
        self._rule_names[spec.rule_id] = str(rule["name"])
        self.alert_rules.append(rule)

    def add_alert_handler(self, handler: AlertHandler) -> None:
        """Call `await handler(alert)` for every alert raised from now on."""
        self.alert_handlers.append(handler)

    def get_system_overview(self) -> dict[str, Any]:
        """The course's `system_overview` document (with the service's extras beside its keys)."""
        return self.collector.get_system_overview()

    async def generate_performance_report(self, time_window_hours: float = 24) -> dict[str, Any]:
        """The course's `performance_report` document over the last `time_window_hours`."""
        return self.collector.generate_performance_report(time_window_hours)

    @property
    def agent_registry(self) -> dict[str, dict[str, Any]]:
        """What the course keeps per agent: its info, times, status and endpoints."""
        return {agent_id: {"agent_info": self._agent_info.get(agent_id, dict(state.info)),
                           "status": state.status.value,
                           "registration_time": moment(state.registered_at, None),
                           "last_heartbeat": moment(state.last_success or state.registered_at, None),
                           "metrics_endpoint": state.metrics_endpoint, "health_endpoint": state.health_endpoint}
                for agent_id, state in self.collector.agents.items()}

    @property
    def metrics_buffer(self) -> list[AgentMetric]:
        """The recent metrics, oldest first (bounded, as the course's buffer of 10,000)."""
        return [AgentMetric(sample.agent_id, sample.name, _metric_type(sample.type), sample.value,
                            moment(sample.timestamp, None), dict(sample.labels))
                for sample in self.collector.store.recent]

    # --- rules and alerts -------------------------------------------------------------------

    def _spec(self, rule: dict[str, Any]) -> AlertRuleSpec:
        """The service's rule for a course rule; each added rule is a rule of its own, as in the course."""
        rate = rule["condition_type"] == RuleType.RATE_OF_CHANGE.value
        slug = re.sub(r"[^A-Za-z0-9_.:-]+", "_", str(rule["name"]))[:100]
        fields = {
            "rule_id": f"{slug}-{next(self._rule_numbers)}", "metric": rule.get("metric_name") or None,
            "agent_id": rule.get("agent_id") or None, "type": rule["condition_type"],
            # The course compares a rate with `rate_threshold` by `>`, whatever `operator` says.
            "operator": Operator.GT.value if rate else rule.get("operator", Operator.GT.value),
            "threshold": rule.get("rate_threshold", 0) if rate else rule.get("threshold", 0),
            # Wide enough to hold the previous collection (jitter included), not the one before.
            "window_seconds": 1.5 * self.collection_interval,
            "severity": rule.get("severity", Severity.WARNING.value), "description": str(rule["description"])}
        return _validated(AlertRuleSpec, f"alert rule {rule['name']!r} is invalid", fields)

    def _course_id(self, alert: Alert) -> tuple[str, str]:
        if alert.rule_id == AGENT_DOWN_RULE:
            return f"agent_health:{alert.agent_id}", HEALTH_ALERT_NAME
        name = self._rule_names.get(alert.rule_id, alert.rule_id)
        return f"{name}:{alert.agent_id}:{alert.metric}", name

    def _alert_changed(self, alert: Alert) -> None:
        """Keep the course's alerts in step with the service's (called as each alert fires or clears)."""
        alert_id, name = self._course_id(alert)
        current = self.active_alerts.get(alert_id)
        if alert.resolved_at is None:
            self._firing[alert_id] += 1
            if current is not None and not current.resolved:
                return  # one course alert, however many series of the metric fire
            course_alert = SystemAlert(alert_id, name, alert.severity, alert.description, [alert.agent_id],
                                       moment(alert.started_at, None))
            self.active_alerts[alert_id] = course_alert
            if self._dispatcher is not None:
                self._dispatcher.submit(course_alert)
            return
        self._firing[alert_id] -= 1
        if self._firing[alert_id] <= 0 and current is not None and not current.resolved:
            del self._firing[alert_id]
            current.resolved = True
            current.resolution_timestamp = moment(alert.resolved_at, None)

    async def _deliver(self, alerts: Sequence[SystemAlert]) -> None:
        for alert in alerts:
            for handler in list(self.alert_handlers):
                try:
                    await handler(alert)
                except Exception:  # noqa: BLE001 (one failing handler must not stop the others)
                    log.exception("alert handler %r failed", handler)


def _validated(model: type[Model], context: str, fields: dict[str, Any]) -> Model:
    """`model` from `fields`, or a ValueError saying `context` and every problem with its field."""
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors())
        raise ValueError(f"{context}: {problems}") from None


def _metric_type(kind: str) -> MetricType:
    try:
        return MetricType(kind)
    except ValueError:
        return MetricType.GAUGE  # Prometheus' untyped / unknown
