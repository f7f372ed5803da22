"""/metrics can't be used to exhaust memory or stall the service (issue 23, items 2 and 3, follow-up): agent ids are
bounded where they enter (remote-write's agent label, OTLP agent names), concurrent requests share one rendering,
at most a few responses are sent at once (503 beyond), a client that does not read is disconnected, and rendering
10,000 agents keeps the event loop answering."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitoring import exposition
from monitoring.credentials import PROMETHEUS_SCOPE
from monitoring.state import COLLECTOR, GENAI_METRICS, REGISTRY

from .test_loop_stalls import MAX_GAP, loop_gaps
from .test_otlp_signals import CHAT, export
from .test_remote_write import agent, start, token, write_request

Client = Callable[..., Any]
LONG_ID = "x" * 240


def now_ms() -> int:
    return int(time.time() * 1000)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for exactly `condition` (checked every few ms), at most `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def many_agents(client: Any, count: int) -> None:
    """`count` remote-write agents with 250-character ids, registered as remote-write registers them."""
    collector = client.app[COLLECTOR]
    refused = collector.ensure_remote_agents({f"{LONG_ID}{index:010d}": "agents" for index in range(count)}, {},
                                             trusted=True)
    assert not refused and len(collector.agents) == count


def sample(client: Any, name: str) -> float:
    value = client.app[REGISTRY].get_sample_value(name)
    assert value is not None, name
    return value


def hold_renderings(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Renderings of /metrics start only once the returned event is set: the test decides when they run."""
    release, render = asyncio.Event(), exposition.render_metrics_sliced

    async def held(*args: Any) -> bytes:
        await release.wait()
        return await render(*args)

    monkeypatch.setattr(exposition, "render_metrics_sliced", held)
    return release


# --- (a) agent ids are bounded where they enter --------------------------------------------------------------

async def test_remote_write_refuses_an_agent_label_that_is_no_agent_id(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client)
    stamp = now_ms()
    for bad in ("x" * 254, "billing agent", "a\nb"):
        body = write_request([(agent("up", "fine"), [(1, stamp)]), (agent("up", bad), [(1, stamp)])])
        response = await client.post("/api/v1/write", data=body, headers=token(PROMETHEUS_SCOPE))
        assert response.status == 400, bad
        assert "1 series: agent_id" in (await response.json())["error"]  # left out; its neighbour is taken
    collector = client.app[COLLECTOR]
    assert set(collector.agents) == {"fine"} and collector.refusals.counts[("remote_write", "agent_id")] == 3
    ok = write_request([(agent("up", "x" * 253), [(1, stamp)])])
    assert (await client.post("/api/v1/write", data=ok, headers=token(PROMETHEUS_SCOPE))).status == 204


async def test_otlp_metrics_refuse_points_of_an_agent_name_that_is_no_agent_id(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client)
    headers = {**token("agents"), "Content-Type": "application/x-protobuf"}
    cases = [export([{"sum": 5, **CHAT, "gen_ai.token.type": "input"}], service="s" * 254),
             export([{"sum": 5, **CHAT, "gen_ai.token.type": "input", "gen_ai.agent.name": "a b"}]),
             export([{"sum": 5, **CHAT, "gen_ai.token.type": "input"}], service="writer")]
    rejected = []
    for request in cases:
        response = await client.post("/v1/metrics", data=request.SerializeToString(), headers=headers)
        assert response.status == 200
        rejected.append(b"valid agent id" in await response.read())
    assert rejected == [True, True, False]
    assert list(client.app[GENAI_METRICS].tokens()) == [("writer", "gpt-4o", "input", "agents")]


# --- (b) one rendering for everyone asking --------------------------------------------------------------------

async def test_concurrent_requests_share_one_rendering(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, metrics_cache_seconds=30, max_metrics_responses=20)
    many_agents(client, 2_000)

    async def body() -> bytes:
        response = await client.get("/metrics")
        assert response.status == 200
        return await response.read()

    bodies = await asyncio.gather(*(body() for _ in range(10)))
    assert len(set(bodies)) == 1 and sample(client, "monitoring_metrics_renders_total") == 1
    families = {family.name: family for family in text_string_to_metric_families(bodies[0].decode())}
    assert len(families["monitoring_agent_up"].samples) == 2_000  # every agent, each family in one group
    assert len(families["monitoring_agent_last_scrape_duration_seconds"].samples) == 2_000


