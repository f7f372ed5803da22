"""Fixtures for the monitoring service: settings, a running simulator, a running service, and the
course API's loopback agents and collectors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from monitoring.settings import MonitoringSettings
from monitoring.simulate import Simulator

from .course_agents import collectors, serve  # noqa: F401 (fixtures for the course API's tests)


def make_settings(**fields: Any) -> MonitoringSettings:
    """Settings for tests: fast schedules, no environment influence beyond what the test sets."""
    defaults: dict[str, Any] = {"collection_interval": 0.2, "collection_jitter": 0.0, "scrape_timeout": 1.0,
                                "metrics_cache_seconds": 0.0,  # each /metrics read in a test sees the state now
                                "system_metrics_interval": 0.5,
                                "health": {"unhealthy_after": 2.0, "lost_after": 5.0, "failures_before_alert": 2}}
    return MonitoringSettings(**{**defaults, **fields})


@pytest.fixture
def settings_factory() -> Callable[..., MonitoringSettings]:
    return make_settings


@pytest.fixture
async def simulator(aiohttp_server: Callable[..., Any]) -> tuple[Simulator, str]:
    """Three simulated agents on a loopback test server; returns (simulator, base URL)."""
    sim = Simulator(3)
    server: TestServer = await aiohttp_server(sim.app())
    return sim, str(server.make_url("")).rstrip("/")


def endpoint(base: str, agent_id: str, what: str = "metrics") -> str:
    return f"{base}/agents/{agent_id}/{what}"
