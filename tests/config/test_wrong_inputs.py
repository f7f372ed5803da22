"""Inputs the Kubernetes API would accept but that can never work here: refused by the config,
at the field, before any object is registered, with no traceback."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import pytest

from components.config import ConfigError, parse_system_config
from components.config.types import Severity
from components.prometheus.rules import CATALOGUE
from components.render.cli import RenderError, render_stack
from monitoring.settings import Severity as ServiceSeverity

from ..render.test_render import project_copy, render

BASE: dict[str, Any] = {
    "mesh": {"enabled": True},
    "monitoring": {"receivers": [{"name": "oncall", "severities": ["critical"]}]},
    "agents": [{"agent_id": "planner", "image": "ghcr.io/acme/planner", "tag": "1.0.0",
                "resources": {"cpu_request": "500m", "cpu_limit": "1", "memory_request": "1Gi",
                              "memory_limit": "2Gi"}}],
}


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to BASE: `path` as dotted keys (list items by index)."""
    def change(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = raw
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        node[last] = value
    return change


WRONG_INPUTS = {
    "monitoring image": (
        _set("monitoring.service.image", "Registry.Example.com/Monitoring:1.0"),
        "monitoring.service.image: 'Registry.Example.com/Monitoring:1.0' includes a tag or digest"),
    "canary tag": (
        _set("agents.0.canary", {"tag": "bad tag!"}),
        "agents[0].canary.tag: 'bad tag!' is not a valid image tag"),
    "blue-green tag": (
        _set("agents.0.blue_green", {"blue_tag": "1.0.0", "green_tag": "2.0/beta"}),
        "agents[0].blue_green.green_tag: '2.0/beta' is not a valid image tag"),
    "monitoring image not pinned in production": (
        lambda raw: (_set("production", True)(raw), _set("agents.0.digest", "sha256:" + "c" * 64)(raw)),
        "monitoring.service.digest: is required when production is true"),
    "misspelt severity": (
        _set("monitoring.receivers.0.severities", ["critcal"]),
        "monitoring.receivers[0].severities[0]: must be one of 'info', 'warning', 'critical' or 'emergency' (got "
        "'critcal'; "
        "did you mean 'critical'?)"),
    "unreachable cpu target": (
        lambda raw: (_set("agents.0.resources.cpu_limit", "500m")(raw), _set("agents.0.scaling.target_cpu", 95)(raw)),
        "agents[0].scaling.target_cpu: 95% of the cpu request can never trigger a scale-out: cpu_limit '500m' caps "
        "usage at 100% of the request '500m'"),
    "unreachable memory target": (
        _set("agents.0.scaling.target_memory", 190),
        "agents[0].scaling.target_memory: 190% of the memory request can never trigger a scale-out: memory_limit "
        "'2Gi' caps usage at 200% of the request '1Gi', and the autoscaler acts only above the target plus its 10% "
        "tolerance; lower target_memory to 181 or less, or raise resources.memory_limit"),
    "disruption budget of every pod": (
        _set("agents.0.disruption", {"max_unavailable": None, "min_available": "100%"}),
        "agents[0].disruption.min_available: '100%' leaves no pod evictable"),
    "scrape port the network policies keep closed": (
        _set("monitoring.scrape", {"port": "prom"}),
        "monitoring.scrape.port: 'prom' differs from mesh.metrics_port_name 'metrics', the port the network "
        "policies open to Prometheus"),
    "agent with the monitoring service's role": (
        _set("agents.0.role", "monitoring"),
        "agents[0].role: 'monitoring' is the monitoring service's role"),
    "limit above the namespace's maximum": (
        _set("limit_range", {"max_memory": "1Gi"}),
        "agents[0].resources.memory_limit: '2Gi' is above the namespace's LimitRange max_memory '1Gi'"),
    "no CPU limit under a LimitRange default below the request": (
        lambda raw: (_set("limit_range", {})(raw), _set("agents.0.resources.cpu_limit", None)(raw),
                     _set("agents.0.resources.cpu_request", "750m")(raw)),
        "agents[0].resources.cpu_limit: null takes the namespace's LimitRange default '500m', which is below "
        "cpu_request '750m', so every pod would be refused; set cpu_limit"),
    "target unreachable under the LimitRange default limit": (
        lambda raw: (_set("limit_range", {})(raw), _set("agents.0.resources.cpu_limit", None)(raw),
                     _set("agents.0.resources.cpu_request", "400m")(raw), _set("agents.0.scaling.target_cpu", 120)(raw)),
        "agents[0].scaling.target_cpu: 120% of the cpu request can never trigger a scale-out: cpu_limit '500m' (the "
        "namespace's LimitRange default) caps usage at 125% of the request '400m'"),
    "alertmanager url": (
        _set("monitoring.service.alertmanager_url", "alertmanager:9093"),
        "monitoring.service.alertmanager_url: 'alertmanager:9093' is not an http(s) URL"),
    "collection interval the service refuses": (
        _set("monitoring.service.collection_interval", 7200),
        "monitoring.service.collection_interval: must be less than or equal to 3600"),
    "monitoring pod request above its limit": (
        _set("monitoring.service.memory_request", "2Gi"),
        "monitoring.service.memory_request: '2Gi' is above memory_limit '1Gi'; lower the request or raise the limit"),
}


def wrong(case: str) -> tuple[dict[str, Any], str]:
    change, expected = WRONG_INPUTS[case]
    raw = copy.deepcopy(BASE)
    change(raw)
    return raw, expected


def test_the_base_config_is_valid() -> None:
    parse_system_config(copy.deepcopy(BASE))


@pytest.mark.parametrize("case", WRONG_INPUTS)
def test_refused_at_the_field(case: str) -> None:
    raw, expected = wrong(case)
    with pytest.raises(ConfigError) as caught:
        parse_system_config(raw)
    problems = [str(problem) for problem in caught.value.problems]
    assert len(problems) == 1 and problems[0].startswith(expected), problems


@pytest.mark.parametrize("case", WRONG_INPUTS)
def test_refused_before_any_object_is_registered(case: str, tmp_path: Path, registered_kinds: list[str]) -> None:
    raw, expected = wrong(case)
    with pytest.raises(RenderError) as caught:
        render_stack("broken", project_copy(tmp_path, "broken", raw))
    assert caught.value.exit_code == 1 and expected in str(caught.value)
    assert registered_kinds == []


def test_the_render_command_prints_the_field_and_no_traceback(tmp_path: Path) -> None:
    raw, expected = wrong("monitoring image")
    out = tmp_path / "out"
    result = render("--stack", "broken", "--out", str(out), "--project-dir", str(project_copy(tmp_path, "broken", raw)))
    assert result.returncode == 1
    assert expected in result.stderr and "Traceback" not in result.stderr + result.stdout
    assert not out.exists()


@pytest.mark.parametrize("target, accepted", [(90, True), (91, False)])
def test_the_highest_reachable_target_is_accepted(target: int, accepted: bool) -> None:
    raw = copy.deepcopy(BASE)
    raw["agents"][0]["resources"]["cpu_limit"] = "500m"
    raw["agents"][0]["scaling"] = {"target_cpu": target}
    if accepted:
        parse_system_config(raw)
    else:
        with pytest.raises(ConfigError, match="lower target_cpu to 90 or less"):
            parse_system_config(raw)


def test_receivers_accept_exactly_the_severities_alerts_carry() -> None:
    """Alerts come from the collector (its severities) and the PrometheusRule (its catalogue)."""
    rule_severities = {spec.severity or "warning" for spec in CATALOGUE} | {"critical"}
    carried = {severity.value for severity in ServiceSeverity} | rule_severities
    assert {severity.value for severity in Severity} == carried
