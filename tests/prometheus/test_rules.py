"""The PrometheusRule's groups are valid Prometheus (`promtool check rules`) and every alert fires on a
bad series and stays quiet on a good one (`promtool test rules`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.prometheus.rules import prometheus_rule
from components.config import parse_system_config

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="needs promtool (Debian package prometheus; "
                                                         "./run test installs it when it can)")

SYSTEM = parse_system_config({"namespace": "agents", "agents": [{"agent_id": "a", "image": "x/a"}]})
RUNBOOK = "https://github.com/example/multi-agent-system/blob/main/docs/runbooks.md"
AGENT = {"namespace": "agents", "agent_id": "a"}
SEL = 'namespace="agents", agent_id="a"'


def histogram(name: str, bounds: list[str], filled: str, labels: str = "") -> list[dict[str, str]]:
    """Cumulative buckets where every observation (1/s) falls into the bucket `filled`."""
    reached = bounds.index(filled)
    return [{"series": f'{name}_bucket{{{SEL}{labels}, le="{bound}"}}', "values": "0+60x30" if i >= reached else "0x30"}
            for i, bound in enumerate(bounds)]


def cumulative(increments: list[float]) -> str:
    """promtool values of a counter growing by `increments`, one per minute."""
    total, values = 0.0, ["0"]
    for step in increments:
        total += step
        values.append(f"{total:g}")
    return " ".join(values)


CATEGORIES = {"AgentMessageLatencyHigh": "system_performance", "AgentUtilisationHigh": "system_performance",
              "AgentCoordinationSlow": "coordination_health", "AgentConsensusFailing": "coordination_health",
              "AgentReasoningAnomaly": "reasoning_quality", "AgentPlanningAnomaly": "reasoning_quality"}


def expected(name: str, severity: str, labels: dict[str, str], summary: str, description: str) -> dict[str, Any]:
    category = {"category": CATEGORIES[name]} if name in CATEGORIES else {}
    return {"exp_labels": {"severity": severity, "system": "multi-agent-system", **category, **labels},
            "exp_annotations": {"summary": summary, "description": description,
                                "runbook_url": f"{RUNBOOK}#{name.lower()}"}}


def levels(name: str, labels: dict[str, str], summary: str, description: str,
           thresholds: dict[str, str]) -> list[dict[str, Any]]:
    return [expected(name, severity, labels, summary, description.replace("THRESHOLD", value))
            for severity, value in thresholds.items()]


# The agent container's memory limit (1000 bytes) and the sidecar's, which HighMemoryUsage leaves out, as two
# kube-state-metrics replicas report them.
MEMORY_LIMITS = [{"series": f'kube_pod_container_resource_limits{{namespace="agents", pod="p", container="{container}", '
                            f'resource="memory", unit="byte", instance="{instance}"}}', "values": "1000x30"}
                 for container in ("agent", "istio-proxy") for instance in ("ksm-0", "ksm-1")]
CLUSTER = {"cluster_name": "c1"}
ROUTE = ', source_cluster="c1", destination_cluster="c2", message_type="task"'
COORDINATION = ', cluster_name="c1", coordination_type="handoff", agent_count="3"'
LATENCY_BOUNDS = ["100", "500", "1000", "5000", "10000", "+Inf"]
# alert name -> (bad series, good series, expected alerts on the bad series)
CASES: dict[str, tuple[list[dict[str, str]], list[dict[str, str]], list[dict[str, Any]]]] = {
    "AgentDown": (
        [{"series": f'up{{{SEL}, pod="p", job="a", instance="x"}}', "values": "0x30"}],
        [{"series": f'up{{{SEL}, pod="p", job="a", instance="x"}}', "values": "1x30"}],
        [expected("AgentDown", "critical", {**AGENT, "pod": "p", "job": "a", "instance": "x"},
                  "Agent a in agents is down", "Prometheus cannot scrape the agent's metrics endpoint.")]),
    # Ready all along, yet not scraped: a partition. A pod whose readiness flaps (an overloaded agent) is not.
    "AgentNetworkPartition": (
        [{"series": f'up{{{SEL}, pod="p", job="a", instance="x"}}', "values": "0x30"},
         {"series": 'kube_pod_status_ready{namespace="agents", pod="p", condition="true"}', "values": "1x30"}],
        [{"series": f'up{{{SEL}, pod="p", job="a", instance="x"}}', "values": "0x30"},
         {"series": 'kube_pod_status_ready{namespace="agents", pod="p", condition="true"}', "values": "1 0 " * 15}],
        [expected("AgentNetworkPartition", "critical", {**AGENT, "pod": "p", "job": "a", "instance": "x"},
                  "Agent a in agents is cut off", "The pod is Ready, yet Prometheus cannot reach its metrics "
                                                  "endpoint: a network partition between them.")]),
    "HighCpuUsage": (
        [{"series": f'agent_cpu_usage_percent{{{SEL}, pod="p"}}', "values": "86x30"}],
        [{"series": f'agent_cpu_usage_percent{{{SEL}, pod="p"}}', "values": "84x30"}],
        [expected("HighCpuUsage", "warning", AGENT, "High CPU usage of a in agents",
                  "CPU usage is 86%, above 85%.")]),
    "HighMemoryUsage": (
        [{"series": f'agent_memory_usage_bytes{{{SEL}, pod="p"}}', "values": "910x30"}, *MEMORY_LIMITS],
        [{"series": f'agent_memory_usage_bytes{{{SEL}, pod="p"}}', "values": "890x30"}, *MEMORY_LIMITS],
        [expected("HighMemoryUsage", "warning", {**AGENT, "pod": "p"}, "High memory usage of a in agents",
                  "Memory usage is 91% of the container's limit, above 90%.")]),
    "AgentCrashLooping": (
        [{"series": 'kube_pod_container_status_waiting_reason{namespace="agents", pod="p", container="agent", '
                    'reason="CrashLoopBackOff"}', "values": "1x30"}],
        [{"series": 'kube_pod_container_status_waiting_reason{namespace="agents", pod="p", container="agent", '
                    'reason="CrashLoopBackOff"}', "values": "0x30"}],
        [expected("AgentCrashLooping", "warning",
                  {"namespace": "agents", "pod": "p", "container": "agent", "reason": "CrashLoopBackOff"},
                  "Agent pod p is crash looping", "Container agent of agents/p keeps restarting.")]),
    "AgentReplicasMismatch": (
        [{"series": 'kube_deployment_spec_replicas{namespace="agents", deployment="a"}', "values": "3x30"},
         {"series": 'kube_deployment_status_replicas_available{namespace="agents", deployment="a"}', "values": "1x30"}],
        [{"series": 'kube_deployment_spec_replicas{namespace="agents", deployment="a"}', "values": "3x30"},
         {"series": 'kube_deployment_status_replicas_available{namespace="agents", deployment="a"}', "values": "3x30"}],
        [expected("AgentReplicasMismatch", "warning", {"namespace": "agents", "deployment": "a"},
                  "Deployment agents/a lacks replicas",
                  "Fewer replicas are available than desired; check pending or failing pods.")]),
    "AgentHpaAtMaxReplicas": (
        [{"series": 'kube_horizontalpodautoscaler_status_current_replicas{namespace="agents", '
                    'horizontalpodautoscaler="a"}', "values": "5x30"},
         {"series": 'kube_horizontalpodautoscaler_spec_max_replicas{namespace="agents", '
                    'horizontalpodautoscaler="a"}', "values": "5x30"}],
        [{"series": 'kube_horizontalpodautoscaler_status_current_replicas{namespace="agents", '
                    'horizontalpodautoscaler="a"}', "values": "2x30"},
         {"series": 'kube_horizontalpodautoscaler_spec_max_replicas{namespace="agents", '
                    'horizontalpodautoscaler="a"}', "values": "5x30"}],
        [expected("AgentHpaAtMaxReplicas", "warning", {"namespace": "agents", "horizontalpodautoscaler": "a"},
                  "HPA agents/a is at its maximum",
                  "The agent cannot scale out further; raise scaling.max_replicas or its quota.")]),
    "AgentPdbNotEnoughHealthyPods": (
        [{"series": 'kube_poddisruptionbudget_status_current_healthy{namespace="agents", poddisruptionbudget="a"}',
          "values": "1x30"},
         {"series": 'kube_poddisruptionbudget_status_desired_healthy{namespace="agents", poddisruptionbudget="a"}',
          "values": "2x30"}],
        [{"series": 'kube_poddisruptionbudget_status_current_healthy{namespace="agents", poddisruptionbudget="a"}',
          "values": "2x30"},
         {"series": 'kube_poddisruptionbudget_status_desired_healthy{namespace="agents", poddisruptionbudget="a"}',
          "values": "2x30"}],
        [expected("AgentPdbNotEnoughHealthyPods", "warning", {"namespace": "agents", "poddisruptionbudget": "a"},
                  "PDB agents/a has too few healthy pods", "Voluntary evictions (node drains) are blocked for "
                                                           "this agent.")]),
    "AgentClusterCapacityLow": (
        [{"series": 'kube_deployment_spec_replicas{namespace="agents", deployment="a"}', "values": "4x30"},
         {"series": 'kube_deployment_status_replicas_available{namespace="agents", deployment="a"}',
          "values": "2x30"}],
        [{"series": 'kube_deployment_spec_replicas{namespace="agents", deployment="a"}', "values": "4x30"},
         {"series": 'kube_deployment_status_replicas_available{namespace="agents", deployment="a"}',
          "values": "4x30"}],
        [expected("AgentClusterCapacityLow", "critical", {"namespace": "agents"},
                  "Agent cluster agents runs below capacity",
                  "Only 50% of its desired agent replicas are available (threshold 0.8).")]),
    "AgentMessageLatencyHigh": (
        # every message takes 5-10 s: p95 = 5000 + 5000 * 0.95 = 9750 ms, above both thresholds; 0.5-1 s: quiet
        histogram("message_delivery_latency", LATENCY_BOUNDS, "10000", ROUTE),
        histogram("message_delivery_latency", LATENCY_BOUNDS, "1000", ROUTE),
        levels("AgentMessageLatencyHigh", {**AGENT, "source_cluster": "c1", "destination_cluster": "c2"},
               "Slow message delivery to a in agents", "p95 message delivery latency is 9750ms (threshold "
                                                       "THRESHOLDms).", {"warning": "1000", "critical": "5000"})),
    "AgentCoordinationSlow": (
        histogram("agent_coordination_efficiency", ["5", "10", "30", "60", "+Inf"], "60", COORDINATION),
        histogram("agent_coordination_efficiency", ["5", "10", "30", "60", "+Inf"], "5", COORDINATION),
        levels("AgentCoordinationSlow", {**AGENT, **CLUSTER, "coordination_type": "handoff"},
               "Slow coordination in a in agents", "p95 coordination time is 58.5s (threshold THRESHOLDs).",
               {"warning": "5", "critical": "10"})),
    "AgentConsensusFailing": (
        [{"series": f'consensus_success_rate{{{SEL}, cluster_name="c1", consensus_algorithm="raft"}}',
          "values": "0.69x30"}],
        [{"series": f'consensus_success_rate{{{SEL}, cluster_name="c1", consensus_algorithm="raft"}}',
          "values": "0.86x30"}],
        levels("AgentConsensusFailing", {**AGENT, **CLUSTER, "consensus_algorithm": "raft"},
               "Consensus failing in a in agents", "Only 69% of consensus decisions succeed (threshold THRESHOLD).",
               {"warning": "0.85", "critical": "0.7"})),
    "AgentTaskErrorsHigh": (
        [{"series": f'agent_tasks_total{{{SEL}, agent_type="planner", status="success"}}', "values": "0+1x30"},
         {"series": f'agent_tasks_total{{{SEL}, agent_type="planner", status="failed"}}', "values": "0+1x30"}],
        [{"series": f'agent_tasks_total{{{SEL}, agent_type="planner", status="success"}}', "values": "0+1x30"},
         {"series": f'agent_tasks_total{{{SEL}, agent_type="planner", status="failed"}}', "values": "0x30"}],
        levels("AgentTaskErrorsHigh", {**AGENT, "agent_type": "planner"}, "Many failing tasks in a in agents",
               "50% of tasks fail (threshold THRESHOLD).", {"warning": "0.05", "critical": "0.2"})),
    "AgentUtilisationHigh": (
        [{"series": f'agent_utilization{{{SEL}, cluster_name="c1", task_type="plan"}}', "values": "0.96x30"}],
        [{"series": f'agent_utilization{{{SEL}, cluster_name="c1", task_type="plan"}}', "values": "0.79x30"}],
        levels("AgentUtilisationHigh", {**AGENT, **CLUSTER}, "a in agents is saturated",
               "Utilisation is 96% (threshold THRESHOLD).", {"warning": "0.8", "critical": "0.95"})),
    "AgentHealthScoreLow": (
        [{"series": 'monitoring_agent_health_score{agent_id="a", job="monitoring", instance="m"}', "values": "30x30"}],
        [{"series": 'monitoring_agent_health_score{agent_id="a", job="monitoring", instance="m"}', "values": "90x30"}],
        [expected("AgentHealthScoreLow", "warning", {"agent_id": "a", "job": "monitoring", "instance": "m"},
                  "Low health score of a", "The monitoring collector scores the agent 30 (threshold 50).")]),
    "CollectorScrapeFailures": (
        [{"series": 'monitoring_scrapes_total{result="success"}', "values": "0+1x30"},
         {"series": 'monitoring_scrapes_total{result="failure"}', "values": "0+1x30"}],
        [{"series": 'monitoring_scrapes_total{result="success"}', "values": "0+1x30"},
         {"series": 'monitoring_scrapes_total{result="failure"}', "values": "0x30"}],
        [expected("CollectorScrapeFailures", "warning", {}, "The monitoring collector fails to scrape agents",
                  "50% of scrapes fail (threshold 0.1).")]),
    # A step change (10 -> 30 steps per chain at 60m) leaves the 1h baseline's band for a while: evaluated at 70m
    # it has been outside for over 5m. A periodic wobble (10, 11, 9, ...) stays inside the band: quiet.
    "AgentReasoningAnomaly": (
        [{"series": f"reasoning_chain_length_count{{{SEL}}}", "values": "0+1x90"},
         {"series": f"reasoning_chain_length_sum{{{SEL}}}", "values": cumulative([10] * 60 + [30] * 30)}],
        [{"series": f"reasoning_chain_length_count{{{SEL}}}", "values": "0+1x90"},
         {"series": f"reasoning_chain_length_sum{{{SEL}}}", "values": cumulative([10, 11, 9] * 30)}],
        [expected("AgentReasoningAnomaly", "warning", AGENT, "Unusual reasoning-chain length in a in agents",
                  "reasoning_chain_length is 2.736 standard deviations from its 1h baseline (band 1.9, "
                  "sensitivity 0.7).")]),
    "AgentPlanningAnomaly": (
        [{"series": f"planning_success_rate{{{SEL}}}", "values": "0.9x60 0.5x30"}],
        [{"series": f"planning_success_rate{{{SEL}}}", "values": "0.9 0.91 0.89 " * 30}],
        [expected("AgentPlanningAnomaly", "warning", AGENT, "Unusual planning success in a in agents",
                  "planning_success_rate is 2.893 standard deviations from its 1h baseline (band 1.9, "
                  "sensitivity 0.7).")]),
}
EVAL_AT = {"AgentReasoningAnomaly": "70m", "AgentPlanningAnomaly": "70m"}  # else 25m


def write_rules(system: Any, tmp_path: Path) -> Path:
    """The system's rule groups as a rules file for promtool."""
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": prometheus_rule(system)["spec"]["groups"]}, sort_keys=False))
    return path