async def test_without_a_cache_a_request_during_a_rendering_shares_it(aiohttp_client: Client,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    client = await start(aiohttp_client, metrics_cache_seconds=0)
    many_agents(client, 2_000)
    release = hold_renderings(monkeypatch)  # the second request surely arrives while the first rendering runs
    first = asyncio.ensure_future(client.get("/metrics"))
    await until(lambda: sample(client, "monitoring_metrics_responses_waiting") == 1)
    second = asyncio.ensure_future(client.get("/metrics"))
    await until(lambda: sample(client, "monitoring_metrics_responses_waiting") == 2)
    release.set()
    assert (await (await first).read()) == await (await second).read()
    assert sample(client, "monitoring_metrics_renders_total") == 1


async def test_requests_waiting_for_a_rendering_take_no_sending_slot(aiohttp_client: Client,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Five scrapers arriving during a slow rendering all share it, though max_metrics_responses is 4: waiting
    holds no body, only sending counts."""
    client = await start(aiohttp_client, metrics_cache_seconds=0, max_metrics_responses=4)
    many_agents(client, 100)
    release = hold_renderings(monkeypatch)
    requests = [asyncio.ensure_future(client.get("/metrics")) for _ in range(5)]
    await until(lambda: sample(client, "monitoring_metrics_responses_waiting") == 5)
    assert sample(client, "monitoring_metrics_responses_sending") == 0
    release.set()
    responses = await asyncio.gather(*requests)
    assert [response.status for response in responses] == [200] * 5
    assert len({await response.read() for response in responses}) == 1
    assert sample(client, "monitoring_metrics_renders_total") == 1
    assert sample(client, "monitoring_metrics_responses_refused_total") == 0


async def test_alerts_are_counted_once_per_rendering_and_reach_every_slice(aiohttp_client: Client,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The alerts per agent are counted once per rendering, not once per slice of AGENTS_PER_SLICE agents, and
    an alert of an agent in the last slice still lowers its score."""
    client = await start(aiohttp_client)
    many_agents(client, 3 * exposition.AGENTS_PER_SLICE)
    collector = client.app[COLLECTOR]
    last = list(collector.agents)[-1]
    collector.alerts.agent_down(last, "timed out", time.time())
    counted = []
    count = exposition.active_alert_counts

    def counting(view: Any) -> Any:
        counted.append(view)
        return count(view)

    monkeypatch.setattr(exposition, "active_alert_counts", counting)
    response = await client.get("/metrics")
    assert response.status == 200
    scores = {sample.labels["agent_id"]: sample.value
              for family in text_string_to_metric_families((await response.read()).decode())
              if family.name == "monitoring_agent_health_score" for sample in family.samples}
    assert len(counted) == 1
    assert scores[last] == scores[list(collector.agents)[0]] - 10  # one active alert: -10


# --- (c) slow readers are bounded -------------------------------------------------------------------------------

async def idle_reader(port: int) -> socket.socket:
    """A connection that asks for /metrics and reads nothing (a small receive window)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return sock


async def read_to_end(sock: socket.socket) -> int:
    """Bytes the connection delivers until it is closed."""
    loop, total = asyncio.get_running_loop(), 0
    try:
        while chunk := await loop.sock_recv(sock, 2**16):
            total += len(chunk)
    except ConnectionResetError:
        pass
    return total


async def test_readers_that_never_read_are_bounded_and_disconnected(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, metrics_write_timeout=1.0, max_metrics_responses=2,
                         metrics_cache_seconds=60)
    many_agents(client, 10_000)  # about 8 MiB: more than the sockets' buffers hold
    size = len(await (await client.get("/metrics")).read())
    assert size > 6 * 2**20
    readers = [await idle_reader(client.port) for _ in range(2)]
    try:
        await until(lambda: sample(client, "monitoring_metrics_responses_sending") == 2)
        busy = await client.get("/metrics")  # both slots are held by the idle readers
        assert busy.status == 503 and busy.headers["Retry-After"] == "1"
        assert "max_metrics_responses" in await busy.text()
        await until(lambda: sample(client, "monitoring_metrics_responses_cut_total") == 2)
        for reader in readers:
            assert await read_to_end(reader) < size  # closed before the body was sent
    finally:
        for reader in readers:
            reader.close()
    assert sample(client, "monitoring_metrics_responses_refused_total") == 1
    assert (await client.get("/metrics")).status == 200  # the slots are free again


# --- (d) rendering 20,000 agents (max_agents) keeps the loop answering ---------------------------------------------------------

async def test_rendering_twenty_thousand_agents_keeps_the_loop_answering(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client)
    many_agents(client, 20_000)
    async with loop_gaps() as gaps:
        response = await client.get("/metrics")
        assert response.status == 200 and len(await response.read()) > 12 * 2**20
    assert gaps.longest < MAX_GAP, gaps.longest
