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


def histogram(name: str, bounds: list[str], filled: str) -> list[dict[str, str]]:
    """Cumulative buckets where every observation (1/s) falls into the bucket `filled`."""
    reached = bounds.index(filled)
    return [{"series": f'{name}_bucket{{{SEL}, le="{bound}"}}', "values": "0+60x30" if i >= reached else "0x30"}
            for i, bound in enumerate(bounds)]


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


# alert name -> (bad series, good series, expected alerts on the bad series)
CASES: dict[str, tuple[list[dict[str, str]], list[dict[str, str]], list[dict[str, Any]]]] = {
    "AgentDown": (
        [{"series": f'up{{{SEL}, job="a", instance="x"}}', "values": "0x30"}],
        [{"series": f'up{{{SEL}, job="a", instance="x"}}', "values": "1x30"}],
        [expected("AgentDown", "critical", {**AGENT, "job": "a", "instance": "x"}, "Agent a in agents is down",
                  "Prometheus cannot scrape the agent's metrics endpoint.")]),
    "HighCpuUsage": (
        [{"series": f'cpu_usage_percent{{{SEL}, pod="p"}}', "values": "95x30"}],
        [{"series": f'cpu_usage_percent{{{SEL}, pod="p"}}', "values": "50x30"}],
        [expected("HighCpuUsage", "warning", AGENT, "High CPU usage of a in agents",
                  "CPU usage is 95%, above 85%.")]),
    "HighMemoryUsage": (
        [{"series": f'memory_usage_percent{{{SEL}, pod="p"}}', "values": "95x30"}],
        [{"series": f'memory_usage_percent{{{SEL}, pod="p"}}', "values": "60x30"}],
        [expected("HighMemoryUsage", "warning", AGENT, "High memory usage of a in agents",
                  "Memory usage is 95%, above 90%.")]),
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
        # every message takes 5-10 s: p95 = 5 + 5 * 0.95 = 9.75 s, above both thresholds
        histogram("agent_message_delivery_latency_seconds", ["0.1", "0.5", "1", "5", "10", "+Inf"], "10"),
        histogram("agent_message_delivery_latency_seconds", ["0.1", "0.5", "1", "5", "10", "+Inf"], "0.5"),
        levels("AgentMessageLatencyHigh", AGENT, "Slow message delivery to a in agents",
               "p95 message delivery latency is 9.75s (threshold THRESHOLDs).", {"warning": "1", "critical": "5"})),
    "AgentCoordinationSlow": (
        histogram("agent_coordination_duration_seconds", ["5", "10", "30", "60", "+Inf"], "60"),
        histogram("agent_coordination_duration_seconds", ["5", "10", "30", "60", "+Inf"], "5"),
        levels("AgentCoordinationSlow", AGENT, "Slow coordination in a in agents",
               "p95 coordination time is 58.5s (threshold THRESHOLDs).", {"warning": "5", "critical": "10"})),
    "AgentConsensusFailing": (
        [{"series": f'agent_consensus_rounds_total{{{SEL}, result="success"}}', "values": "0+1x30"},
         {"series": f'agent_consensus_rounds_total{{{SEL}, result="failure"}}', "values": "0+1x30"}],
        [{"series": f'agent_consensus_rounds_total{{{SEL}, result="success"}}', "values": "0+1x30"},
         {"series": f'agent_consensus_rounds_total{{{SEL}, result="failure"}}', "values": "0x30"}],
        levels("AgentConsensusFailing", AGENT, "Consensus failing in a in agents",
               "Only 50% of consensus rounds succeed (threshold THRESHOLD).", {"warning": "0.85", "critical": "0.7"})),
    "AgentTaskErrorsHigh": (
        [{"series": f'agent_tasks_total{{{SEL}, status="success"}}', "values": "0+1x30"},
         {"series": f'agent_tasks_total{{{SEL}, status="error"}}', "values": "0+1x30"}],
        [{"series": f'agent_tasks_total{{{SEL}, status="success"}}', "values": "0+1x30"},
         {"series": f'agent_tasks_total{{{SEL}, status="error"}}', "values": "0x30"}],
        levels("AgentTaskErrorsHigh", AGENT, "Many failing tasks in a in agents",
               "50% of tasks fail (threshold THRESHOLD).", {"warning": "0.05", "critical": "0.2"})),
    "AgentUtilisationHigh": (
        [{"series": f"agent_utilization_ratio{{{SEL}}}", "values": "0.99x30"}],
        [{"series": f"agent_utilization_ratio{{{SEL}}}", "values": "0.5x30"}],
        levels("AgentUtilisationHigh", AGENT, "a in agents is saturated",
               "Utilisation is 99% (threshold THRESHOLD).", {"warning": "0.8", "critical": "0.95"})),
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
    # A step change (10 -> 30 at 60m) leaves the 1h baseline's band for about 13 minutes: evaluated at 70m it
    # has been outside for over 5m. A periodic wobble (10, 11, 9, ...) keeps |z| at about 1.2: quiet.
    "AgentReasoningAnomaly": (
        [{"series": f"agent_reasoning_chain_length{{{SEL}}}", "values": "10x60 30x30"}],
        [{"series": f"agent_reasoning_chain_length{{{SEL}}}", "values": "10 11 9 " * 30}],
        [expected("AgentReasoningAnomaly", "warning", AGENT, "Unusual reasoning-chain length in a in agents",
                  "agent_reasoning_chain_length is 2.893 standard deviations from its 1h baseline (band 1.9, "
                  "sensitivity 0.7).")]),
    "AgentPlanningAnomaly": (
        [{"series": f"agent_planning_success_ratio{{{SEL}}}", "values": "0.9x60 0.5x30"}],
        [{"series": f"agent_planning_success_ratio{{{SEL}}}", "values": "0.9 0.91 0.89 " * 30}],
        [expected("AgentPlanningAnomaly", "warning", AGENT, "Unusual planning success in a in agents",
                  "agent_planning_success_ratio is 2.893 standard deviations from its 1h baseline (band 1.9, "
                  "sensitivity 0.7).")]),
}
EVAL_AT = {"AgentReasoningAnomaly": "70m", "AgentPlanningAnomaly": "70m"}  # else 25m


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": prometheus_rule(SYSTEM)["spec"]["groups"]}, sort_keys=False))
    return path