def promtool_test(rules_file: Path, tests: list[dict[str, Any]], tmp_path: Path, timeout: int = 60) -> None:
    """`promtool test rules` of `tests` (evaluated every minute) against `rules_file`; fails with its output."""
    test_file = tmp_path / "test.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": [str(rules_file)], "evaluation_interval": "1m",
                                         "tests": tests}, sort_keys=False))
    result = subprocess.run([PROMTOOL or "promtool", "test", "rules", str(test_file)], capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    return write_rules(SYSTEM, tmp_path)


def test_promtool_check_rules(rules_file: Path) -> None:
    result = subprocess.run([PROMTOOL or "promtool", "check", "rules", str(rules_file)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    # 23 alerting rules (with their levels), 6 anomaly baselines, 14 downsampled series (7 at 5m and 1h)
    assert "SUCCESS: 43 rules found" in result.stdout


def test_every_alert_has_a_case_and_the_required_annotations() -> None:
    rules = [rule for group in prometheus_rule(SYSTEM)["spec"]["groups"] for rule in group["rules"]
             if "alert" in rule]
    assert {rule["alert"] for rule in rules} == set(CASES)
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}


@pytest.mark.parametrize("alert", sorted(CASES))
def test_alert_fires_on_bad_series_and_stays_quiet_on_good(alert: str, rules_file: Path, tmp_path: Path) -> None:
    bad, good, alerts = CASES[alert]
    at = EVAL_AT.get(alert, "25m")
    tests = [{"interval": "1m", "input_series": bad,
              "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": alerts}]},
             {"interval": "1m", "input_series": good,
              "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": []}]}]
    promtool_test(rules_file, tests, tmp_path)


