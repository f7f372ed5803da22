"""One worker thread at a time (issue 23 follow-up): a large scraped body parsed in a thread and a large OTLP body
decoded in a thread share the app's one slot, so two threads never compete with the event loop for the GIL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from monitoring import collector as collector_module
from monitoring.app import init_app
from monitoring.collector import INLINE_SCRAPE_PARSE_BYTES
from monitoring.tracing import api as tracing_api

from .conftest import make_settings
from .test_hostile_scrapes import serve_bodies
from .test_remote_write import ADMIN, KEY

Client = Callable[..., Any]
HOLD_TIMEOUT = 10.0  # a parse is never held longer, whatever goes wrong


def large_scrape_body() -> bytes:
    """A valid text body over INLINE_SCRAPE_PARSE_BYTES: parsed in a worker thread."""
    pad = "p" * 80
    lines = [f'agent_cpu_usage_percent{{i="{index}",pad="{pad}"}} 1' for index in range(3_000)]
    body = ("\n".join(lines) + "\n").encode()
    assert len(body) > INLINE_SCRAPE_PARSE_BYTES
    return body


def large_otlp_logs() -> bytes:
    """An OTLP logs export over INLINE_DECODE_BYTES: decoded in a worker thread."""
    request = ExportLogsServiceRequest()
    record = request.resource_logs.add().scope_logs.add().log_records.add()
    record.body.string_value = "x" * (2 * tracing_api.INLINE_DECODE_BYTES)
    return request.SerializeToString()


async def test_scrape_parsing_and_otlp_decoding_never_run_in_two_threads_at_once(
        aiohttp_client: Client, aiohttp_server: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    base = await serve_bodies(aiohttp_server, {"metrics": (large_scrape_body(), "text/plain")})
    parsing, release = threading.Event(), threading.Event()
    events: list[str] = []  # appended from both threads, in the order things happened
    parse, decode, read_body = collector_module.parse_metrics, tracing_api.decode_request, tracing_api.read_body
    otlp_read = asyncio.Event()

    def held_parse(*args: Any) -> Any:
        """The first threaded parse holds its thread until the test lets it go; then it really parses."""
        if threading.current_thread() is threading.main_thread() or parsing.is_set():
            return parse(*args)
        parsing.set()
        assert release.wait(HOLD_TIMEOUT)
        try:
            return parse(*args)
        finally:
            events.append("parse ends")

    def watched_decode(*args: Any) -> Any:
        events.append("decode starts")
        return decode(*args)

    async def watched_read_body(request: web.Request, limit: int) -> bytes:
        body = await read_body(request, limit)
        otlp_read.set()  # the handler goes on at once to its worker thread (or to wait for the slot)
        return body

    monkeypatch.setattr(collector_module, "parse_metrics", held_parse)
    monkeypatch.setattr(tracing_api, "decode_request", watched_decode)
    monkeypatch.setattr(tracing_api, "read_body", watched_read_body)
    settings = make_settings(agents=[{"agent_id": "large", "metrics_endpoint": f"{base}/metrics"}],
                             auth={"admin_token": ADMIN, "ingest_key": KEY})
    client: TestClient = await aiohttp_client(init_app(settings))
    try:
        assert await asyncio.to_thread(parsing.wait, HOLD_TIMEOUT)  # a scrape's parse holds a worker thread
        posted = asyncio.ensure_future(client.post(
            "/v1/logs", data=large_otlp_logs(),
            headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/x-protobuf"}))
        await otlp_read.wait()  # the OTLP handler has its body and has gone on to decode it
    finally:
        release.set()  # the held parse then takes tens of ms: a decode beside it would start meanwhile
    response = await posted
    assert response.status == 200, await response.text()
    assert events == ["parse ends", "decode starts"]
