"""Bodies over their byte limits are refused and counted on /metrics for every source (issue 23 item 2):
`monitoring_bodies_refused_total{source, reason="body_size"}` for a scraped body (as sent, and expanded
from gzip, through both scrape clients), a remote-write request (compressed, and as snappy's header
declares it expanded) and an OTLP metrics export."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from monitoring.app import init_app
from monitoring.collector import API_SOURCE
from monitoring.state import COLLECTOR

from .conftest import make_settings
from .test_hostile_scrapes import metric_value

Client = Callable[..., Any]
LIMIT = 4096
REFUSED = "monitoring_bodies_refused_total"


async def _refused(client: Any, source: str) -> float:
    text = await (await client.get("/metrics")).text()
    return metric_value(text, REFUSED, {"source": source, "reason": "body_size"}) or 0.0


@pytest.mark.parametrize("client_kind", ["lean", "aiohttp"])
@pytest.mark.parametrize("shape", ["plain", "gzip"])
async def test_a_scraped_body_over_the_limit_is_a_counted_refusal(aiohttp_client: Client, aiohttp_server: Client,
                                                                  shape: str, client_kind: str) -> None:
    big = b"".join(b"agent_requests_total{n=\"%d\"} 1\n" % number for number in range(400))  # ~12 KiB
    assert len(big) > LIMIT

    async def metrics(request: web.Request) -> web.Response:
        if shape == "gzip":  # small on the wire, over the limit expanded
            return web.Response(body=gzip.compress(big), headers={"Content-Encoding": "gzip",
                                                                  "Content-Type": "text/plain"})
        return web.Response(body=big, content_type="text/plain")

    agent = web.Application()
    agent.router.add_get("/metrics", metrics)
    server: TestServer = await aiohttp_server(agent)
    client = await aiohttp_client(init_app(make_settings(max_response_bytes=LIMIT, collection_interval=3600)))
    collector = client.app[COLLECTOR]
    # Agents registered through the API are fetched by aiohttp's client (guarded); static ones by the lean one.
    collector.register("big", str(server.make_url("/metrics")), None, {}, API_SOURCE if client_kind == "aiohttp"
                       else "static")
    await collector.scrape_once(collector.agents["big"])
    assert "byte limit" in (collector.agents["big"].last_error or "")
    assert await _refused(client, "scrape") == 1


async def test_a_remote_write_body_over_the_limits_is_a_counted_refusal(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(make_settings(source="remote_write",
                                                         remote_write={"max_request_bytes": LIMIT,
                                                                       "max_decompressed_bytes": LIMIT})))
    headers = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"}
    answer = await client.post("/api/v1/write", data=b"\x00" * (LIMIT + 1), headers=headers)
    assert answer.status == 413 and await _refused(client, "remote_write") == 1
    declared = bytes([0x80 | (1 << 20) & 0x7F, (1 << 20) >> 7 & 0x7F | 0x80, (1 << 20) >> 14]) + b"\x00" * 16
    answer = await client.post("/api/v1/write", data=declared, headers=headers)  # declares 1 MiB expanded
    assert answer.status == 413 and await _refused(client, "remote_write") == 2


async def test_an_otlp_metrics_body_over_the_limit_is_a_counted_refusal(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(make_settings(tracing={"max_otlp_bytes": LIMIT})))
    answer = await client.post("/v1/metrics", data=b"\x00" * (LIMIT + 1),
                               headers={"Content-Type": "application/x-protobuf"})
    assert answer.status == 413 and await _refused(client, "otlp_metrics") == 1
