"""Every alert's runbook_url points at a real section of docs/runbooks.md: a `## <AlertName>` heading
(GitHub's anchor is its lower-cased text) with what it means, how to check, how to fix, when to escalate."""

from __future__ import annotations

import re

from components.config import parse_system_config
from components.prometheus.rules import ESCALATED, prometheus_rule
from monitoring.settings import AGENT_DOWN_RULE

from ..conftest import PROJECT_DIR

PARTS = ("**What it means.**", "**How to check.**", "**How to fix.**", "**When to escalate.**")


def sections() -> dict[str, str]:
    """Anchor -> section text of docs/runbooks.md."""
    text = (PROJECT_DIR / "docs" / "runbooks.md").read_text()
    parts = re.split(r"^## (\S+)\s*$", text, flags=re.MULTILINE)
    return {heading.lower(): body for heading, body in zip(parts[1::2], parts[2::2])}


def test_every_alert_links_to_a_complete_runbook_section() -> None:
    # with Kafka, so the messaging alerts are there too
    system = parse_system_config({"agents": [{"agent_id": "a", "image": "x/a", "consumes": ["agent-tasks"]}],
                                  "messaging": {"kafka": {"cluster": "k", "bootstrap": "k-kafka-bootstrap.kafka.svc:9093"}}})
    found = sections()
    alerts = [rule for group in prometheus_rule(system)["spec"]["groups"] for rule in group["rules"] if "alert" in rule]
    anchors = {rule["annotations"]["runbook_url"].rsplit("#", 1)[1] for rule in alerts}
    anchors |= {AGENT_DOWN_RULE.lower(), ESCALATED.lower()}  # the service's own alert; the escalation one
    for anchor in sorted(anchors):
        assert anchor in found, f"docs/runbooks.md has no section for {anchor}"
        positions = [found[anchor].find(part) for part in PARTS]
        assert -1 not in positions and positions == sorted(positions), (anchor, positions)
    assert all(rule["annotations"]["runbook_url"].startswith(system.monitoring.runbook_base_url) for rule in alerts)