def test_thresholds_and_switches_come_from_config() -> None:
    system = parse_system_config({"agents": [{"agent_id": "a", "image": "x/a"}], "monitoring": {"alerts": {
        "high_cpu": {"warning": 70, "critical": 95, "for": "2m"}, "utilisation": {"enabled": False}}}})
    rules = {(rule["alert"], rule["labels"]["severity"]): rule
             for group in prometheus_rule(system)["spec"]["groups"] for rule in group["rules"] if "alert" in rule}
    assert rules[("HighCpuUsage", "warning")]["expr"].endswith("> 70")
    assert rules[("HighCpuUsage", "critical")]["expr"].endswith("> 95")
    assert rules[("HighCpuUsage", "critical")]["for"] == "2m"
    assert not any(name == "AgentUtilisationHigh" for name, _ in rules)


def test_sensitivity_sets_the_band_and_the_window_the_baseline() -> None:
    alerts = {"reasoning_chain_anomaly": {"sensitivity": 1.0, "window": "6h"},
              "planning_success_anomaly": {"enabled": False}}
    system = parse_system_config({"agents": [{"agent_id": "a", "image": "x/a"}], "monitoring": {"alerts": alerts}})
    rules = [rule for group in prometheus_rule(system)["spec"]["groups"] for rule in group["rules"]
             if group["name"].endswith("reasoning_quality")]
    [alert] = [rule for rule in rules if rule.get("alert", "").endswith("Anomaly")]
    assert alert["expr"].endswith("> 1") and "agent:reasoning_chain_length:mean6h" in alert["expr"]
    assert {rule["record"] for rule in rules if "record" in rule} == {
        "agent:reasoning_chain_length:avg5m", "agent:reasoning_chain_length:mean6h",
        "agent:reasoning_chain_length:stddev6h"}


