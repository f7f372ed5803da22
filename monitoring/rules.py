"""Alert rules over samples: threshold and rate-of-change, indexed by metric name.

A sample is checked only against the rules for its metric name (and agent), so adding
rules for other metrics costs nothing per sample.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .settings import AlertRuleSpec, Operator, RuleType
from .window import Window

_COMPARE: dict[Operator, Callable[[float, float], bool]] = {
    Operator.GT: operator.gt, Operator.LT: operator.lt, Operator.GE: operator.ge,
    Operator.LE: operator.le, Operator.EQ: operator.eq, Operator.NE: operator.ne,
}


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one rule on one series: whether it holds, and the value compared."""

    rule: AlertRuleSpec
    firing: bool
    value: float


def evaluate(rule: AlertRuleSpec, window: Window) -> Evaluation | None:
    """Evaluate `rule` on a series window; None when there is not enough data."""
    if not window:
        return None
    if rule.type is RuleType.THRESHOLD:
        value = window.newest_value()
    else:
        # Per-second change over the look-back, from the samples' own timestamps.
        newest_time, newest_value = window.newest()
        oldest = window.first_since(newest_time - rule.window_seconds)  # at the latest, the newest point
        if oldest is None or newest_time <= oldest[0]:
            return None
        oldest_time, oldest_value = oldest
        value = (newest_value - oldest_value) / (newest_time - oldest_time)
    return Evaluation(rule, _COMPARE[rule.operator](value, rule.threshold), value)


class RuleIndex:
    """Rules by metric name (rules for every metric apart); `for_sample` yields only the rules that can match."""

    def __init__(self, rules: Iterable[AlertRuleSpec] = ()) -> None:
        self._rules: dict[str, AlertRuleSpec] = {}
        self._by_metric: dict[str | None, list[AlertRuleSpec]] = defaultdict(list)
        for rule in rules:
            self.add(rule)

    def add(self, rule: AlertRuleSpec) -> None:
        """Add or replace (same rule_id) a rule."""
        self.remove(rule.rule_id)
        self._rules[rule.rule_id] = rule
        self._by_metric[rule.metric].append(rule)

    def remove(self, rule_id: str) -> AlertRuleSpec | None:
        rule = self._rules.pop(rule_id, None)
        if rule is not None:
            self._by_metric[rule.metric].remove(rule)
        return rule

    def for_sample(self, metric: str, agent_id: str) -> list[AlertRuleSpec]:
        rules = self._by_metric.get(metric)
        every = self._by_metric.get(None)
        if every:
            rules = [*(rules or ()), *every]
        if not rules:
            return []
        return [rule for rule in rules if rule.agent_id is None or rule.agent_id == agent_id]

    def all(self) -> list[AlertRuleSpec]:
        return list(self._rules.values())
