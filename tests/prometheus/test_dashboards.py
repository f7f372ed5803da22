"""Grafana dashboards: valid models in labelled ConfigMaps, configurable folder, every query valid PromQL."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components.config import parse_system_config
from components.prometheus import dashboards

from ..monitored_system import RAW, SYSTEM


def test_dashboards_are_valid_grafana_models() -> None:
    maps = dashboards.dashboard_config_maps(SYSTEM)
    assert len(maps) == 4  # overview, agent drill-down, alert policies, alerts
    for config_map in maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["annotations"]["grafana_folder"] == "Multi-agent system"
        [(key, body)] = config_map["data"].items()
        assert key.endswith(".json") and len(body.encode()) < dashboards.MAX_DASHBOARD_BYTES
        model = yaml.safe_load(body)
        assert model["uid"] and model["title"] and model["schemaVersion"] >= 36
        assert model["templating"]["list"][0] == {"name": "datasource", "type": "datasource", "query": "prometheus",
                                                  "label": "Data source", "current": {}, "hide": 0, "refresh": 1}
        assert all(panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"} for panel in model["panels"])
    agent = yaml.safe_load(next(iter(maps[1]["data"].values())))
    assert [variable["name"] for variable in agent["templating"]["list"]] == ["datasource", "agent"]


def test_dashboard_label_and_folder_are_configurable() -> None:
    raw = copy.deepcopy(RAW)
    raw["monitoring"]["dashboards"] = {"label": "grafana_dash", "label_value": "yes", "folder": "Agents"}
    config_map = dashboards.dashboard_config_maps(parse_system_config(raw))[0]
    assert config_map["metadata"]["labels"]["grafana_dash"] == "yes"
    assert config_map["metadata"]["annotations"]["grafana_folder"] == "Agents"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool (Debian package prometheus)")
@pytest.mark.parametrize("with_kafka", [False, True])
def test_every_dashboard_query_is_valid_promql(with_kafka: bool, tmp_path: Path) -> None:
    """Grafana variables are replaced by sample values; promtool then parses each query as a recording rule.
    With Kafka the Messaging dashboard is there too."""
    raw = copy.deepcopy(RAW)
    if with_kafka:
        raw["messaging"] = {"kafka": {"cluster": "k", "bootstrap": "k-kafka-bootstrap.kafka.svc:9093"}}
    models = dashboards.dashboards(parse_system_config(raw))
    assert ("messaging" in models) is with_kafka
    exprs = [target["expr"] for model in models.values()
             for panel in model["panels"] for target in panel["targets"]]
    for model in models.values():
        for variable in model["templating"]["list"]:
            if variable["name"] == "agent":  # Grafana's label_values(selector, label) -> group by (label) (selector)
                selector, label = variable["definition"].removeprefix("label_values(")[:-1].rsplit(",", 1)
                exprs.append(f"group by ({label.strip()}) ({selector})")
    rules = [{"record": f"dashboard:query_{index}:check",
              "expr": expr.replace("$__rate_interval", "5m").replace("$agent", "planner")}
             for index, expr in enumerate(exprs)]
    path = tmp_path / "dashboards.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
