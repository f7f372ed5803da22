"""Who is notified: the rendered AlertmanagerConfig, converted to the Alertmanager configuration the
Prometheus Operator generates from it, asked with `amtool config routes test` per severity and category."""

from __future__ import annotations

import calendar
import copy
import re
import shutil
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import parse_system_config
from components.config.errors import ConfigError
from components.prometheus.alerting import alertmanager_config

from ..monitored_system import RAW, SYSTEM

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


ESCALATION = {"business_primary": "team", "business_secondary": "oncall", "after_hours_primary": "oncall",
              "after_hours_secondary": "team"}


def escalating_system() -> Any:
    raw = copy.deepcopy(RAW)
    raw["monitoring"]["escalation"] = ESCALATION
    return parse_system_config(raw)


def alertmanager_yaml_with_times(config: dict[str, Any]) -> dict[str, Any]:
    """As alertmanager_yaml, with the time intervals and the routes' references to them."""
    converted = alertmanager_yaml(config)
    converted["time_intervals"] = [
        {"name": interval["name"], "time_intervals": [
            {"weekdays": entry["weekdays"], "times": [{"start_time": time["startTime"], "end_time": time["endTime"]}
                                                       for time in entry["times"]]}
            for entry in interval["timeIntervals"]]}
        for interval in config["spec"].get("muteTimeIntervals", [])]
    for converted_route, route in zip(converted["route"]["routes"][0]["routes"], config["spec"]["route"]["routes"]):
        for field, key in (("activeTimeIntervals", "active_time_intervals"),
                           ("muteTimeIntervals", "mute_time_intervals")):
            if field in route:
                converted_route[key] = route[field]
    return converted


def business_hours_now(config: dict[str, Any], moment: datetime) -> bool:
    """Alertmanager's reading of the business-hours interval (weekday range and time range, UTC)."""
    [interval] = config["spec"]["muteTimeIntervals"][0]["timeIntervals"]
    first, _, last = interval["weekdays"][0].partition(":")
    days = [calendar.day_name[index].lower() for index in range(7)]
    weekday_ok = days.index(first) <= moment.weekday() <= days.index(last or first)
    [window] = interval["times"]
    return weekday_ok and window["startTime"] <= moment.strftime("%H:%M") < window["endTime"]


def routed(config: dict[str, Any], labels: dict[str, str], moment: datetime) -> list[str]:
    """Receivers notified at `moment`: the routes amtool says match, less those muted or not active then."""
    path = Path(tempfile.mkdtemp()) / "alertmanager.yml"
    path.write_text(yaml.safe_dump(alertmanager_yaml_with_times(config)))
    check = subprocess.run([AMTOOL or "amtool", "check-config", str(path)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr  # Alertmanager accepts the intervals
    args = [f"{key}={value}" for key, value in {"system": SYSTEM.name, **labels}.items()]
    result = subprocess.run([AMTOOL or "amtool", "config", "routes", "test", f"--config.file={path}", *args],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    matched = set(result.stdout.strip().split(","))
    business = business_hours_now(config, moment)
    notified = []
    for route in config["spec"]["route"]["routes"]:
        if route["receiver"] not in matched or not all(
                (labels.get(matcher["name"], "") == matcher["value"]) if matcher["matchType"] == "="
                else re.fullmatch(matcher["value"], labels.get(matcher["name"], "")) is not None
                for matcher in route["matchers"]):
            continue
        if ("activeTimeIntervals" in route and not business) or ("muteTimeIntervals" in route and business):
            continue
        notified.append(route["receiver"])
    return notified


TUESDAY_10 = datetime(2026, 11, 24, 10, 0)
SATURDAY_03 = datetime(2026, 11, 28, 3, 0)


@pytest.mark.parametrize("labels, moment, notified", [
    # a critical alert: the business-hours primary (team) by day, on-call (oncall) at night; plus the severity route
    ({"severity": "critical"}, TUESDAY_10, ["team", "oncall"]),
    ({"severity": "critical"}, SATURDAY_03, ["oncall", "oncall"]),
    # escalated (unresolved past critical_after / warning_after): the secondary by day, the backup at night
    ({"severity": "critical", "escalation": "secondary"}, TUESDAY_10, ["oncall", "oncall"]),
    ({"severity": "warning", "escalation": "secondary"}, SATURDAY_03, ["team", "team"]),
])
def test_who_is_notified_when(labels: dict[str, str], moment: datetime, notified: list[str]) -> None:
    assert routed(alertmanager_config(escalating_system()), labels, moment) == notified


def test_escalation_needs_known_receivers() -> None:
    raw = copy.deepcopy(RAW)
    raw["monitoring"]["escalation"] = {**ESCALATION, "after_hours_secondary": "tem"}
    with pytest.raises(ConfigError, match="escalation.after_hours_secondary: 'tem' is not a receiver; did you mean "
                                          "'team'"):
        parse_system_config(raw)
