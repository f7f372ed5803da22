"""docs/metrics.md lists exactly the agent metrics the rules and dashboards read."""

from __future__ import annotations

import re

from components.prometheus.dashboards import dashboards
from components.prometheus.rules import prometheus_rule

from ..conftest import PROJECT_DIR
from ..monitored_system import SYSTEM

NOT_THE_AGENTS = ("kube_", "monitoring_", "agent:", "kafka_")  # kube-state-metrics, the service's, recorded
# series, Strimzi's Kafka Exporter


def read_agent_metrics() -> set[str]:
    """Agent metrics named in the rules' and panels' PromQL (histograms by their base name)."""
    exprs = [rule["expr"] for group in prometheus_rule(SYSTEM)["spec"]["groups"] for rule in group["rules"]]
    exprs += [target["expr"] for model in dashboards(SYSTEM).values() for panel in model["panels"]
              for target in panel["targets"]]
    names = {re.sub(r"_(bucket|count|sum)$", "", name) for expr in exprs
             for name in re.findall(r"\b([a-z_][a-z0-9_:]*)\{", expr)}
    return {name for name in names if not name.startswith(NOT_THE_AGENTS) and name not in ("up", "ALERTS")}


def test_the_contract_lists_what_is_read_and_nothing_else() -> None:
    table = (PROJECT_DIR / "docs" / "metrics.md").read_text()
    listed = set(re.findall(r"^\| `([a-z_][a-z0-9_]*)` \|", table, flags=re.MULTILINE))
    assert listed == read_agent_metrics()