def test_unresolved_alerts_escalate_after_the_seeds_times(tmp_path: Path) -> None:
    """A critical alert still firing after 15 minutes, a warning after 60, raise AlertEscalated (escalation:
    secondary), which Alertmanager sends to the secondary or the backup on-call (test_routing.py)."""
    system = parse_system_config({"agents": [{"agent_id": "a", "image": "x/a"}], "monitoring": {
        "receivers": [{"name": "lead", "slack": {"channel": "#a", "webhook_url_secret": "k"}},
                      {"name": "oncall", "slack": {"channel": "#b", "webhook_url_secret": "k"}}],
        "escalation": {"business_primary": "lead", "business_secondary": "oncall", "after_hours_primary": "oncall",
                       "after_hours_secondary": "lead"}}})
    rules_file = write_rules(system, tmp_path)
    firing = 'ALERTS{{alertname="{name}", alertstate="firing", severity="{severity}", system="multi-agent-system", ' \
             'agent_id="a"}}'
    escalated = {"escalation": "secondary", "system": "multi-agent-system", "agent_id": "a"}

    def annotations(name: str, after: str) -> dict[str, str]:
        return {"summary": f"{name} unresolved for {after}", "runbook_url": f"{RUNBOOK}#alertescalated",
                "description": "Still firing after the escalation time; the secondary (business hours) or backup "
                               "on-call (after hours) is notified."}
    tests = [{"interval": "1m",
              "input_series": [{"series": firing.format(name="AgentDown", severity="critical"), "values": "1x90"},
                               {"series": firing.format(name="HighCpuUsage", severity="warning"), "values": "1x90"}],
              "alert_rule_test": [
                  {"eval_time": "10m", "alertname": "AlertEscalated", "exp_alerts": []},
                  {"eval_time": "20m", "alertname": "AlertEscalated", "exp_alerts": [{
                      "exp_labels": {**escalated, "severity": "critical", "escalated_alert": "AgentDown"},
                      "exp_annotations": annotations("AgentDown", "15m")}]},
                  {"eval_time": "70m", "alertname": "AlertEscalated", "exp_alerts": [
                      {"exp_labels": {**escalated, "severity": "critical", "escalated_alert": "AgentDown"},
                       "exp_annotations": annotations("AgentDown", "15m")},
                      {"exp_labels": {**escalated, "severity": "warning", "escalated_alert": "HighCpuUsage"},
                       "exp_annotations": annotations("HighCpuUsage", "60m")}]}]}]
    promtool_test(rules_file, tests, tmp_path)