def test_promtool_check_rules(rules_file: Path) -> None:
    result = subprocess.run([PROMTOOL or "promtool", "check", "rules", str(rules_file)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    # 22 alerting rules (with their levels), 6 anomaly baselines, 14 downsampled series (7 at 5m and 1h)
    assert "SUCCESS: 42 rules found" in result.stdout


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
    test_file = tmp_path / "test.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": [str(rules_file)], "evaluation_interval": "1m",
                                         "tests": tests}, sort_keys=False))
    result = subprocess.run([PROMTOOL or "promtool", "test", "rules", str(test_file)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


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
    assert alert["expr"].endswith("> 1") and "agent:agent_reasoning_chain_length:mean6h" in alert["expr"]
    assert {rule["record"] for rule in rules if "record" in rule} == {
        "agent:agent_reasoning_chain_length:avg5m", "agent:agent_reasoning_chain_length:mean6h",
        "agent:agent_reasoning_chain_length:stddev6h"}


def test_unresolved_alerts_escalate_after_the_seeds_times(tmp_path: Path) -> None:
    """A critical alert still firing after 15 minutes, a warning after 60, raise AlertEscalated (escalation:
    secondary), which Alertmanager sends to the secondary or the backup on-call (test_routing.py)."""
    system = parse_system_config({"agents": [{"agent_id": "a", "image": "x/a"}], "monitoring": {
        "receivers": [{"name": "lead", "slack": {"channel": "#a", "webhook_url_secret": "k"}},
                      {"name": "oncall", "slack": {"channel": "#b", "webhook_url_secret": "k"}}],
        "escalation": {"business_primary": "lead", "business_secondary": "oncall", "after_hours_primary": "oncall",
                       "after_hours_secondary": "lead"}}})
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": prometheus_rule(system)["spec"]["groups"]}, sort_keys=False))
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
    test_file = tmp_path / "test.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": [str(rules_file)], "evaluation_interval": "1m",
                                         "tests": tests}, sort_keys=False))
    result = subprocess.run([PROMTOOL or "promtool", "test", "rules", str(test_file)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_multi_agent_series_are_downsampled_to_5m_and_1h(rules_file: Path, tmp_path: Path) -> None:
    """The seed's lower-resolution tiers: each group evaluates at its resolution over that window."""
    groups = {group["name"]: group for group in prometheus_rule(SYSTEM)["spec"]["groups"]}
    assert groups["multi-agent-system.downsample-5m"]["interval"] == "5m"
    assert groups["multi-agent-system.downsample-1h"]["interval"] == "1h"
    tests = [{"interval": "1m", "input_series": [
        {"series": f"agent_utilization_ratio{{{SEL}}}", "values": "0.5x180"},
        {"series": f'agent_consensus_rounds_total{{{SEL}, result="success"}}', "values": "0+3x180"},
        {"series": f'agent_consensus_rounds_total{{{SEL}, result="failure"}}', "values": "0+1x180"}],
        "promql_expr_test": [
            {"expr": "agent:agent_utilization_ratio:avg_1h", "eval_time": "2h",
             "exp_samples": [{"labels": 'agent:agent_utilization_ratio:avg_1h{namespace="agents", agent_id="a"}',
                              "value": 0.5}]},
            {"expr": "agent:agent_consensus_rounds:success_ratio_5m", "eval_time": "1h",
             "exp_samples": [{"labels": 'agent:agent_consensus_rounds:success_ratio_5m{namespace="agents", '
                                        'agent_id="a"}', "value": 0.75}]}]}]
    test_file = tmp_path / "test.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": [str(rules_file)], "evaluation_interval": "1m",
                                         "tests": tests}, sort_keys=False))
    result = subprocess.run([PROMTOOL or "promtool", "test", "rules", str(test_file)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
