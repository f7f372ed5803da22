"""Who is notified: the rendered AlertmanagerConfig, converted to the Alertmanager configuration the
Prometheus Operator generates from it, asked with `amtool config routes test` per severity and category."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.prometheus.alerting import alertmanager_config

from ..monitored_system import SYSTEM

AMTOOL = shutil.which("amtool")
pytestmark = pytest.mark.skipif(AMTOOL is None, reason="needs amtool (Debian package prometheus-alertmanager; "
                                                       "./run test installs it when it can)")


def _matchers(route: dict[str, Any]) -> list[str]:
    return [f'{matcher["name"]}{matcher["matchType"]}"{matcher["value"]}"' for matcher in route.get("matchers", [])]


def alertmanager_yaml(config: dict[str, Any]) -> dict[str, Any]:
    """The routing part of what the Operator renders: its route nested under a catch-all root."""
    spec = config["spec"]
    routes = [{"receiver": route["receiver"], "continue": route.get("continue", False), "matchers": _matchers(route)}
              for route in spec["route"]["routes"]]
    return {"route": {"receiver": "default", "routes": [{"receiver": spec["route"]["receiver"],
                                                          "matchers": _matchers(spec["route"]), "routes": routes}]},
            "receivers": [{"name": receiver["name"]} for receiver in spec["receivers"]]}


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("alertmanager") / "alertmanager.yml"
    path.write_text(yaml.safe_dump(alertmanager_yaml(alertmanager_config(SYSTEM))))
    return path


@pytest.mark.parametrize("labels, receivers", [
    # coordination_health reaches every channel: the oncall receiver whole (PagerDuty and Slack)
    ({"severity": "critical", "category": "coordination_health"}, "oncall"),
    # system_performance reaches Slack and e-mail: oncall's Slack only
    ({"severity": "critical", "category": "system_performance"}, "oncall-system-performance"),
    ({"severity": "warning", "category": "system_performance"}, "team"),
    # reasoning_quality reaches Slack only: team (e-mail only) isn't notified at all
    ({"severity": "critical", "category": "reasoning_quality"}, "oncall-reasoning-quality"),
    ({"severity": "warning", "category": "reasoning_quality"}, "default"),
    # alerts without a category reach all of a receiver's channels
    ({"severity": "critical", "alertname": "AgentDown"}, "oncall"),
    ({"severity": "warning", "alertname": "HighCpuUsage"}, "team"),
    ({"severity": "info"}, "default"),
])
def test_who_is_notified_by_severity_and_category(config_file: Path, labels: dict[str, str], receivers: str) -> None:
    args = [f"{key}={value}" for key, value in {"system": SYSTEM.name, **labels}.items()]
    result = subprocess.run([AMTOOL or "amtool", "config", "routes", "test", f"--config.file={config_file}", *args],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == receivers, (labels, result.stdout)


def test_the_variants_hold_only_the_categorys_channels() -> None:
    receivers = {receiver["name"]: receiver for receiver in alertmanager_config(SYSTEM)["spec"]["receivers"]}
    assert set(receivers["oncall"]) == {"name", "slackConfigs", "pagerdutyConfigs"}
    assert set(receivers["oncall-system-performance"]) == {"name", "slackConfigs"}