def test_the_multi_agent_series_are_downsampled_to_5m_and_1h(rules_file: Path, tmp_path: Path) -> None:
    """The seed's lower-resolution tiers: each group evaluates at its resolution over that window."""
    groups = {group["name"]: group for group in prometheus_rule(SYSTEM)["spec"]["groups"]}
    assert groups["multi-agent-system.downsample-5m"]["interval"] == "5m"
    assert groups["multi-agent-system.downsample-1h"]["interval"] == "1h"
    tests = [{"interval": "1m", "input_series": [
        {"series": f'agent_utilization{{{SEL}, cluster_name="c1", task_type="plan"}}', "values": "0.5x180"},
        {"series": f'agent_tasks_total{{{SEL}, agent_type="planner", status="success"}}', "values": "0+3x180"},
        {"series": f'agent_tasks_total{{{SEL}, agent_type="planner", status="error"}}', "values": "0+1x180"}],
        "promql_expr_test": [
            {"expr": "agent:agent_utilization:avg_1h", "eval_time": "2h",
             "exp_samples": [{"labels": 'agent:agent_utilization:avg_1h{namespace="agents", agent_id="a", '
                                        'cluster_name="c1"}', "value": 0.5}]},
            {"expr": "agent:agent_tasks:error_ratio_5m", "eval_time": "1h",
             "exp_samples": [{"labels": 'agent:agent_tasks:error_ratio_5m{namespace="agents", agent_id="a"}',
                              "value": 0.25}]}]}]
    promtool_test(rules_file, tests, tmp_path)


