"""Prometheus remote-write in, over HTTP: snappy protobuf decoded, series mapped to agents by their label, `up`
as the heartbeat, bounds and credentials (tests/monitoring/test_e2e_prometheus.py has the real Prometheus)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import cramjam
from aiohttp.test_utils import TestClient

from monitoring.app import init_app
from monitoring.credentials import ingest_token
from monitoring.credentials import PROMETHEUS_SCOPE
from monitoring.remote_write import STALE_NAN, WRITE_REQUEST
from monitoring.state import COLLECTOR

from .conftest import make_settings

Client = Callable[..., Any]
ADMIN, KEY = "admin-token-9f1c3e7a5b2d8460c4e1", "ingest-key-9f1c3e7a5b2d8460c4e1"
HEADERS = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
           "X-Prometheus-Remote-Write-Version": "0.1.0"}
STALE = struct.unpack("<d", struct.pack("<Q", STALE_NAN))[0]


def write_request(series: list[tuple[dict[str, str], list[tuple[float, int]]]]) -> bytes:
    request = WRITE_REQUEST()
    for labels, samples in series:
        entry = request.timeseries.add()
        for name, value in sorted(labels.items()):
            entry.labels.add(name=name, value=value)
        for value, timestamp_ms in samples:
            entry.samples.add(value=value, timestamp=timestamp_ms)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


async def start(aiohttp_client: Client, **fields: Any) -> TestClient:
    settings = make_settings(source="remote_write", auth={"admin_token": ADMIN, "ingest_key": KEY}, **fields)
    return await aiohttp_client(init_app(settings))


def token(scope: str) -> dict[str, str]:
    return {**HEADERS, "Authorization": f"Bearer {ingest_token(KEY, scope)}"}


def agent(name: str, agent_id: str, namespace: str = "agents") -> dict[str, str]:
    return {"__name__": name, "agent_id": agent_id, "namespace": namespace, "pod": f"{agent_id}-0", "job": "a"}


async def test_remote_written_series_become_agents_samples_and_heartbeats(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, alert_rules=[{"rule_id": "HighCpu", "metric": "agent_cpu_usage_percent",
                                                        "threshold": 80, "severity": "warning"}])
    collector = client.app[COLLECTOR]
    now_ms = int(collector.clock() * 1000)
    body = write_request([(agent("up", "planner"), [(1, now_ms)]),
                          (agent("agent_cpu_usage_percent", "planner"), [(50, now_ms - 1000), (95, now_ms)]),
                          (agent("up", "writer"), [(0, now_ms)]),
                          ({"__name__": "up", "job": "node"}, [(1, now_ms)])])  # no agent label: not an agent
    response = await client.post("/api/v1/write", data=body, headers=token(PROMETHEUS_SCOPE))
    assert response.status == 204, await response.text()
    assert set(collector.agents) == {"planner", "writer"}
    assert collector.agents["planner"].status.value == "active" and collector.agents["planner"].source == "remote_write"
    assert collector.agents["planner"].task is None  # never scraped by the service
    assert collector.store.series_values("planner", "agent_cpu_usage_percent") == [50, 95]
    assert [alert.rule_id for alert in collector.alerts.active.values()] == ["HighCpu"]
    assert collector.agents["writer"].consecutive_failures == 1
    # the target disappears from Prometheus: a staleness marker on up counts as a failed scrape
    await client.post("/api/v1/write", data=write_request([(agent("up", "writer"), [(STALE, now_ms + 1000)])]),
                      headers=token(PROMETHEUS_SCOPE))
    assert collector.agents["writer"].consecutive_failures == 2
    assert any(alert.agent_id == "writer" for alert in collector.alerts.active.values())  # AgentUnreachable
    metrics = await (await client.get("/metrics")).text()
    assert "monitoring_remote_write_samples_total 5.0" in metrics
    assert 'monitoring_remote_write_rejected_total{reason="no_agent_label"} 1.0' in metrics


async def test_a_namespace_token_writes_only_its_namespace(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client)
    now_ms = int(client.app[COLLECTOR].clock() * 1000)
    mine, theirs = (agent("up", "mine"), [(1, now_ms)]), (agent("up", "theirs", namespace="other"), [(1, now_ms)])
    # A series of another namespace refuses the request whole: nothing of it is taken.
    mixed = await client.post("/api/v1/write", data=write_request([mine, theirs]), headers=token("agents"))
    assert mixed.status == 403 and "'other'" in (await mixed.json())["error"]
    assert client.app[COLLECTOR].agents == {}
    body = write_request([mine])
    assert (await client.post("/api/v1/write", data=body, headers=token("agents"))).status == 204
    assert set(client.app[COLLECTOR].agents) == {"mine"}
    assert (await client.post("/api/v1/write", data=body, headers=HEADERS)).status == 401
    read_only = {**HEADERS, "Authorization": "Bearer not-a-token-anyone-issued"}
    assert (await client.post("/api/v1/write", data=body, headers=read_only)).status == 401


async def test_malformed_and_oversized_bodies_are_4xx(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, remote_write={"max_decompressed_bytes": 4096, "max_series_per_request": 3})
    admin = {**HEADERS, "Authorization": f"Bearer {ADMIN}"}
    cases = {
        "not snappy": (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 400),
        "snappy, not protobuf": (bytes(cramjam.snappy.compress_raw(b"\xff\x01garbage")), 400),
        # the header promises 1 GiB: refused before anything is expanded
        "a bomb": (b"\x80\x80\x80\x80\x04" + b"\x00" * 16, 413),
        "too many series": (write_request([(agent("up", f"a{index}"), [(1, 0)]) for index in range(4)]), 413),
    }
    for name, (body, status) in cases.items():
        response = await client.post("/api/v1/write", data=body, headers=admin)
        assert response.status == status, name
    gzip = {**admin, "Content-Encoding": "identity"}
    assert (await client.post("/api/v1/write", data=write_request([]), headers=gzip)).status == 415
    assert client.app[COLLECTOR].agents == {}


async def test_remote_write_is_off_while_the_service_scrapes(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(make_settings(auth={"admin_token": ADMIN})))
    response = await client.post("/api/v1/write", data=write_request([]),
                                 headers={**HEADERS, "Authorization": f"Bearer {ADMIN}"})
    assert response.status == 404
