"""Hostile scraped agents (issue 23 items 1, 2, 7, 11 and 12), attacked through the real service: an agent
server on loopback serves what an attacker would, and the service is read through its HTTP API and /metrics.

- 1: series labels never override an alert's identity (alertname, agent_id, severity, metric); clashing
  ones are kept as `exported_<name>`.
- 2: a body whose labels break the label limits (or the label bytes per body) is refused whole and counted;
  the stores are budgeted in bytes.
- 7: numbers that overflow or are non-finite where not allowed are a failed scrape, counted as such.
- 11: non-finite values answer valid JSON everywhere.
- 12: parsing stops at the sample limit on every path.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from monitoring.alerts import Alert
from monitoring.app import init_app
from monitoring.fast_text import TooManySamples, parse_plain
from monitoring.parsing import Sample, SampleLimitError, ShapeCache, parse_metrics
from monitoring.settings import Severity
from monitoring.state import COLLECTOR
from monitoring.store import MetricStore, sample_bytes

from .conftest import make_settings

Client = Callable[..., Any]
HIGH_CPU = {"rule_id": "HighCpu", "metric": "agent_cpu_usage_percent", "threshold": 85, "severity": "critical"}


async def wait_for(predicate: Callable[[], bool], timeout: float = 8.0) -> None:
    """Poll until `predicate` holds (what the test asserts next), failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def serve_bodies(aiohttp_server: Client, bodies: dict[str, tuple[bytes, str]]) -> str:
    """A loopback agent server answering GET /<name> with bodies[name] (body, content type); its base URL."""

    async def answer(request: web.Request) -> web.Response:
        body, content_type = bodies[request.match_info["name"]]
        return web.Response(body=body, content_type=content_type)

    app = web.Application()
    app.router.add_get("/{name}", answer)
    server: TestServer = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


def metric_value(text: str, name: str, labels: dict[str, str]) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def strict_json(text: str) -> Any:
    """json.loads as JSON.parse reads: NaN, Infinity and -Infinity are not JSON."""

    def refuse(constant: str) -> Any:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


TEXT = "text/plain"
JSON = "application/json"


# --- 1: series labels never override an alert's identity ----------------------------------------------


async def test_series_labels_cannot_change_an_alerts_identity(aiohttp_client: Client,
                                                              aiohttp_server: Client, tmp_path: Any) -> None:
    hostile = (b'agent_cpu_usage_percent{severity="info",alertname="Watchdog",agent_id="billing",metric="x",'
               b'exported_severity="kept"} 99\n')
    base = await serve_bodies(aiohttp_server, {"metrics": (hostile, TEXT)})
    received: dict[str, list[Any]] = {"alertmanager": [], "webhook": []}

    async def alertmanager(request: web.Request) -> web.Response:
        received["alertmanager"].append(await request.json())
        return web.json_response({})

    async def webhook(request: web.Request) -> web.Response:
        received["webhook"].append(await request.json())
        return web.json_response({})

    sink = web.Application()
    sink.router.add_post("/api/v2/alerts", alertmanager)
    sink.router.add_post("/hook", webhook)
    sink_server: TestServer = await aiohttp_server(sink)
    sink_base = str(sink_server.make_url("")).rstrip("/")
    state_file = tmp_path / "state.json"
    settings = make_settings(agents=[{"agent_id": "self", "metrics_endpoint": f"{base}/metrics"}],
                             alert_rules=[HIGH_CPU], alertmanager={"url": sink_base},
                             webhook={"url": f"{sink_base}/hook"}, persistence={"path": str(state_file)})
    client: TestClient = await aiohttp_client(init_app(settings))
    await wait_for(lambda: bool(received["alertmanager"] and received["webhook"]))

    expected_exported = {"exported_alertname": "Watchdog", "exported_agent_id": "billing", "exported_metric": "x",
                         # exported_severity is the agent's own: its severity is prefixed once more
                         "exported_severity": "kept", "exported_exported_severity": "info"}
    [posted] = received["alertmanager"][0]
    assert posted["labels"] == {"alertname": "HighCpu", "agent_id": "self", "severity": "critical",
                                "metric": "agent_cpu_usage_percent", **expected_exported}
    assert posted["annotations"]["summary"] == "HighCpu on self"
    [hooked] = received["webhook"][0]["alerts"]
    assert (hooked["rule_id"], hooked["agent_id"], hooked["severity"]) == ("HighCpu", "self", "critical")
    assert hooked["labels"] == expected_exported

    answer = await (await client.get("/api/v1/alerts")).json()
    [active] = answer["active"]
    assert (active["agent_id"], active["severity"], active["labels"]) == ("self", "critical", expected_exported)
    page = await (await client.get("/ui/alerts")).text()
    assert "HighCpu" in page and "Watchdog" not in page and "billing" not in page
    await wait_for(lambda: state_file.exists() and "HighCpu" in state_file.read_text())
    [saved] = json.loads(state_file.read_text())["alerts"]
    assert (saved["agent_id"], saved["severity"]) == ("self", "critical")
    assert dict(saved["labels"]) == expected_exported