def test_the_seasonal_baseline_expects_the_daily_pattern_and_catches_what_breaks_it(tmp_path: Path) -> None:
    """Chains are 10 steps long by night and 30 by day. With a 1-day season, day two's switch to 30 is what
    yesterday did at that time: quiet (the rolling 1h baseline alone would fire, as on day one, when no season
    of history exists yet). A night at 30 on day three is not what yesterday did: it fires (yesterday's night
    was flat, so its deviation is the floor and the z-score huge)."""
    system = parse_system_config({"agents": [{"agent_id": "a", "image": "x/a"}], "monitoring": {"alerts": {
        "reasoning_chain_anomaly": {"season": "1d"}, "planning_success_anomaly": {"enabled": False}}}})
    rules_file = write_rules(system, tmp_path)
    half_day = 12 * 60
    daily = [10] * half_day + [30] * half_day
    anomalous_night = [30] * half_day

    def series(lengths: list[int]) -> list[dict[str, str]]:
        return [{"series": f"reasoning_chain_length_count{{{SEL}}}", "values": f"0+1x{len(lengths)}"},
                {"series": f"reasoning_chain_length_sum{{{SEL}}}", "values": cumulative(lengths)}]

    def at(minute: int, z_score: str | None = None) -> dict[str, Any]:
        description = (f"reasoning_chain_length is {z_score} standard deviations from its baseline (1h one 1d "
                       "season ago, else the last 1h) (band 1.9, sensitivity 0.7).")
        return {"eval_time": f"{minute}m", "alertname": "AgentReasoningAnomaly", "exp_alerts": [] if z_score is None
                else [expected("AgentReasoningAnomaly", "warning", AGENT,
                               "Unusual reasoning-chain length in a in agents", description)]}
    day_two_morning, day_three_night = 3 * half_day, 4 * half_day
    tests = [{"interval": "1m", "input_series": series(daily * 2 + [10] * 120),
              "alert_rule_test": [at(half_day + 15, "2.001"), at(day_two_morning + 15), at(day_two_morning + 90),
                                  at(day_three_night + 60)]},
             {"interval": "1m", "input_series": series(daily * 2 + anomalous_night),
              "alert_rule_test": [at(day_three_night + 60, "20G")]}]
    promtool_test(rules_file, tests, tmp_path, timeout=300)


