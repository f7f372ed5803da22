"""Remote-write as an attacker meets it (issue 23, items 2, 3 and 4): agents bound to one namespace, per-namespace
quotas of agents, series and bytes, a per-request series limit, an event loop that keeps answering while a big
request is taken in, label limits, and timestamps outside a sane window refused (with every date formatting
total, so no reader answers 500)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from monitoring.alerts import iso
from monitoring.credentials import PROMETHEUS_SCOPE
from monitoring.settings import RemoteWriteSettings
from monitoring.state import COLLECTOR

from .test_remote_write import ADMIN, agent, start, token, write_request

Client = Callable[..., Any]
READ_HEADERS = {"Authorization": f"Bearer {ADMIN}"}


def now_ms() -> int:
    return int(time.time() * 1000)


async def write(client: Any, series: list[tuple[dict[str, str], list[tuple[float, int]]]], scope: str) -> Any:
    return await client.post("/api/v1/write", data=write_request(series), headers=token(scope))


async def metrics(client: Any) -> str:
    return await (await client.get("/metrics")).text()


class Receiver:
    """A webhook on loopback that keeps what it is sent and wakes whoever waits for a resolution."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.resolved = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        for alert in (await request.json())["alerts"]:
            self.alerts.append(alert)
            if alert["status"] == "resolved":
                self.resolved.set()
        return web.Response(status=204)


# --- item 4: timestamps outside a sane window; date formatting is total ------------------------------------

async def test_an_ancient_up_is_refused_and_every_reader_stays_valid(aiohttp_client: Client,
                                                                      aiohttp_server: Callable[..., Any]) -> None:
    receiver = Receiver()
    hook = web.Application()
    hook.router.add_post("/hook", receiver.handle)
    server = await aiohttp_server(hook)
    client = await start(aiohttp_client, webhook={"url": str(server.make_url("/hook"))})
    collector = client.app[COLLECTOR]
    down = [(agent("up", "billing"), [(0, now_ms() - 2000), (0, now_ms() - 1000)])]
    assert (await write(client, down, PROMETHEUS_SCOPE)).status == 204
    assert [alert.rule_id for alert in collector.alerts.active.values()] == ["AgentUnreachable"]

    for stamp in (-10**14, now_ms() + 10**12):  # -1e14 ms: year -1200; +1e12 ms: 31 years ahead
        response = await write(client, [(agent("up", "billing"), [(1, stamp)])], PROMETHEUS_SCOPE)
        assert response.status == 400, stamp
        assert "remote_write.max_sample" in (await response.json())["error"]
    assert collector.agents["billing"].last_success is None  # nothing of the refused requests was taken
    assert [alert.rule_id for alert in collector.alerts.active.values()] == ["AgentUnreachable"]
    text = await metrics(client)
    assert 'monitoring_remote_write_rejected_total{reason="too_old"} 1.0' in text
    assert 'monitoring_remote_write_rejected_total{reason="too_far_in_future"} 1.0' in text

    # A sane up resolves the alert, and the resolution reaches the receiver with valid dates.
    assert (await write(client, [(agent("up", "billing"), [(1, now_ms())])], PROMETHEUS_SCOPE)).status == 204
    await asyncio.wait_for(receiver.resolved.wait(), 10)
    resolved = [alert for alert in receiver.alerts if alert["status"] == "resolved"]
    assert resolved and all(abs(_parsed(alert["resolved_at"]) - time.time()) < 60 for alert in resolved)
    await _every_reader_answers(client)


async def test_every_reader_answers_when_a_date_is_absurd(aiohttp_client: Client) -> None:
    """However an absurd date got in (a state file, the course's API), the readers format it, never raise."""
    client = await start(aiohttp_client)
    collector = client.app[COLLECTOR]
    assert (await write(client, [(agent("up", "billing"), [(0, now_ms() - 1000), (0, now_ms())])],
                        PROMETHEUS_SCOPE)).status == 204
    (alert,) = collector.alerts.active.values()
    for absurd in (-1e11, 1e20, math.inf, -math.inf, math.nan):
        alert.started_at = absurd
        if math.isfinite(absurd):  # (a time is a float from an int64 or a clock; NaN and infinities are
            collector.agents["billing"].last_success = absurd  # item 11's, on JSON answers)
        await _every_reader_answers(client)


def test_iso_is_total() -> None:
    for value in (-1e14, -1e11, -62135596801.0, 253402300800.0, 1e20, math.inf, -math.inf, math.nan, 10**400):
        text = iso(value)
        assert datetime.fromisoformat(text.replace("Z", "+00:00")), value
    assert iso(0) == "1970-01-01T00:00:00Z"


def _parsed(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def _every_reader_answers(client: Any) -> None:
    for path in ("/api/v1/overview", "/api/v1/alerts", "/api/v1/agents", "/api/v1/report", "/metrics"):
        response = await client.get(path, headers=READ_HEADERS)
        assert response.status == 200, (path, await response.text())
        if path != "/metrics":
            json.loads(await response.text(), parse_constant=lambda c, p=path: _refuse(f"{p}: {c}"))  # strict JSON: what JSON.parse accepts
    for path in ("/", "/ui/alerts", "/ui/agents/billing"):
        response = await client.get(path, headers=READ_HEADERS)
        assert response.status == 200, (path, await response.text())


def _refuse(constant: str) -> None:
    raise AssertionError(f"{constant} is not JSON")
