"""Alerts: raised once while a condition holds, resolved when it clears, kept in a bounded history.

Every change (fired or resolved) is handed to the dispatcher, which delivers it to the
configured handlers without blocking the collector.
"""

from __future__ import annotations

import re
import string
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .rules import Evaluation
from .settings import AGENT_DOWN_RULE, Severity

AlertKey = tuple[str, str, str, tuple[tuple[str, str], ...]]  # rule id, agent id, metric, series labels
# The labels the service itself gives an alert (notifiers.AlertmanagerNotifier): a series label of one of
# these names would pass an agent's words off as the alert's identity, so it is kept as exported_<name>.
IDENTITY_LABELS = frozenset({"alertname", "agent_id", "severity", "metric"})
_FIELDS = ("agent_id", "metric_name", "value")  # what a rule's description may name
# A format spec with width and precision below 100: `{value:999999999}` would build a huge string.
_SPEC = re.compile(r"^(.?[<>=^])?[+\- ]?#?0?\d{0,2}[,_]?(\.\d{1,2})?[bcdeEfFgGnosxX%]?$")


def describe(template: str, agent_id: str, metric_name: str, value: float) -> str:
    """A rule's description with {agent_id}, {metric_name} and {value} (and a format spec) filled in.

    Only those plain names are replaced: `{value.__class__}` or `{agent_id[0]}` stay as written, so
    a rule's text can never reach attributes of Python objects; nor can a format spec make the text
    large (width and precision stay below 100); a malformed template stays as is.
    """
    values = {"agent_id": agent_id, "metric_name": metric_name, "value": value}
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:
        return template
    out = []
    for literal, name, spec, conversion in parts:
        out.append(literal)
        if name is None:
            continue
        placeholder = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if name not in _FIELDS or conversion is not None or not _SPEC.match(spec or ""):
            out.append(placeholder)
            continue
        try:
            out.append(format(values[name], spec or ""))
        except (ValueError, TypeError):
            out.append(placeholder)
    return "".join(out)




def series_labels(labels: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """A series' labels as an alert carries them (sorted): one named as an identity label is renamed
    `exported_<name>`, prefixed again while that name is taken too (Prometheus' honor_labels: false), so
    the rule's own alertname, agent_id, severity and metric win wherever the alert goes."""
    if not any(name in IDENTITY_LABELS for name, _ in labels):
        return labels
    taken = {name for name, _ in labels} | IDENTITY_LABELS
    renamed = []
    for name, value in labels:
        if name in IDENTITY_LABELS:
            while name in taken:
                name = "exported_" + name
            taken.add(name)
        renamed.append((name, value))
    return tuple(sorted(renamed))


def moment(timestamp: float, tz: timezone | None = timezone.utc) -> datetime:
    """datetime.fromtimestamp, total: a time outside datetime's years 1..9999 (a hostile sample's, a tampered
    file's) is the nearest end of that range, NaN the earliest, so no reader ever raises. `tz=None` gives
    naive local time (the course's API)."""
    try:
        return datetime.fromtimestamp(timestamp, tz)
    except (OverflowError, OSError, ValueError):
        edge = datetime.max if timestamp > 0 else datetime.min  # NaN compares False: the earliest
        return edge if tz is None else edge.replace(tzinfo=tz)


def iso(timestamp: float) -> str:
    """RFC 3339 in UTC, total (see moment)."""
    return moment(timestamp).isoformat().replace("+00:00", "Z")


@dataclass
class Alert:
    """One alert instance: a rule firing for one agent (and series)."""

    rule_id: str
    agent_id: str
    severity: Severity
    description: str
    value: float
    started_at: float
    labels: tuple[tuple[str, str], ...] = ()
    resolved_at: float | None = None
    metric: str = ""  # the metric the rule fired on ("" for the agent-health alert)

    def __post_init__(self) -> None:
        # Whoever makes the alert (a rule, a restored state file), its identity is the rule's.
        self.labels = series_labels(self.labels)

    @property
    def key(self) -> AlertKey:
        return (self.rule_id, self.agent_id, self.metric, self.labels)

    @property
    def status(self) -> str:
        return "resolved" if self.resolved_at is not None else "firing"

    def as_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "agent_id": self.agent_id, "metric": self.metric,
                "severity": self.severity.value, "status": self.status, "description": self.description,
                "value": self.value,
                "labels": dict(self.labels), "started_at": iso(self.started_at),
                "resolved_at": iso(self.resolved_at) if self.resolved_at is not None else None}


