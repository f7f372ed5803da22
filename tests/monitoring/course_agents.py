"""Loopback agents, alert recorders and fixtures for the tests of the course's monitoring API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from monitoring import DistributedMetricsCollector, SystemAlert

ServerFactory = Callable[..., Awaitable[TestServer]]
Serve = Callable[["StubAgent"], Awaitable[TestServer]]
MakeCollector = Callable[..., DistributedMetricsCollector]


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll `predicate` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.02)


class StubAgent:
    """A fake agent serving `values` as seed JSON (or Prometheus text) on /metrics, counting requests."""

    def __init__(self, values: dict[str, float], *, kinds: dict[str, str] | None = None,
                 labels: dict[str, dict[str, str]] | None = None, increments: dict[str, float] | None = None,
                 prometheus: bool = False, omit_optional: tuple[str, ...] = ()) -> None:
        self.values = dict(values)
        self.kinds = kinds or {}
        self.labels = labels or {}
        self.increments = increments or {}
        self.prometheus = prometheus
        self.omit_optional = omit_optional  # metric names served with only "name" and "value"
        self.hits = 0
        self.base_url = ""

    async def metrics(self, request: web.Request) -> web.Response:
        self.hits += 1
        for name, step in self.increments.items():
            self.values[name] += step
        if self.prometheus:
            lines: list[str] = []
            for name, value in self.values.items():
                lines += [f"# TYPE {name} {self.kinds.get(name, 'gauge')}", f"{name} {value}"]
            return web.Response(body=("\n".join(lines) + "\n").encode(),
                                headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
        metrics: list[dict[str, Any]] = []
        for name, value in self.values.items():
            if name in self.omit_optional:
                metrics.append({"name": name, "value": value})
            else:
                metrics.append({"name": name, "type": self.kinds.get(name, "gauge"), "value": value,
                                "labels": self.labels.get(name, {})})
        return web.json_response({"metrics": metrics})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "healthy"})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/health", self.health)
        return app

    def info(self) -> dict[str, Any]:
        return {"metrics_endpoint": f"{self.base_url}/metrics", "health_endpoint": f"{self.base_url}/health",
                "role": "worker"}


class AlertRecorder:
    """An async alert handler that keeps what it receives."""

    def __init__(self) -> None:
        self.alerts: list[SystemAlert] = []

    async def __call__(self, alert: SystemAlert) -> None:
        self.alerts.append(alert)

    def ids(self) -> list[str]:
        return [alert.alert_id for alert in self.alerts]


def make_rule(**fields: Any) -> dict[str, Any]:
    """A complete seed alert rule; `fields` override its values."""
    rule: dict[str, Any] = {"name": "DeepQueue", "description": "Agent {agent_id}: {metric_name} at {value}",
                            "condition_type": "threshold", "metric_name": "queue_depth", "agent_id": None,
                            "operator": ">", "threshold": 10, "rate_threshold": 0, "severity": "warning"}
    rule.update(fields)
    return rule


def overview_of(collector: DistributedMetricsCollector) -> dict[str, Any]:
    return collector.get_system_overview()["system_overview"]


def agent_status(collector: DistributedMetricsCollector, agent_id: str) -> str | None:
    detail = overview_of(collector)["agents"]["agents_detail"].get(agent_id)
    return None if detail is None else detail["status"]


def local_naive(moment: datetime) -> datetime:
    return moment.astimezone().replace(tzinfo=None) if moment.tzinfo else moment


def leftover_tasks(baseline: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    """Tasks started since `baseline`, except this test's own and the aiohttp test servers' request handlers."""
    current = asyncio.current_task()
    left: set[asyncio.Task[Any]] = set()
    for task in asyncio.all_tasks():
        if task in baseline or task is current or task.done():
            continue
        code = getattr(task.get_coro(), "cr_code", None)
        if code is not None and code.co_filename.replace("\\", "/").endswith("aiohttp/web_protocol.py"):
            continue
        left.add(task)
    return left


@pytest.fixture
async def serve(aiohttp_server: ServerFactory) -> Serve:
    """Start a StubAgent on a loopback test server; sets its base_url and returns the server."""
    async def start(agent: StubAgent) -> TestServer:
        server = await aiohttp_server(agent.app())
        agent.base_url = str(server.make_url("")).rstrip("/")
        return server
    return start


@pytest.fixture
async def collectors(aiohttp_server: ServerFactory) -> AsyncIterator[MakeCollector]:
    """Build collectors that are stopped after the test (before the agents' servers close)."""
    made: list[DistributedMetricsCollector] = []

    def make(**kwargs: Any) -> DistributedMetricsCollector:
        collector = DistributedMetricsCollector(**kwargs)
        made.append(collector)
        return collector

    yield make
    for collector in made:
        await collector.stop()


async def refusing_server(counter: list[int]) -> asyncio.Server:
    """A TCP listener that drops every connection at once (an agent that cannot be reached); counts attempts."""
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counter[0] += 1
        writer.close()
    return await asyncio.start_server(drop, "127.0.0.1", 0)
