"""Shared fixtures: project paths, config factories and fresh Pulumi mocks per test."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Callable

import pytest

from components.render.mock_runtime import RecordingMonitor, install_mocks

PROJECT_DIR = Path(__file__).resolve().parent.parent
STACK_FILES = sorted(PROJECT_DIR.glob("Pulumi.*.yaml"))
STACKS = [path.name[len("Pulumi."):-len(".yaml")] for path in STACK_FILES]
CRD_SCHEMAS = Path(os.environ.get("CRD_SCHEMA_DIR", PROJECT_DIR.parent / "shared" / "schemas" / "crds"))

# A `system_config` written in the course material's style, field names as the seed has them.
SEED_SYSTEM: dict[str, Any] = {
    "namespace": "multi-agent",
    "agents": [
        {
            "agent_id": "coordinator-agent",
            "image": "myregistry/coordinator",
            "tag": "v1.0.0",
            "resources": {"cpu_request": "500m", "memory_request": "1Gi", "cpu_limit": "2", "memory_limit": "4Gi"},
            "environment": {"AGENT_TYPE": "coordinator", "MAX_CONCURRENT_TASKS": 10, "DEBUG": False},
            "ports": [8080, 9090],
            "health_check": {"path": "/health", "readiness_path": "/ready", "port": 8080},
            "scaling": {"initial_replicas": 2, "min_replicas": 2, "max_replicas": 10,
                        "target_cpu": 70, "target_memory": 80,
                        "custom_metrics": {"active_tasks_per_pod": 5}},
            "routing_rules": [{"name": "api", "match": {"uri": {"prefix": "/api"}}, "timeout": "30s",
                               "retries": {"attempts": 3, "per_try_timeout": "10s"}}],
            "load_balancer": "LEAST_REQUEST",
            "talks_to": ["worker-agent"],
        },
        {"agent_id": "worker-agent", "image": "myregistry/worker", "tag": "v1.0.0"},
    ],
}


@pytest.fixture
def seed_system() -> dict[str, Any]:
    """A fresh deep copy of the seed-style config, safe to modify in a test."""
    return copy.deepcopy(SEED_SYSTEM)


@pytest.fixture
def mocks() -> Callable[..., RecordingMonitor]:
    """Install fresh recording Pulumi mocks; call it (optionally with a StackConfig) before the program runs."""

    def install(config: Any = None, stack: str = "test") -> RecordingMonitor:
        return install_mocks("multi-agent-system", stack, config)

    return install


@pytest.fixture
def registered_kinds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Filled with the type of every resource the program registers (the Stack excluded) from now on."""
    kinds: list[str] = []
    original = RecordingMonitor.RegisterResource

    def spy(self: RecordingMonitor, request: Any) -> Any:
        if request.type != "pulumi:pulumi:Stack":
            kinds.append(request.type)
        return original(self, request)

    monkeypatch.setattr(RecordingMonitor, "RegisterResource", spy)
    return kinds
