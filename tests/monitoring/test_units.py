"""Parsing, rules, alerts and health scoring, without a network."""

from __future__ import annotations

from typing import Any

import pytest

from monitoring.agents import AgentStatus
from monitoring.alerts import AGENT_DOWN_RULE, Alert, AlertBook, describe
from monitoring.health import health_score
from monitoring.parsing import (
    ParseError,
    parse_json,
    parse_metrics,
    parse_prometheus_text,
    Sample,
)
from monitoring.reports import recommendations
from monitoring.rules import RuleIndex, evaluate
from monitoring.settings import AlertRuleSpec
from monitoring.store import MetricStore
from monitoring.window import Window

PROM_TEXT = """# HELP cpu_usage_percent CPU.
# TYPE cpu_usage_percent gauge
cpu_usage_percent 72.5
# TYPE requests_total counter
requests_total{route="/a"} 10 1700000000000
"""


def rule(**fields: Any) -> AlertRuleSpec:
    return AlertRuleSpec(**{"rule_id": "r", "metric": "cpu_usage_percent", "threshold": 80, **fields})


# --- parsing ---------------------------------------------------------------------------------

def test_prometheus_text_through_prometheus_client() -> None:
    samples = parse_prometheus_text(PROM_TEXT, "a", now=5.0, limit=100)
    assert [(s.name, s.value, s.timestamp, s.labels, s.type) for s in samples] == [
        ("cpu_usage_percent", 72.5, 5.0, (), "gauge"),
        ("requests_total", 10.0, 1_700_000_000.0, (("route", "/a"),), "counter")]


def test_seed_json_shape() -> None:
    body = b'{"metrics": [{"name": "cpu_usage_percent", "type": "gauge", "value": 50, "labels": {"k": "v"}}]}'
    [sample] = parse_metrics(body, "application/json", "a", now=1.0, limit=10)
    assert (sample.name, sample.value, sample.labels) == ("cpu_usage_percent", 50.0, (("k", "v"),))


@pytest.mark.parametrize("body, content_type", [
    (b"this is {not: metrics", "text/plain"), (b'cpu{a="1" 5', "text/plain"), (b"\xff\xfe", "text/plain"),
    (b'{"metrics": "no"}', "application/json"), (b'{"metrics": [{"name": "x", "value": "high"}]}', "application/json"),
    (b"{broken json", "application/json")])
def test_garbage_is_a_parse_error(body: bytes, content_type: str) -> None:
    with pytest.raises(ParseError):
        parse_metrics(body, content_type, "a", now=1.0, limit=10)


def test_sample_limit() -> None:
    text = "".join(f"m{index} 1\n" for index in range(11))
    with pytest.raises(ParseError, match="more than 10 samples"):
        parse_prometheus_text(text, "a", 1.0, limit=10)
    with pytest.raises(ParseError, match="more than 1 samples"):
        parse_json('{"metrics": [{"name": "a", "value": 1}, {"name": "b", "value": 2}]}', "a", 1.0, limit=1)


# --- rules -----------------------------------------------------------------------------------

@pytest.mark.parametrize("operator, threshold, value, firing", [
    (">", 80, 81, True), (">", 80, 80, False), ("<", 10, 9, True), (">=", 80, 80, True), ("<=", 5, 6, False),
    ("==", 1, 1, True), ("!=", 1, 1, False)])
def test_threshold_operators(operator: str, threshold: float, value: float, firing: bool) -> None:
    result = evaluate(rule(operator=operator, threshold=threshold), Window.of([(1.0, value)]))
    assert result is not None and result.firing is firing and result.value == value


def test_rate_of_change_uses_sample_timestamps() -> None:
    spec = rule(type="rate_of_change", threshold=1.0, window_seconds=60)
    # 100 -> 160 over 30 s of sample time = 2/s, whatever the arrival times were.
    result = evaluate(spec, Window.of([(0.0, 10.0), (100.0, 100.0), (115.0, 130.0), (130.0, 160.0)]))
    assert result is not None and result.value == pytest.approx(2.0) and result.firing
    # The point at t=0 is outside the 60 s window and must not dilute the rate.
    assert evaluate(spec, Window.of([(0.0, 10.0)])) is None


