"""Scraped samples with their own timestamps meet the same time window as remote-written ones (issue 23 item 4,
follow-up): a sample stamped far ahead must not become the newest point of its window (every real sample after it
would be refused as out of order, and its alert stuck), nor one stamped in year -1200 be stored. Samples outside
the window are dropped and counted; the rest of the scrape is kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from monitoring.app import init_app
from monitoring.settings import MonitoringSettings, RemoteWriteSettings
from monitoring.state import COLLECTOR

from .conftest import make_settings
from .test_hostile_scrapes import HIGH_CPU, JSON, TEXT, metric_value, serve_bodies, wait_for

Client = Callable[..., Any]


def out_of_bounds(text: str, reason: str) -> float:
    return metric_value(text, "monitoring_samples_out_of_bounds_total", {"source": "scrape", "reason": reason}) or 0.0


async def test_a_sample_stamped_far_ahead_does_not_stick_the_alert(aiohttp_client: Client,
                                                                   aiohttp_server: Client) -> None:
    bodies: dict[str, tuple[bytes, str]] = {"metrics": (b"agent_cpu_usage_percent 95\n", TEXT)}
    base = await serve_bodies(aiohttp_server, bodies)
    client = await aiohttp_client(init_app(make_settings(
        agents=[{"agent_id": "planner", "metrics_endpoint": f"{base}/metrics"}], alert_rules=[HIGH_CPU])))
    collector = client.app[COLLECTOR]

    def high_cpu() -> bool:
        return any(alert.rule_id == "HighCpu" for alert in collector.alerts.active.values())

    await wait_for(high_cpu)  # a real reading fires the alert
    # The attack: an explicit timestamp far ahead (year 5138), next to an ordinary sample of the same scrape.
    bodies["metrics"] = (b"agent_cpu_usage_percent 99 99999999999999\nagent_memory_usage_bytes 7\n", TEXT)
    await wait_for(lambda: collector.store.latest("planner", "agent_memory_usage_bytes") == 7)
    text = await (await client.get("/metrics")).text()
    assert out_of_bounds(text, "too_far_in_future") >= 1
    assert collector.store.latest("planner", "agent_cpu_usage_percent") == 95  # not the future's 99
    # Real samples arrive: they are stored and the alert resolves.
    bodies["metrics"] = (b"agent_cpu_usage_percent 10\n", TEXT)
    await wait_for(lambda: collector.store.latest("planner", "agent_cpu_usage_percent") == 10)
    await wait_for(lambda: not high_cpu())
    assert collector.agents["planner"].status.value == "active"  # the scrapes themselves succeeded


async def test_a_json_sample_stamped_in_year_minus_1200_is_dropped(aiohttp_client: Client,
                                                                  aiohttp_server: Client) -> None:
    document = {"metrics": [{"name": "agent_cpu_usage_percent", "value": 99, "timestamp": -1e14},
                            {"name": "agent_memory_usage_bytes", "value": 7}]}
    base = await serve_bodies(aiohttp_server, {"metrics": (json.dumps(document).encode(), JSON)})
    client = await aiohttp_client(init_app(make_settings(
        agents=[{"agent_id": "planner", "metrics_endpoint": f"{base}/metrics"}], max_sample_age=60)))
    collector = client.app[COLLECTOR]
    await wait_for(lambda: collector.store.latest("planner", "agent_memory_usage_bytes") == 7)
    assert collector.store.latest("planner", "agent_cpu_usage_percent") is None
    assert all(sample.timestamp > 0 for sample in collector.store.recent)
    assert out_of_bounds(await (await client.get("/metrics")).text(), "too_old") >= 1
    for path in ("/api/v1/overview", "/api/v1/agents"):
        assert (await client.get(path)).status == 200


def test_the_window_is_a_top_level_setting() -> None:
    settings = MonitoringSettings(max_sample_age=120, max_sample_future=5)
    assert (settings.max_sample_age, settings.max_sample_future) == (120, 5)
    assert MonitoringSettings().max_sample_age == 3600 and MonitoringSettings().max_sample_future == 600
    assert "max_sample_age" not in RemoteWriteSettings.model_fields
    with pytest.raises(ValueError):
        MonitoringSettings(remote_write={"max_sample_age": 10})