def test_a_restored_alert_keeps_its_own_identity() -> None:
    """A state file (or any other maker of an Alert) cannot smuggle identity labels past the renaming."""
    alert = Alert("HighCpu", "self", Severity.CRITICAL, "", 99.0, 1.0,
                  (("agent_id", "billing"), ("severity", "info"), ("zone", "a")), metric="cpu")
    assert alert.labels == (("exported_agent_id", "billing"), ("exported_severity", "info"), ("zone", "a"))


# --- 2: label limits and byte budgets -----------------------------------------------------------------


def _text_with_huge_label(size: int) -> bytes:
    return b'agent_cpu_usage_percent{pod="' + b"x" * size + b'"} 1\n'


def _json_with_labels(count: int) -> bytes:
    labels = {f"l{index}": "v" for index in range(count)}
    return json.dumps({"metrics": [{"name": "agent_cpu_usage_percent", "value": 1, "labels": labels}]}).encode()


def _text_with_escaped_label(size: int) -> bytes:
    # The escaped quote takes the body off the fast path, to prometheus_client's parser.
    return b'agent_cpu_usage_percent{pod="\\"' + b"x" * size + b'"} 1\n'


def _many_small_labels(samples: int, length: int) -> bytes:
    return b"".join(b'm{i="%d",v="' % index + b"y" * length + b'"} 1\n' for index in range(samples))


@pytest.mark.parametrize(("body", "content_type", "reason"), [
    (_text_with_huge_label(3 * 2**20), TEXT, "label_value_length"),
    (_text_with_escaped_label(3 * 2**20), TEXT, "label_value_length"),
    (_json_with_labels(150_000), JSON, "label_limit"),
    (json.dumps({"metrics": [{"name": "m", "value": 1, "labels": {"n" * 300: "v"}}]}).encode(), JSON,
     "label_name_length"),
    (_many_small_labels(1_000, 2_000), TEXT, "label_bytes"),
    (b"m" * (3 * 2**20) + b" 1\n", TEXT, "name_length"),  # the name is the __name__ label
    (json.dumps({"metrics": [{"name": "m" * 3 * 2**20, "value": 1}]}).encode(), JSON, "name_length"),
], ids=["text-3MiB-value", "prometheus_client-3MiB-value", "json-150000-labels", "json-long-name",
        "text-label-bytes", "text-3MiB-metric-name", "json-3MiB-metric-name"])
async def test_a_body_beyond_the_label_limits_is_refused_whole_and_counted(
        aiohttp_client: Client, aiohttp_server: Client, body: bytes, content_type: str, reason: str) -> None:
    base = await serve_bodies(aiohttp_server, {"hostile": (body, content_type),
                                               "fine": (b"agent_cpu_usage_percent 5\n", TEXT)})
    settings = make_settings(agents=[{"agent_id": "hostile", "metrics_endpoint": f"{base}/hostile"},
                                     {"agent_id": "fine", "metrics_endpoint": f"{base}/fine"}],
                             max_label_bytes_per_scrape=1_000_000)
    client: TestClient = await aiohttp_client(init_app(settings))
    collector = client.app[COLLECTOR]
    hostile = collector.agents["hostile"]
    await wait_for(lambda: hostile.failures >= 3 and collector.agents["fine"].scrapes >= 3)
    assert hostile.scrapes == hostile.failures and hostile.status.value == "unhealthy"
    assert hostile.last_error == f"labels over the limits ({reason})"
    # Nothing of its bodies is kept: the stores hold the well-behaved agent's samples only.
    assert collector.store.series_count("hostile") == 0 and collector.store.agent_bytes("hostile") == 0
    assert {sample.agent_id for sample in collector.store.recent} == {"fine"}
    assert collector.store.recent_bytes < 10_000
    metrics = await (await client.get("/metrics")).text()
    refused = metric_value(metrics, "monitoring_bodies_refused_total", {"source": "scrape", "reason": reason})
    assert refused is not None and refused >= 3
    alerts = (await (await client.get("/api/v1/alerts")).json())["active"]
    assert [alert["description"] for alert in alerts if alert["agent_id"] == "hostile"] == [
        f"agent hostile cannot be scraped: labels over the limits ({reason})"]


