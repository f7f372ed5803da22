"""Remote-write as an attacker meets it (issue 23, items 2, 3 and 4): agents bound to one namespace, per-namespace
quotas of agents, series and bytes, a per-request series limit, an event loop that keeps answering while a big
request is taken in, label limits, and timestamps outside a sane window (a series with one is left out) (with every date formatting
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
        assert "0 series taken" in (await response.json())["error"]
        assert "max_sample_" in (await response.json())["error"]
    assert collector.agents["billing"].last_success is None  # nothing of the series left out was taken
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
        # A heartbeat's time comes from an int64 or the clock: always finite (non-finite numbers in JSON
        # answers are item 11's).
        if math.isfinite(absurd):
            collector.agents["billing"].last_success = absurd
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


# --- item 3: agents bound to a namespace; quotas; per-request limit; a responsive event loop ----------------

async def test_an_agent_belongs_to_one_namespace(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, alert_rules=[{"rule_id": "HighCpu", "metric": "agent_cpu_usage_percent",
                                                        "threshold": 80, "severity": "critical"}])
    collector = client.app[COLLECTOR]
    stamp = now_ms()
    assert (await write(client, [(agent("up", "billing", "team-a"), [(1, stamp)]),
                                 (agent("agent_cpu_usage_percent", "billing", "team-a"), [(10, stamp)])],
                        "team-a")).status == 204
    # Another namespace's token names team-a's agent under its own namespace label: refused whole, counted.
    forged = [(agent("up", "billing", "team-b"), [(0, stamp + 1)]),
              (agent("agent_cpu_usage_percent", "billing", "team-b"), [(99, stamp + 1)])]
    for _ in range(3):
        response = await write(client, forged, "team-b")
        assert response.status == 403
        assert "team-a" in (await response.json())["error"]
    # Prometheus' token writes every namespace; once it reported the agent in team-a (confirming team-a's
    # claim: test_remote_write_ownership.py has a claim it overrides), the namespace label still binds it.
    confirm = [(agent("agent_cpu_usage_percent", "billing", "team-a"), [(15, stamp + 1)])]
    assert (await write(client, confirm, PROMETHEUS_SCOPE)).status == 204
    response = await write(client, forged, PROMETHEUS_SCOPE)
    assert response.status == 403
    state = collector.agents["billing"]
    assert state.status.value == "active" and state.consecutive_failures == 0
    assert collector.alerts.active == {}
    assert collector.store.series_values("billing", "agent_cpu_usage_percent") == [10, 15]
    assert 'monitoring_remote_write_rejected_total{reason="agent_of_another_namespace"} 5.0' in await metrics(client)
    # ... and a mixed batch from Prometheus keeps the series it may take.
    mixed = forged + [(agent("agent_cpu_usage_percent", "billing", "team-a"), [(20, stamp + 2)])]
    assert (await write(client, mixed, PROMETHEUS_SCOPE)).status == 204
    assert collector.store.series_values("billing", "agent_cpu_usage_percent") == [10, 15, 20]
    assert collector.agents["billing"].consecutive_failures == 0


async def test_one_namespace_cannot_fill_max_agents(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, max_agents=100, remote_write={"max_agents_per_namespace": 40})
    collector = client.app[COLLECTOR]
    stamp = now_ms()
    flood = [(agent("up", f"fake-{index}", "attacker"), [(1, stamp)]) for index in range(1_000)]
    taken = await write(client, flood, "attacker")  # the first 40 are taken; the answer names the rest
    assert taken.status == 400 and "960 series: namespace_agent_quota" in (await taken.json())["error"]
    assert len(collector.agents) == 40
    # Later agents of that namespace are refused, with a reason; other namespaces still register theirs.
    more = await write(client, [(agent("up", "fake-x", "attacker"), [(1, stamp)])], "attacker")
    assert more.status == 400 and "max_agents_per_namespace" in (await more.json())["error"]
    assert (await write(client, [(agent("up", "planner", "team-a"), [(1, stamp)])], "team-a")).status == 204
    assert "planner" in collector.agents and len(collector.agents) == 41
    assert 'monitoring_remote_write_rejected_total{reason="namespace_agent_quota"} 961.0' in await metrics(client)


async def test_a_namespace_holds_at_most_its_series_and_bytes(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, remote_write={"max_series_per_namespace": 300,
                                                       "max_bytes_per_namespace": 2**20})
    collector = client.app[COLLECTOR]
    stamp = now_ms()

    def burst(namespace: str, start: int, count: int, value: str = "") -> list[Any]:
        return [({**agent("hot_metric", "a-" + namespace, namespace), "series": f"{index}{value}"}, [(1, stamp)])
                for index in range(start, start + count)]

    for round_ in range(3):
        assert (await write(client, burst("attacker", round_ * 200, 200), "attacker")).status in (204, 400)
    assert collector.store.series_count("a-attacker") == 300
    assert collector.ownership.usage("attacker").series == 300
    # The series it holds keep flowing; other namespaces are unaffected.
    assert (await write(client, [(burst("attacker", 0, 1)[0][0], [(2, stamp + 1)])], "attacker")).status == 204
    assert collector.store.series_values("a-attacker", "hot_metric")[-1] == 2
    assert (await write(client, burst("team-a", 0, 10), "team-a")).status == 204
    assert collector.store.series_count("a-team-a") == 10
    text = await metrics(client)
    assert 'monitoring_remote_write_rejected_total{reason="namespace_series_quota"} 300.0' in text
    # Bytes: long label values reach the byte budget before the series count.
    long_values = burst("wide", 0, 300, value="x" * 1500)
    assert (await write(client, long_values, "wide")).status == 400  # what fits is stored; the rest named
    usage = collector.ownership.usage("wide")
    assert usage.bytes <= 2**20 and usage.series < 300 and collector.store.series_count("a-wide") == usage.series
    assert 'reason="namespace_bytes_quota"' in await metrics(client)


async def test_one_request_is_bounded_and_the_loop_keeps_answering(aiohttp_client: Client) -> None:
    assert RemoteWriteSettings().max_series_per_request <= 10_000  # Prometheus sends 2,000 per request
    rules = [{"rule_id": f"Hot{index}", "metric": "hot_metric", "threshold": 1e9} for index in range(3)]
    client = await start(aiohttp_client, alert_rules=rules)  # three rules checked at every sample
    collector = client.app[COLLECTOR]
    stamp = now_ms()
    gaps: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:  # how long the event loop goes without running this task
        loop = asyncio.get_running_loop()
        last = loop.time()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = loop.time()
            gaps.append(now - last)
            last = now

    def batch(agents: int, per_agent: int, samples: int = 1) -> bytes:
        points = [(1, stamp - 1000 * (samples - index)) for index in range(samples)]
        return write_request([({**agent("hot_metric", f"a{index % agents}"), "series": str(index)}, points)
                              for index in range(agents * per_agent)])

    # Built before the probe runs (not measured): 100,000 series; then the most a request may bring, 10,000
    # series of 5 samples.
    flood, largest_body = batch(1_000, 100), batch(100, 100, samples=5)
    prober = asyncio.create_task(probe())
    try:
        too_many = await client.post("/api/v1/write", data=flood, headers=token(PROMETHEUS_SCOPE))
        assert too_many.status == 413 and "max_series_per_request" in (await too_many.json())["error"]
        assert collector.agents == {}
        largest = await client.post("/api/v1/write", data=largest_body, headers=token(PROMETHEUS_SCOPE))
        assert largest.status == 204
    finally:
        done.set()
        await prober
    assert len(collector.agents) == 100 and collector.store.series_values("a0", "hot_metric") == [1] * 5
    # Generous: the work goes in slices of about 10 ms (the largest gap is decoding the refused body, about
    # 40 ms); unsliced, the largest request held the loop for about a second, and 100,000 series for seconds.
    assert max(gaps) < 0.4, max(gaps)
    too_many_samples = write_request([(agent("hot_metric", "a0"), [(1, stamp)] * 50_001)])
    response = await client.post("/api/v1/write", data=too_many_samples, headers=token(PROMETHEUS_SCOPE))
    assert response.status == 413 and "max_samples_per_request" in (await response.json())["error"]


# --- item 2 (remote-write): label limits, label bytes per request -----------------------------------------

async def test_a_series_beyond_the_label_limits_is_left_out(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, label_value_length_limit=100, label_limit=10,
                         remote_write={"max_label_bytes_per_request": 50_000})
    collector = client.app[COLLECTOR]
    stamp = now_ms()
    fine = (agent("agent_cpu_usage_percent", "planner"), [(5, stamp)])
    cases = {
        "label_value_length": ({**agent("x", "planner"), "big": "v" * 101}, [(1, stamp)]),
        "label_limit": ({**agent("x", "planner"), **{f"l{index}": "v" for index in range(6)}}, [(1, stamp)]),
    }
    for step, (reason, offender) in enumerate(cases.items()):
        response = await write(client, [(fine[0], [(5, stamp + step)]), offender], PROMETHEUS_SCOPE)
        assert response.status == 400, reason
        # One series' labels cost only that series: the neighbour is stored, the offender is not.
        assert collector.store.series_values("planner", "agent_cpu_usage_percent") == [5] * (step + 1), reason
        assert collector.store.series_values("planner", "x") == [], reason
        assert f'monitoring_bodies_refused_total{{reason="{reason}",source="remote_write"}} 1.0' in \
            await metrics(client), reason
    assert "label_value_length_limit" in (await (await write(client, [cases["label_value_length"]],
                                                             PROMETHEUS_SCOPE)).json())["error"]
    # Over the label bytes of a request, the request is refused whole.
    too_many_bytes = [(fine[0], [(6, stamp + 10)])] + [
        ({**agent("x", "planner"), "v": "w" * 90, "n": str(index)}, [(1, stamp)]) for index in range(600)]
    assert (await write(client, too_many_bytes, PROMETHEUS_SCOPE)).status == 413
    assert collector.store.series_values("planner", "agent_cpu_usage_percent") == [5, 5]
    assert 'monitoring_bodies_refused_total{reason="label_bytes",source="remote_write"} 1.0' in await metrics(client)
    assert (await write(client, [(fine[0], [(7, stamp + 11)])], PROMETHEUS_SCOPE)).status == 204