def test_rule_index_only_yields_matching_rules() -> None:
    index = RuleIndex([rule(rule_id="all"), rule(rule_id="only-b", agent_id="b"),
                       rule(rule_id="mem", metric="memory_usage_percent")])
    assert [r.rule_id for r in index.for_sample("cpu_usage_percent", "a")] == ["all"]
    assert sorted(r.rule_id for r in index.for_sample("cpu_usage_percent", "b")) == ["all", "only-b"]
    assert index.for_sample("unrelated", "a") == []
    index.add(rule(rule_id="all", metric="memory_usage_percent"))  # replace moves it to the new metric
    assert index.for_sample("cpu_usage_percent", "a") == []


# --- alerts ----------------------------------------------------------------------------------

def test_alerts_deduplicate_and_resolve_with_time() -> None:
    changes: list[tuple[str, str]] = []
    book = AlertBook(10, lambda alert: changes.append((alert.rule_id, alert.status)))
    spec = rule()
    for now, value in ((1.0, 90), (2.0, 95), (3.0, 99)):
        book.observe(evaluate(spec, Window.of([(now, value)])), "a", "cpu", (), now)  # type: ignore[arg-type]
    assert changes == [("r", "firing")] and len(book.active) == 1
    assert next(iter(book.active.values())).value == 99
    book.observe(evaluate(spec, Window.of([(4.0, 50)])), "a", "cpu", (), 4.0)  # type: ignore[arg-type]
    assert changes[-1] == ("r", "resolved") and not book.active
    assert book.history[-1].resolved_at == 4.0 and book.history[-1].started_at == 1.0


def test_active_alerts_are_capped_and_the_excess_counted() -> None:
    changes: list[Alert] = []
    book = AlertBook(10, changes.append, max_active=2)
    spec = rule(metric=None)  # every metric: one alert per series
    for metric in ("a", "b", "c"):
        book.observe(evaluate(spec, Window.of([(1.0, 99)])), "agent", metric, (), 1.0)  # type: ignore[arg-type]
    assert len(book.active) == 2 and book.dropped == 1 and len(changes) == 2


def test_agent_down_alert_fires_once_and_resolves() -> None:
    changes: list[Alert] = []
    book = AlertBook(10, changes.append)
    book.agent_down("a", "timed out", 1.0)
    book.agent_down("a", "HTTP 500", 2.0)
    assert [alert.rule_id for alert in changes] == [AGENT_DOWN_RULE]
    assert changes[0].description.endswith("HTTP 500") and changes[0].severity.value == "critical"
    book.agent_up("a", 3.0)
    assert changes[-1].status == "resolved" and changes[-1].resolved_at == 3.0


def test_history_is_bounded() -> None:
    book = AlertBook(3, lambda alert: None)
    for index in range(10):
        book.agent_down(f"a{index}", "x", index)
        book.agent_up(f"a{index}", index + 0.5)
    assert len(book.history) == 3 and book.fired_total == 10


# --- store -----------------------------------------------------------------------------------

def test_store_bounds_windows_series_and_buffer() -> None:
    from monitoring.parsing import Sample

    store = MetricStore(recent_size=5, window_size=3, max_series_per_agent=2)
    for index in range(10):
        store.add(Sample("a", "m", float(index), float(index)))
    store.add(Sample("a", "n", 1.0, 1.0))
    assert store.add(Sample("a", "third", 1.0, 1.0)) is None and store.dropped_series == 1
    assert len(store.recent) == 5
    assert store.values_since("a", "m", 0) == [7.0, 8.0, 9.0]
    store.forget("a")
    assert store.series_count("a") == 0


# --- health ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cpu, memory, active, alerts, score", [
    (10, 10, True, 0, 100), (81, 10, True, 0, 70), (61, 10, True, 0, 85), (10, 86, True, 0, 75),
    (10, 71, True, 0, 90), (90, 90, False, 0, 0), (10, 10, False, 2, 30), (None, None, True, 0, 100),
    (50, 50, True, 12, 0)])
