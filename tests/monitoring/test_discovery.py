"""Discovery against a fake Kubernetes API server that speaks the real list/watch protocol."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web
from kubernetes_asyncio import client

from monitoring.collector import Collector
from monitoring.discovery import watch_pods
from monitoring.settings import DiscoverySettings

from .conftest import make_settings
from .test_service import wait_for


def pod(name: str, ip: str | None, phase: str = "Running", port_name: str = "metrics") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "agents", "resourceVersion": "10",
                         "labels": {"agent-id": name.rsplit("-", 1)[0]}},
            "spec": {"nodeName": "node-1", "containers": [
                # the sidecar first: the memory limit read is the metrics container's
                {"name": "istio-proxy", "image": "proxy", "resources": {"limits": {"memory": "256Mi"}}},
                {"name": "agent", "image": "x", "ports": [{"name": port_name, "containerPort": 9090}],
                 "resources": {"limits": {"memory": "1Gi", "cpu": "500m"}}}]},
            "status": {"phase": phase, "podIP": ip}}


class FakeApiServer:
    """GET /api/v1/namespaces/{ns}/pods: a PodList, or with watch=true a stream of queued events."""

    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods = pods
        self.events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.selectors: list[str] = []
        self.watch_versions: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/namespaces/{namespace}/pods", self.pods_handler)
        return app

    async def pods_handler(self, request: web.Request) -> web.StreamResponse:
        self.selectors.append(request.query.get("labelSelector", ""))
        if request.query.get("watch") not in ("true", "True", "1"):
            return web.json_response({"apiVersion": "v1", "kind": "PodList",
                                      "metadata": {"resourceVersion": "10"}, "items": self.pods})
        self.watch_versions.append(request.query.get("resourceVersion", ""))
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        while True:
            event = await self.events.get()
            if event is None:  # end this watch (as the API server does at its timeout)
                return response
            await response.write(json.dumps(event).encode() + b"\n")


async def test_discovery_follows_pods(aiohttp_server: Callable[..., Any]) -> None:
    fake = FakeApiServer([pod("planner-abc", "10.0.0.5"), pod("planner-pending", None, phase="Pending")])
    server = await aiohttp_server(fake.app())
    configuration = client.Configuration(host=str(server.make_url("")).rstrip("/"))
    collector = Collector(make_settings(), on_alert_change=lambda alert: None)  # not started: no scraping
    settings = DiscoverySettings(enabled=True, namespaces=["agents"])
    task = asyncio.create_task(watch_pods(settings, collector, configuration))
    try:
        await wait_for(lambda: "planner-abc.agents" in collector.agents)
        state = collector.agents["planner-abc.agents"]
        assert state.metrics_endpoint == "http://10.0.0.5:9090/metrics"
        assert state.info == {"namespace": "agents", "pod": "planner-abc", "node": "node-1", "agent": "planner",
                              "memory_limit_bytes": str(2**30)}
        assert state.source == "discovery"
        assert "planner-pending.agents" not in collector.agents
        assert fake.selectors[0] == settings.label_selector

        await wait_for(lambda: bool(fake.watch_versions))
        assert fake.watch_versions[0] == "10"  # the watch continues from the list's resourceVersion
        await fake.events.put({"type": "MODIFIED", "object": pod("planner-pending", "10.0.0.6")})
        await fake.events.put({"type": "ADDED", "object": pod("writer-xyz", "10.0.0.7")})
        await wait_for(lambda: {"planner-pending.agents", "writer-xyz.agents"} <= set(collector.agents))

        await fake.events.put({"type": "DELETED", "object": pod("planner-abc", "10.0.0.5")})
        await fake.events.put({"type": "MODIFIED", "object": pod("writer-xyz", "10.0.0.7", phase="Succeeded")})
        await wait_for(lambda: set(collector.agents) == {"planner-pending.agents"})

        # The watch ends; the next list no longer has planner-pending, so it is dropped.
        fake.pods = [pod("writer-xyz", "10.0.0.8")]
        await fake.events.put(None)
        await wait_for(lambda: set(collector.agents) == {"writer-xyz.agents"})
        assert collector.agents["writer-xyz.agents"].metrics_endpoint == "http://10.0.0.8:9090/metrics"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_expired_watch_relists(aiohttp_server: Callable[..., Any]) -> None:
    fake = FakeApiServer([pod("planner-abc", "10.0.0.5")])
    server = await aiohttp_server(fake.app())
    configuration = client.Configuration(host=str(server.make_url("")).rstrip("/"))
    collector = Collector(make_settings(), on_alert_change=lambda alert: None)
    task = asyncio.create_task(watch_pods(DiscoverySettings(enabled=True), collector, configuration))
    try:
        await wait_for(lambda: bool(fake.watch_versions))
        fake.pods = [pod("planner-def", "10.0.0.9")]
        await fake.events.put({"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired",
                                                           "message": "too old resource version"}})
        # The re-list replaces the agents first and only then opens the next watch: wait for both.
        await wait_for(lambda: set(collector.agents) == {"planner-def.agents"})
        await wait_for(lambda: len(fake.watch_versions) >= 2)
        assert fake.watch_versions[1] == "10"  # from the re-list's resourceVersion
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