async def test_a_json_type_that_is_no_metric_type_fails_the_scrape(aiohttp_client: Client,
                                                                   aiohttp_server: Client) -> None:
    """A JSON sample's `type` is one of the format's metric types: a 3 MiB one (kept per sample, it grew memory
    by the body's size every scrape) fails the scrape, and nothing of it is kept."""
    body = json.dumps({"metrics": [{"name": "agent_cpu_usage_percent", "value": 1, "type": "x" * 3 * 2**20}]})
    base = await serve_bodies(aiohttp_server, {"hostile": (body.encode(), JSON),
                                               "course": (b'{"metrics": [{"name": "m", "value": 1, "type": "COUNTER"}]}',
                                                          JSON)})
    settings = make_settings(agents=[{"agent_id": "hostile", "metrics_endpoint": f"{base}/hostile"},
                                     {"agent_id": "course", "metrics_endpoint": f"{base}/course"}])
    client: TestClient = await aiohttp_client(init_app(settings))
    collector = client.app[COLLECTOR]
    await wait_for(lambda: collector.agents["hostile"].failures >= 1 and collector.agents["course"].scrapes >= 1)
    assert collector.agents["hostile"].last_error == "not a metrics body"
    assert {(sample.agent_id, sample.type) for sample in collector.store.recent} == {("course", "counter")}


def test_the_recent_buffer_is_budgeted_in_bytes() -> None:
    store = MetricStore(recent_size=10_000, window_size=10, max_series_per_agent=100, recent_bytes=200_000)
    big = (("pod", "p" * 2_000),)
    for index in range(1_000):
        store.add(Sample("a", "m", float(index), float(index), big))
        assert store.recent_bytes <= 200_000
    assert 50 < len(store.recent) < 100  # each sample costs its label bytes: ~2.3 KB
    assert [sample.value for sample in store.recent][-1] == 999.0  # the newest are kept
    # Its count bound still holds, and the accounting goes back to what is left.
    small = MetricStore(recent_size=3, window_size=10, max_series_per_agent=100)
    for index in range(10):
        small.add(Sample("a", "m", float(index), float(index), big))
    assert len(small.recent) == 3 and small.recent_bytes == 3 * sample_bytes(small.recent[0])


def test_series_are_budgeted_in_bytes_per_agent_and_in_all() -> None:
    store = MetricStore(recent_size=10, window_size=10, max_series_per_agent=10_000, series_bytes=1_000_000,
                        series_bytes_per_agent=100_000)
    for index in range(1_000):
        store.add(Sample("a", "m", 1.0, 1.0, (("id", f"{index:04}" + "v" * 2_000),)))
    assert store.agent_bytes("a") <= 100_000 and store.series_count("a") < 50
    assert store.dropped_series == 1_000 - store.series_count("a")
    for agent in range(100):
        for index in range(40):
            store.add(Sample(f"agent-{agent}", "m", 1.0, 1.0, (("id", f"{index:04}" + "v" * 2_000),)))
    assert store.series_bytes <= 1_000_000
    assert store.series_bytes == sum(store.agent_bytes(f"agent-{agent}") for agent in range(100)) + \
        store.agent_bytes("a")
    store.forget("a")
    assert store.series_bytes == sum(store.agent_bytes(f"agent-{agent}") for agent in range(100))


async def test_one_agent_with_a_huge_label_does_not_grow_memory_per_scrape(aiohttp_client: Client,
                                                                           aiohttp_server: Client) -> None:
    base = await serve_bodies(aiohttp_server, {"huge": (_text_with_huge_label(3 * 2**20), TEXT),
                                               "wide": (_json_with_labels(150_000), JSON)})
    settings = make_settings(agents=[{"agent_id": "huge", "metrics_endpoint": f"{base}/huge"},
                                     {"agent_id": "wide", "metrics_endpoint": f"{base}/wide"}],
                             collection_interval=0.05)
    client: TestClient = await aiohttp_client(init_app(settings))
    collector = client.app[COLLECTOR]
    await wait_for(lambda: all(state.failures >= 10 for state in collector.agents.values()), timeout=20)
    assert collector.store.recent_bytes == 0 and collector.store.series_bytes == 0 and not collector.store.recent
    assert collector.refusals.counts[("scrape", "label_value_length")] >= 10
    assert collector.refusals.counts[("scrape", "label_limit")] >= 10
    metrics = await (await client.get("/metrics")).text()
    assert metric_value(metrics, "monitoring_recent_samples_bytes", {}) == 0
    assert metric_value(metrics, "monitoring_series_bytes", {}) == 0