class AlertBook:
    """Active alerts, de-duplicated by (rule, agent, series), and the recently resolved ones."""

    def __init__(self, history_size: int, on_change: Callable[[Alert], None], max_active: int = 10_000) -> None:
        self.active: dict[AlertKey, Alert] = {}
        self.history: deque[Alert] = deque(maxlen=history_size)
        self.fired_total = 0
        self.dropped = 0  # alerts not raised because `max_active` were firing
        self._max_active = max_active
        self._on_change = on_change

    def observe(self, evaluation: Evaluation, agent_id: str, metric: str, labels: tuple[tuple[str, str], ...],
                now: float) -> None:
        """Fire, update or resolve the alert of one rule on one series."""
        rule = evaluation.rule
        labels = series_labels(labels)  # as the Alert keeps them: its key must find it again
        key = (rule.rule_id, agent_id, metric, labels)
        current = self.active.get(key)
        if evaluation.firing and current is None:
            description = (describe(rule.description, agent_id, metric, evaluation.value) if rule.description else
                           f"{metric} {rule.type.value} {rule.operator.value} {rule.threshold:g} "
                           f"(value {evaluation.value:g})")
            self._fire(Alert(rule.rule_id, agent_id, rule.severity, description, evaluation.value, now, labels,
                             metric=metric))
        elif evaluation.firing and current is not None:
            current.value = evaluation.value
        elif current is not None:
            self._resolve(current, now)

    def agent_down(self, agent_id: str, reason: str, now: float) -> None:
        """Raise the agent-health alert (once) for an agent that can't be scraped."""
        key = (AGENT_DOWN_RULE, agent_id, "", ())
        if key in self.active:
            self.active[key].description = f"agent {agent_id} cannot be scraped: {reason}"
            return
        self._fire(Alert(AGENT_DOWN_RULE, agent_id, Severity.CRITICAL,
                         f"agent {agent_id} cannot be scraped: {reason}", 0.0, now))

    def agent_up(self, agent_id: str, now: float) -> None:
        """Resolve the agent-health alert of an agent that answers again."""
        current = self.active.get((AGENT_DOWN_RULE, agent_id, "", ()))
        if current is not None:
            self._resolve(current, now)

    def forget_agent(self, agent_id: str, now: float) -> None:
        """Resolve every active alert of a deregistered agent."""
        for alert in [alert for alert in self.active.values() if alert.agent_id == agent_id]:
            self._resolve(alert, now)

    def forget_rule(self, rule_id: str, now: float) -> None:
        """Resolve every active alert of a removed (or replaced) rule: nothing would clear them now."""
        for alert in [alert for alert in self.active.values() if alert.rule_id == rule_id]:
            self._resolve(alert, now)

    def restore(self, alert: Alert) -> bool:
        """Put back an alert that was active before a restart, without reporting it as a change.

        Its receivers were told when it fired (and Alertmanager, which the resend loop keeps
        informed, de-duplicates by labels anyway), so it is neither handed to `on_change` nor
        counted in `fired_total`; it resolves (and is reported) as usual once its condition clears.
        False when the same alert is already active or `max_active` alerts are firing (counted in
        `dropped`).
        """
        if alert.key in self.active:
            return False
        if len(self.active) >= self._max_active:
            self.dropped += 1
            return False
        self.active[alert.key] = alert
        return True

    def _fire(self, alert: Alert) -> None:
        if len(self.active) >= self._max_active:
            self.dropped += 1
            return
        self.active[alert.key] = alert
        self.fired_total += 1
        self._on_change(alert)

    def _resolve(self, alert: Alert, now: float) -> None:
        alert.resolved_at = now
        del self.active[alert.key]
        self.history.append(alert)
        self._on_change(alert)
