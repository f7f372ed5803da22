"""A system with the mesh on (canary, blue-green, a group namespace, an external API), shared by the mesh tests."""

from __future__ import annotations

import copy
from typing import Any

from components.config import parse_system_config

BASE: dict[str, Any] = {
    "namespace": "agents",
    "groups": {"tools": {"quota": None, "limit_range": None}},
    "mesh": {"enabled": True, "outbound_policy": "REGISTRY_ONLY",
             "external_apis": [{"name": "openai", "hosts": ["api.openai.com"]}]},
    "agents": [
        {"agent_id": "coordinator", "image": "x/coordinator", "tag": "1.0.0",
         "talks_to": ["researcher", "executor"], "traffic": {"entrypoint": True},
         "routing_rules": [
             {"name": "tasks", "match": {"uri": {"prefix": "/tasks"}, "headers": {"x-tenant": {"exact": "a"}}},
              "rewrite_uri": "/v2/tasks", "timeout": "90s",
              "retries": {"attempts": 4, "per_try_timeout": "20s", "retry_on": "5xx"}},
             {"name": "submit", "match": {"uri": {"exact": "/submit"}}, "idempotent": False},
             {"name": "chaos", "match": {"uri": {"regex": "^/chaos/.*"}},
              "fault": {"delay": {"fixed_delay": "2s", "percentage": 10},
                        "abort": {"http_status": 503, "percentage": 5}}}],
         "load_balancer": {"consistent_hash_header": "x-session-id"}},
        {"agent_id": "researcher", "image": "x/researcher", "tag": "3.1.0",
         "canary": {"tag": "3.2.0", "weight": 5}, "load_balancer": "ROUND_ROBIN",
         "routing_rules": [{"name": "split", "route": [{"subset": "stable", "weight": 80},
                                                       {"subset": "canary", "weight": 20}]}]},
        {"agent_id": "executor", "image": "x/executor", "group": "tools",
         "blue_green": {"blue_tag": "1.0.0", "green_tag": "1.1.0", "active": "green"}},
    ],
}


def system_of(**changes: Any) -> Any:
    raw = copy.deepcopy(BASE)
    raw.update(changes)
    return parse_system_config(raw)


def agent_of(system: Any, agent_id: str) -> Any:
    return next(agent for agent in system.agents if agent.agent_id == agent_id)
