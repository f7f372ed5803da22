"""A system with monitoring configured (scrape settings, receivers with secrets), shared by the monitoring tests."""

from __future__ import annotations

from typing import Any

from components.config import parse_system_config

RAW: dict[str, Any] = {
    "namespace": "agents",
    "groups": {"tools": {"quota": None, "limit_range": None}},
    "monitoring": {
        "monitor_labels": {"release": "kube-prometheus-stack"},
        "scrape": {"interval": "15s", "scrape_timeout": "5s"},
        "receivers": [
            {"name": "oncall", "severities": ["critical"], "pagerduty": {"routing_key_secret": "pdKey"},
             "slack": {"channel": "#critical", "webhook_url_secret": "slackUrl"}},
            {"name": "team", "severities": ["warning"],
             "email": {"to": "t@example.com", "sender": "a@example.com", "smarthost": "smtp:587",
                       "username": "alerts", "password_secret": "smtpPassword"}}],
        "service": {"api_token_secret": "apiToken"},
    },
    "agents": [{"agent_id": "planner", "image": "x/planner", "tag": "1"},
               {"agent_id": "tool", "image": "x/tool", "tag": "1", "group": "tools"}],
}
SYSTEM = parse_system_config(RAW)