def test_a_pause_in_reasoning_chains_does_not_blind_the_anomaly_alert(tmp_path: Path) -> None:
    """No chain finishes for 10 minutes (the 5-minute mean would be 0/0), then chains triple in length: the
    gap records nothing rather than NaN, so the baseline survives and the step fires."""
    rules_file = write_rules(SYSTEM, tmp_path)
    counts = [1] * 50 + [0] * 10 + [1] * 30
    lengths = [10] * 50 + [0] * 10 + [30] * 30
    tests = [{"interval": "1m", "input_series": [
        {"series": f"reasoning_chain_length_count{{{SEL}}}", "values": cumulative(counts)},
        {"series": f"reasoning_chain_length_sum{{{SEL}}}", "values": cumulative(lengths)}],
        "alert_rule_test": [{"eval_time": "68m", "alertname": "AgentReasoningAnomaly", "exp_alerts": [
            expected("AgentReasoningAnomaly", "warning", AGENT, "Unusual reasoning-chain length in a in agents",
                     "reasoning_chain_length is 2.424 standard deviations from its 1h baseline (band 1.9, "
                     "sensitivity 0.7).")]}]}]
    promtool_test(rules_file, tests, tmp_path)


@pytest.mark.parametrize(("season", "window"), [("1d", "1h"), ("2w", "1h"), ("1y", "1d"), ("1w", "1s"),
                                                ("1d12h", "90m")])
def test_seasonal_rules_are_valid_prometheus_for_any_season(season: str, window: str, tmp_path: Path) -> None:
    system = parse_system_config({"agents": [{"agent_id": "a", "image": "x/a"}], "monitoring": {"alerts": {
        "reasoning_chain_anomaly": {"season": season, "window": window}}}})
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": prometheus_rule(system)["spec"]["groups"]}, sort_keys=False))
    result = subprocess.run([PROMTOOL or "promtool", "check", "rules", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_messaging_alerts_fire_on_lag_and_dead_letters(tmp_path: Path) -> None:
    """Lag above the seed's 10,000 for 10 minutes, and messages arriving on the dead-letter topic."""
    system = parse_system_config({
        "agents": [{"agent_id": "a", "image": "x/a", "consumes": ["agent-tasks"], "produces": ["agent-dlq"]}],
        "messaging": {"kafka": {"cluster": "k", "bootstrap": "k-kafka-bootstrap.kafka.svc:9093"}}})
    rules_file = write_rules(system, tmp_path)
    lag = 'kafka_consumergroup_lag{namespace="kafka", consumergroup="a", topic="agent-tasks", partition="%d"}'
    offset = 'kafka_topic_partition_current_offset{namespace="kafka", topic="agent-dlq", partition="0"}'
    labels = {"severity": "warning", "system": "multi-agent-system", "category": "system_performance"}

    def case(series: list[dict[str, str]], alert: str, expected: list[dict[str, Any]]) -> dict[str, Any]:
        return {"interval": "1m", "input_series": series,
                "alert_rule_test": [{"eval_time": "30m", "alertname": alert, "exp_alerts": expected}]}
    tests = [
        # the consumer runs at most 10 replicas (the default max_replicas), each for 10,000 of lag
        case([{"series": lag % 0, "values": "60000x40"}, {"series": lag % 1, "values": "40001x40"}],
             "KafkaConsumerLagHigh", [{"exp_labels": {**labels, "consumergroup": "a", "topic": "agent-tasks"},
                                      "exp_annotations": {
                                          "summary": "Consumer group a lags on agent-tasks",
                                          "description": "100k messages wait, more than its consumers work off at "
                                                         "their maximum replicas (lag threshold x max_replicas).",
                                          "runbook_url": f"{RUNBOOK}#kafkaconsumerlaghigh"}}]),
        case([{"series": lag % 0, "values": "60000x40"}, {"series": lag % 1, "values": "40000x40"}],
             "KafkaConsumerLagHigh", []),
        case([{"series": offset, "values": "0+1x40"}], "KafkaDeadLettersGrowing",
             [{"exp_labels": {**labels, "topic": "agent-dlq"},
               "exp_annotations": {"summary": "Messages are dead-lettered to agent-dlq",
                                   "description": "10 messages in the last 10 minutes failed processing and went "
                                                  "to the dead-letter topic.",
                                   "runbook_url": f"{RUNBOOK}#kafkadeadlettersgrowing"}}]),
        case([{"series": offset, "values": "7x40"}], "KafkaDeadLettersGrowing", []),
    ]
    promtool_test(rules_file, tests, tmp_path)