def test_seed_health_score(cpu: float | None, memory: float | None, active: bool, alerts: int, score: float) -> None:
    assert health_score(cpu, memory, active, alerts) == score


def test_recommendations() -> None:
    """The course's advice from the report's per-agent averages: low health, CPU > 70, memory > 80, > 30 % unhealthy."""
    performance = {
        "a": {"health_score": 60, "avg_cpu_usage": 75, "avg_memory_usage": 85, "last_error": None},
        "b": {"health_score": 100, "avg_cpu_usage": 10, "avg_memory_usage": 10, "last_error": None},
        "c": {"health_score": 50, "avg_cpu_usage": 0, "avg_memory_usage": 0, "last_error": "timed out"}}
    advice = recommendations(performance)
    assert any(line.startswith("a: health score 60.0 is below 70") for line in advice)
    assert any(line.startswith("a: CPU averages 75.0%") for line in advice)
    assert any(line.startswith("a: memory averages 85.0%") for line in advice)
    assert any("timed out" in line for line in advice)
    assert advice[-1].startswith("2 of 3 agents score below 70 (more than 30%)")
    assert not any(line.startswith("b:") for line in advice)
    assert recommendations({"a": performance["b"], "b": performance["b"], "c": performance["b"]}) == []


@pytest.mark.parametrize("template, text", [
    ("{agent_id} {metric_name} at {value:.1f}%", "a cpu at 91.5%"),
    ("{value.__class__} {agent_id[0]} {agent_id!r}", "{value.__class__} {agent_id[0]} {agent_id!r}"),
    ("{unknown} and {value}", "{unknown} and 91.5"),
    ("{value:{agent_id}}", "{value:{agent_id}}"),
    ("{value:>zz}", "{value:>zz}"),
    ("unbalanced {value", "unbalanced {value"),
    ("{value:999999999} {value:.999999f} {agent_id:*^99}", "{value:999999999} {value:.999999f} " + "a".center(99, "*")),
    ("{value:>10.2f}|{value:,}|{value:%}", "     91.50|91.5|9150.000000%"),
])
def test_rule_descriptions_fill_only_the_three_names(template: str, text: str) -> None:
    assert describe(template, "a", "cpu", 91.5) == text


@pytest.mark.parametrize(("limit", "percent"), [
    ("1073741824", 50.0), ("1Gi", 50.0), ("1024Mi", 50.0), ("1.5Gi", 100 / 3),
    ("1", None), ("0", None), ("-5", None), ("1e-300", None), ("1Gb", None), ("", None), ("9" * 300, None)])
def test_memory_in_bytes_is_scored_against_a_plausible_limit_only(limit: str, percent: float | None) -> None:
    """Registration info is anyone's text: only a byte count or quantity of at least 1 MiB is a limit, so the
    percentage is always finite (or absent: memory is then not scored)."""
    from monitoring.agents import AgentState
    from monitoring.health import memory_percentages
    from monitoring.settings import MonitoringSettings

    state = AgentState("a", "http://127.0.0.1:1/metrics", None, {"memory_limit_bytes": limit}, "api", 0.0)
    result = memory_percentages(MonitoringSettings(), state, [2**29])
    assert result == ([] if percent is None else [pytest.approx(percent)])
    percent_mode = MonitoringSettings(health={"memory_unit": "percent", "memory_metric": "memory_percent"})
    assert memory_percentages(percent_mode, state, [42.0]) == [42.0]


