"""Remote-write after a code review (issue 23 items 2, 3 and 4, follow-ups): one series' problem costs only that
series, quotas charge only the series the store keeps, one byte estimate for quotas and budgets, and a series of
half a million labels is refused on its count before any label is read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cramjam

from monitoring.credentials import PROMETHEUS_SCOPE
from monitoring.parsing import Sample
from monitoring.state import COLLECTOR
from monitoring.store import MetricStore, sample_bytes

from .test_remote_write import STALE, agent, start, token, write_request
from .test_remote_write_hostile import metrics, now_ms, write
from .test_remote_write_ownership import error, rejected

Client = Callable[..., Any]
HIGH_CPU = [{"rule_id": "HighCpu", "metric": "agent_cpu_usage_percent", "threshold": 80, "severity": "critical"}]


def refused_bodies(text: str, reason: str) -> float:
    prefix = f'monitoring_bodies_refused_total{{reason="{reason}",source="remote_write"}} '
    return next((float(line[len(prefix):]) for line in text.splitlines() if line.startswith(prefix)), 0.0)


# --- 1: one series' problem must not cost the whole batch ------------------------------------------------------

async def test_an_offending_series_is_left_out_and_its_neighbours_are_stored(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, label_value_length_limit=100, label_limit=10, alert_rules=HIGH_CPU)
    collector = client.app[COLLECTOR]
    stamp = now_ms()
    # What each attack sends next to a healthy neighbour, the reason it is counted under and the setting named.
    offenders = {
        "label_value_length": (({**agent("x", "evil"), "big": "v" * 101}, [(1, stamp)]), "label_value_length_limit"),
        "label_name_length": (({**agent("x", "evil"), "n" * 300: "v"}, [(1, stamp)]), "label_name_length_limit"),
        "label_limit": (({**agent("x", "evil"), **{f"l{index}": "v" for index in range(6)}}, [(1, stamp)]),
                        "label_limit"),
        "agent_id": ((agent("up", "billing agent"), [(1, stamp)]), "agent_id"),
        "too_old": ((agent("x", "evil"), [(1, -10**14)]), "max_sample_age"),
        "too_far_in_future": ((agent("x", "evil"), [(1, stamp + 10**12)]), "max_sample_future"),
    }
    for step, (reason, (offender, setting)) in enumerate(offenders.items()):
        neighbour = [(agent("up", f"n{step}"), [(1, stamp + step)]),
                     (agent("agent_cpu_usage_percent", f"n{step}"), [(95, stamp + step)])]
        response = await write(client, [neighbour[0], offender, neighbour[1]], PROMETHEUS_SCOPE)
        assert response.status == 400, reason
        text = await error(response)
        assert f"1 series: {reason}" in text and setting in text and "2 series taken" in text, (reason, text)
        # The neighbour is stored whole: its heartbeat, its samples, its alert.
        assert collector.agents[f"n{step}"].status.value == "active", reason
        assert collector.store.series_values(f"n{step}", "agent_cpu_usage_percent") == [95], reason
        assert any(alert.agent_id == f"n{step}" for alert in collector.alerts.active.values()), reason
        # The offender is not.
        assert "evil" not in collector.agents and "billing agent" not in collector.agents, reason
        assert rejected(await metrics(client), reason) == 1, reason
    text = await metrics(client)
    for reason in ("label_value_length", "label_name_length", "label_limit", "agent_id"):
        assert refused_bodies(text, reason) == 1, reason
    # Request-level bounds still refuse the whole request.
    many = [(agent("agent_cpu_usage_percent", "n0"), [(1, stamp + 10)])] + [
        ({**agent("x", "n0"), "v": "w" * 90, "n": str(index)}, [(1, stamp)]) for index in range(100_000 // 180)]
    bounded = await start(aiohttp_client, remote_write={"max_label_bytes_per_request": 50_000})
    assert (await write(bounded, many, PROMETHEUS_SCOPE)).status == 413
    assert bounded.app[COLLECTOR].agents == {}


async def test_a_namespace_tokens_batch_keeps_its_good_series_too(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, label_limit=10)
    collector = client.app[COLLECTOR]
    stamp = now_ms()
    series = [(agent("up", "planner", "team-a"), [(1, stamp)]),
              ({**agent("x", "planner", "team-a"), **{f"l{index}": "v" for index in range(6)}}, [(1, stamp)]),
              (agent("agent_cpu_usage_percent", "planner", "team-a"), [(5, stamp)])]
    response = await write(client, series, "team-a")
    assert response.status == 400 and "label_limit" in await error(response)
    assert collector.store.series_values("planner", "agent_cpu_usage_percent") == [5]
    assert collector.store.series_count("planner") == 1 and collector.ownership.usage("team-a").series == 1


# --- 2: quotas charge only what the store keeps ------------------------------------------------------------------

async def test_stale_only_series_are_never_charged(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client)
    collector = client.app[COLLECTOR]
    for round_ in range(3):
        stamp = now_ms() + round_
        stale = [({**agent("gone_metric", "planner", "team-a"), "k": str(index)}, [(STALE, stamp)])
                 for index in range(5)]
        assert (await write(client, stale, "team-a")).status == 204
    usage = collector.ownership.usage("team-a")
    assert usage.series == 0 and usage.bytes == 0
    assert collector.store.series_count("planner") == 0
    # A series that does get a window is charged once, however many requests bring it.
    for round_ in range(3):
        live = [({**agent("gone_metric", "planner", "team-a"), "k": "0"}, [(float("nan"), now_ms()), (1, now_ms())])]
        assert (await write(client, live, "team-a")).status == 204
    assert collector.ownership.usage("team-a").series == 1 == collector.store.series_count("planner")


# --- 3: one byte estimate --------------------------------------------------------------------------------------

async def test_namespace_bytes_are_the_stores_bytes(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client)
    collector = client.app[COLLECTOR]
    stamp = now_ms()
    series = [({**agent("hot", f"a{index % 3}", "team-a"), "k": f"{index}" + "v" * index}, [(1, stamp)])
              for index in range(50)]
    assert (await write(client, series, "team-a")).status == 204
    held = sum(collector.store.agent_bytes(f"a{index}") for index in range(3))
    assert held > 0 and collector.ownership.usage("team-a").bytes == held == collector.store.series_bytes


def test_the_recent_buffer_counts_what_sample_bytes_says() -> None:
    store = MetricStore(recent_size=5, window_size=10, max_series_per_agent=100)
    samples = [Sample("a", "m" * index, 1.0, float(index), (("k", "v" * index),) * (index % 3)) for index in range(9)]
    for sample in samples:
        store.add(sample)
    assert store.recent_bytes == sum(sample_bytes(sample) for sample in samples[-5:])


# --- 6: a series of half a million empty labels is refused on its count ------------------------------------------

def _many_labels_body(labels: int, extra: list[tuple[str, str]], before: bytes = b"") -> bytes:
    """One series of `labels` empty labels (two bytes each on the wire) after `extra` ones, a sample of now,
    after the serialized series `before`; snappy-compressed."""
    head = b"".join(_label(name, value) for name, value in extra) + _label("", "") * labels
    sample = b"\x09" + b"\x00" * 8 + b"\x10" + _varint(now_ms())
    series = head + b"\x12" + _varint(len(sample)) + sample
    raw = before + b"\x0a" + _varint(len(series)) + series
    return bytes(cramjam.snappy.compress_raw(raw))


def _label(name: str, value: str) -> bytes:
    inner = b""
    for number, text in ((1, name), (2, value)):
        if text:
            data = text.encode()
            inner += bytes([number << 3 | 2]) + _varint(len(data)) + data
    return b"\x0a" + _varint(len(inner)) + inner


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


async def test_half_a_million_empty_labels_are_refused_on_their_count(aiohttp_client: Client) -> None:
    client = await start(aiohttp_client, label_value_length_limit=100)
    collector = client.app[COLLECTOR]
    named = [("__name__", "x"), ("agent_id", "evil")]
    body = _many_labels_body(524_000, named)
    assert len(body) < 60_000  # ~49 KB on the wire, a megabyte expanded
    # Had the labels been read before they were counted, the long value would be found (label_value_length) and
    # the bad agent id; counted first, the series is refused for its count alone, whatever its labels hold.
    poisoned = _many_labels_body(524_000, [*named, ("big", "v" * 101), ("agent_id", "no such id")])
    ten_times = _many_labels_body(5_240_000, named)  # over COUNT_NESTED_ABOVE_BYTES: counted on the wire, never parsed
    for case, sent in (("plain", body), ("poisoned", poisoned), ("ten times", ten_times)):
        response = await client.post("/api/v1/write", data=sent, headers=token(PROMETHEUS_SCOPE))
        assert response.status == 400, case
        assert "1 series: label_limit" in await error(response), case
    assert collector.agents == {}
    text = await metrics(client)
    assert refused_bodies(text, "label_limit") == 3
    assert refused_bodies(text, "label_value_length") == 0 and refused_bodies(text, "agent_id") == 0
    # A neighbour of the ten-times series, in the same body, is still taken.
    good = bytes(cramjam.snappy.decompress_raw(write_request([(agent("up", "planner"), [(1, now_ms())])])))
    response = await client.post("/api/v1/write", data=_many_labels_body(5_240_000, named, before=good),
                                 headers=token(PROMETHEUS_SCOPE))
    assert response.status == 400 and "1 series taken" in await error(response)
    assert set(collector.agents) == {"planner"} and collector.agents["planner"].status.value == "active"