# --- 7: overflowing and non-finite numbers ------------------------------------------------------------


def _json_value(raw: str, field: str = "value") -> bytes:
    item = '{"name": "agent_cpu_usage_percent", "value": 1}'.replace('"value": 1', f'"{field}": {raw}')
    if field != "value":
        item = item[:-1] + ', "value": 1}'
    return ('{"metrics": [' + item + "]}").encode()


@pytest.mark.parametrize(("body", "content_type", "reason"), [
    (_json_value("1e400"), JSON, "invalid number"),
    (_json_value("-1e400"), JSON, "invalid number"),
    (_json_value("1" + "0" * 400), JSON, "invalid number"),
    (_json_value("1" + "0" * 5_000), JSON, "not a metrics body"),
    (_json_value("NaN"), JSON, "invalid number"),
    (_json_value("Infinity"), JSON, "invalid number"),
    (_json_value("1e400", "timestamp"), JSON, "invalid number"),
    (b'{"metrics": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", JSON, "not a metrics body"),
    (b"agent_cpu_usage_percent 1 1e400\n", TEXT, "invalid number"),
    (b"agent_cpu_usage_percent 1 NaN\n", TEXT, "invalid number"),
    (b'agent_cpu_usage_percent{a="\\""} 1 +Inf\n', TEXT, "invalid number"),
    (b"agent_cpu_usage_percent " + b"9" * 400 + b"\n", TEXT, "not a metrics body"),
], ids=["json-1e400", "json-minus-1e400", "json-huge-int", "json-5000-digits", "json-NaN", "json-Infinity",
        "json-timestamp-1e400", "json-nested", "text-timestamp-1e400", "text-timestamp-NaN",
        "prometheus_client-timestamp-Inf", "text-huge-int"])
async def test_an_invalid_number_is_a_failed_scrape(aiohttp_client: Client, aiohttp_server: Client,
                                                    body: bytes, content_type: str, reason: str) -> None:
    base = await serve_bodies(aiohttp_server, {"hostile": (body, content_type)})
    settings = make_settings(agents=[{"agent_id": "hostile", "metrics_endpoint": f"{base}/hostile"}])
    client: TestClient = await aiohttp_client(init_app(settings))
    collector = client.app[COLLECTOR]
    hostile = collector.agents["hostile"]
    await wait_for(lambda: hostile.failures >= 2)
    assert hostile.scrapes == hostile.failures and hostile.last_error == reason
    assert collector.stats.scrapes_failed >= 2 and collector.stats.scrapes_ok == 0
    alerts = (await (await client.get("/api/v1/alerts")).json())["active"]
    assert [alert["rule_id"] for alert in alerts] == ["AgentUnreachable"]


# --- 11: non-finite values answer valid JSON ----------------------------------------------------------


async def test_non_finite_values_answer_valid_json(aiohttp_client: Client, aiohttp_server: Client) -> None:
    body = (b"agent_cpu_usage_percent NaN\nagent_memory_usage_bytes +Inf\n"
            b'agent_queue{q="a"} -Inf\n')
    base = await serve_bodies(aiohttp_server, {"odd": (body, TEXT)})
    hooked: list[str] = []

    async def webhook(request: web.Request) -> web.Response:
        hooked.append(await request.text())
        return web.json_response({})

    sink = web.Application()
    sink.router.add_post("/hook", webhook)
    sink_server: TestServer = await aiohttp_server(sink)
    settings = make_settings(agents=[{"agent_id": "odd", "metrics_endpoint": f"{base}/odd",
                                      "info": {"memory_limit_bytes": str(2**30)}}],
                             webhook={"url": str(sink_server.make_url("/hook"))},
                             alert_rules=[{"rule_id": "Nan", "metric": "agent_cpu_usage_percent",
                                           "operator": "!=", "threshold": 0},
                                          {"rule_id": "Low", "metric": "agent_queue", "operator": "<",
                                           "threshold": 0}])
    client: TestClient = await aiohttp_client(init_app(settings))
    collector = client.app[COLLECTOR]
    await wait_for(lambda: len(collector.alerts.active) == 2)
    overview = strict_json(await (await client.get("/api/v1/overview")).text())["system_overview"]
    detail = overview["agents"]["agents_detail"]["odd"]
    assert detail["cpu_usage"] == "NaN" and detail["memory_usage"] == "+Inf"
    report = strict_json(await (await client.get("/api/v1/report")).text())["performance_report"]
    assert report["agent_performance"]["odd"]["max_memory_usage"] == "+Inf"
    alerts = strict_json(await (await client.get("/api/v1/alerts")).text())["active"]
    assert sorted(alert["value"] for alert in alerts) == ["-Inf", "NaN"]
    strict_json(await (await client.get("/api/v1/agents")).text())
    await wait_for(lambda: sum(len(strict_json(text)["alerts"]) for text in hooked) == 2)
    assert sorted(alert["value"] for text in hooked for alert in strict_json(text)["alerts"]) == ["-Inf", "NaN"]


# --- 12: parsing stops at the sample limit ------------------------------------------------------------

LIMIT = 1_000
GARBAGE = "\x00 this is not metrics {{{\n" * 10


@pytest.mark.parametrize(("body", "content_type"), [
    ("".join(f"m{{i=\"{index}\"}} 1\n" for index in range(LIMIT + 1)) + GARBAGE, TEXT),
    ('m{i="\\""} 1\n' + "".join(f"m{{i=\"{index}\"}} 1\n" for index in range(LIMIT)) + GARBAGE, TEXT),
    ("# TYPE m gauge\n" + "".join(f"m{{i=\"{index}\"}} 1\n" for index in range(LIMIT + 1)) + GARBAGE, TEXT),
    ('{"metrics": [' + ",".join('{"name": "m", "value": 1, "labels": {"a": "b"}}' for _ in range(LIMIT + 2))
     + ", garbage", JSON),
], ids=["fast-path", "prometheus_client", "one-family", "json"])
def test_parsing_stops_at_the_sample_limit(body: str, content_type: str) -> None:
    """A body over the limit is refused as such before its tail (garbage here) is read."""
    with pytest.raises(SampleLimitError):
        parse_metrics(body.encode(), content_type, "a", 1.0, LIMIT)


def test_the_fast_path_stops_at_the_limit() -> None:
    """The fast path refuses at the (limit + 1)-th sample line: it never reaches the tail, which would send
    the body to prometheus_client's parser."""
    body = "# TYPE m gauge\n" + "".join(f"m{{i=\"{index}\"}} 1\n" for index in range(LIMIT + 1)) + GARBAGE
    with pytest.raises(TooManySamples):
        parse_plain(body, LIMIT)
    assert parse_plain(body) is None  # without a limit, the tail is read (and is not plain text)


def test_a_shaped_agent_sending_a_long_body_stops_at_the_limit() -> None:
    cache = ShapeCache()
    parse_metrics(b'm{i="0"} 1\nm{i="1"} 2\n', TEXT, "a", 1.0, LIMIT, cache)
    assert cache.shape is not None
    long = "".join(f"m{{i=\"{index}\"}} 1\n" for index in range(200_000)) + GARBAGE
    with pytest.raises(SampleLimitError):
        parse_metrics(long.encode(), TEXT, "a", 1.0, LIMIT, cache)


async def test_a_200000_line_body_is_refused_at_the_limit(aiohttp_client: Client, aiohttp_server: Client) -> None:
    long = ("".join(f"m{{i=\"{index}\"}} 1\n" for index in range(200_000)) + GARBAGE).encode()
    base = await serve_bodies(aiohttp_server, {"long": (long, TEXT)})
    settings = make_settings(agents=[{"agent_id": "long", "metrics_endpoint": f"{base}/long"}],
                             max_samples_per_scrape=LIMIT)
    client: TestClient = await aiohttp_client(init_app(settings))
    collector = client.app[COLLECTOR]
    await wait_for(lambda: collector.agents["long"].failures >= 2)
    assert collector.agents["long"].last_error == f"over the {LIMIT}-sample limit"
    metrics = await (await client.get("/metrics")).text()
    assert metric_value(metrics, "monitoring_bodies_refused_total", {"source": "scrape", "reason": "sample_limit"}) >= 2