async def test_the_per_agent_families_are_valid_text_whatever_the_agent_ids() -> None:
    """/metrics writes the per-agent families directly (fast at 10,000 agents): Prometheus' own parser reads
    what the handler serves back, label values escaped, one sample per agent and family, every family once."""
    from prometheus_client.parser import text_string_to_metric_families

    from monitoring.collector import Collector
    from monitoring.exposition import AGENTS_PER_SLICE, Exposition, build_registry
    from monitoring.notifiers import Dispatcher
    from monitoring.settings import MonitoringSettings

    collector = Collector(MonitoringSettings(), on_alert_change=lambda alert: None)
    odd = ['plain', 'with "quotes"', "back\\slash", "line\nbreak"]
    filler = [f"agent-{index}" for index in range(AGENTS_PER_SLICE)]  # the odd ones span two slices
    for agent_id in [*odd[:2], *filler, *odd[2:]]:  # remote-write agent ids are any label value
        collector.register(agent_id, "prometheus-remote-write", source="remote_write", check=False)
    collector.agents["plain"].last_scrape_duration = 0.25
    exposition = Exposition(build_registry(collector, Dispatcher([])), collector, max_age=0.0, write_timeout=1.0,
                            max_responses=1)
    parsed = list(text_string_to_metric_families((await exposition.body()).decode()))
    names = [family.name for family in parsed]
    families = {family.name: {sample.labels["agent_id"]: sample.value for sample in family.samples}
                for family in parsed if family.name.startswith("monitoring_agent_")}
    assert set(families) == {"monitoring_agent_up", "monitoring_agent_health_score",
                             "monitoring_agent_last_scrape_duration_seconds"}
    assert len(names) == len(set(names))  # each family in one group, whatever the slices
    assert all(set(samples) == {*odd, *filler} for samples in families.values())
    assert families["monitoring_agent_last_scrape_duration_seconds"]["plain"] == 0.25
    assert families["monitoring_agent_health_score"]["plain"] == 50.0  # pending (not active): -50


def test_the_scores_on_metrics_follow_every_change_of_what_they_read() -> None:
    """Resource penalties are kept between renders: a new reading, the status, an alert, a forgotten and
    re-registered agent each change the score at once, and they equal the seed's formula."""
    from monitoring.collector import Collector
    from monitoring.health import active_alert_counts, current_scores, refresh_penalty
    from monitoring.settings import MonitoringSettings

    def scores() -> dict[str, float]:
        return {state.agent_id: score for state, score in current_scores(collector, active_alert_counts(collector))}

    settings = MonitoringSettings(health={"memory_unit": "percent", "memory_metric": "mem"})
    collector = Collector(settings, on_alert_change=lambda alert: None)
    state = collector.register("a", "http://127.0.0.1:1/metrics", source="static")
    collector._succeeded(state, 1.0)
    collector.process([Sample("a", "agent_cpu_usage_percent", 50.0, 1.0), Sample("a", "mem", 10.0, 1.0)], 1.0)
    refresh_penalty(collector, state)  # as a scrape does
    assert scores() == {"a": 100.0}
    collector.process([Sample("a", "agent_cpu_usage_percent", 90.0, 2.0)], 2.0)
    assert scores() == {"a": 70.0} == {"a": health_score(90.0, 10.0, True, 0)}
    collector.process([Sample("a", "mem", 75.0, 3.0)], 3.0)
    assert scores() == {"a": 60.0}
    collector.process([Sample("a", "mem", 99.0, 2.5)], 3.0)  # out of order: not stored, nothing changes
    assert scores() == {"a": 60.0}
    collector.alerts.agent_down("a", "timed out", 4.0)
    assert scores() == {"a": 50.0}
    state.status = AgentStatus.UNHEALTHY
    assert scores() == {"a": 0.0}


async def test_a_re_registered_agent_starts_from_its_new_readings() -> None:
    from monitoring.collector import Collector
    from monitoring.health import active_alert_counts, current_scores, refresh_penalty
    from monitoring.settings import MonitoringSettings

    collector = Collector(MonitoringSettings(), on_alert_change=lambda alert: None)
    first = collector.register("a", "http://127.0.0.1:1/metrics", source="static")
    collector.process([Sample("a", "agent_cpu_usage_percent", 95.0, 1.0)], 1.0)
    refresh_penalty(collector, first)
    await collector.deregister("a")
    second = collector.register("a", "http://127.0.0.1:1/metrics", source="static")
    collector._succeeded(second, 2.0)
    collector.process([Sample("a", "agent_cpu_usage_percent", 10.0, 2.0)], 2.0)
    assert [score for _, score in current_scores(collector, active_alert_counts(collector))] == [100.0]
