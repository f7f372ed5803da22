"""A tampered state file can't poison the service: bad records are set aside one by one (counted, logged
escaped), the good ones restored, and one alert that can't be encoded never fails a delivery batch
(issue 23 item 5)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from monitoring.alerts import Alert
from monitoring.app import init_app
from monitoring.settings import AGENT_DOWN_RULE, MonitoringSettings, Severity
from monitoring.state import COLLECTOR, STORE

from .conftest import make_settings
from .test_service import metric_value, wait_for

Client = Callable[..., Any]
DEAD = "http://127.0.0.1:9"
FORGED = "2026-01-01 00:00:00,000 CRITICAL monitoring: forged"


def _alert(agent_id: str, **fields: Any) -> dict[str, Any]:
    return {"rule_id": AGENT_DOWN_RULE, "agent_id": agent_id, "severity": "critical", "value": 0,
            "started_at": time.time() - 60, **fields}


class FakeAlertmanager:
    """POST /api/v2/alerts on loopback, keeping what it received."""

    def __init__(self) -> None:
        self.posts: list[list[dict[str, Any]]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v2/alerts", self.receive)
        return app

    async def receive(self, request: web.Request) -> web.Response:
        self.posts.append(await request.json())
        return web.Response(status=200)

    def agents(self) -> set[str]:
        return {alert["labels"]["agent_id"] for post in self.posts for alert in post}


async def _alertmanager(aiohttp_server: Client) -> tuple[FakeAlertmanager, str]:
    fake = FakeAlertmanager()
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("")).rstrip("/")


def _settings(tmp_path: Path, alertmanager: str) -> MonitoringSettings:
    agents = [{"agent_id": name, "metrics_endpoint": f"{DEAD}/{name}"} for name in ("good", "absurd")]
    return make_settings(collection_interval=3600, persistence={"path": tmp_path / "state.json"}, agents=agents,
                         alertmanager={"url": alertmanager, "resend_interval": 0.1})


async def test_absurd_records_are_set_aside_and_the_good_ones_kept(
        aiohttp_client: Client, aiohttp_server: Client, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fake, url = await _alertmanager(aiohttp_server)
    now = time.time()
    bad_alerts = [_alert("absurd", started_at=1e300), _alert("absurd", started_at=-1e15, rule_id="Old"),
                  _alert("absurd", started_at=now + 3600, rule_id="Future"),
                  _alert("absurd", started_at=946684799.0, rule_id="Before2000"),
                  _alert("absurd", rule_id=f"x\n{FORGED}", started_at=1e11),
                  _alert("absurd", rule_id="LongMetric", metric="m" * 10_000),
                  _alert("absurd", rule_id="LongLabel", labels=[["zone", "z" * 10_000]]),
                  _alert("absurd", rule_id="Huge", value=1e400),  # JSON Infinity
                  {"rule_id": "NotAnAlert"}]
    document = {"version": 1,
                "agents": [{"agent_id": "api-1", "metrics_endpoint": f"{DEAD}/api-1"},
                           {"agent_id": "broken", "metrics_endpoint": "not a url"}],
                "rules": [{"rule_id": "HighCpu", "metric": "cpu", "threshold": 80},
                          {"rule_id": "Broken", "metric": "cpu", "threshold": "high"}],
                "alerts": [_alert("good"), *bad_alerts]}
    (tmp_path / "state.json").write_text(json.dumps(document))
    with caplog.at_level(logging.WARNING, "monitoring.persistence"):
        client = await aiohttp_client(init_app(_settings(tmp_path, url)))
    collector = client.app[COLLECTOR]
    assert [alert.agent_id for alert in collector.alerts.active.values()] == ["good"]
    assert "api-1" in collector.agents and "broken" not in collector.agents
    assert [rule.rule_id for rule in collector.rules.all()] == ["HighCpu"]

    alerts = await client.get("/api/v1/alerts")
    assert alerts.status == 200 and [a["agent_id"] for a in (await alerts.json())["active"]] == ["good"]
    assert (await client.get("/ui/alerts")).status == 200
    assert (await client.get("/api/v1/overview")).status == 200
    # The valid critical alert keeps reaching Alertmanager (the resend loop).
    await wait_for(lambda: "good" in fake.agents())
    assert fake.agents() == {"good"}

    metrics = await (await client.get("/metrics")).text()
    counts = {kind: metric_value(metrics, "monitoring_state_records_set_aside_total", {"kind": kind})
              for kind in ("agent", "rule", "alert")}
    assert counts == {"agent": 1, "rule": 1, "alert": len(bad_alerts)}
    # Each one logged, on one line (the forged rule id escaped), with where it was and why.
    set_aside = [record.getMessage() for record in caplog.records if "] set aside (" in record.getMessage()]
    assert len(set_aside) == 2 + len(bad_alerts)
    assert all("\n" not in message for message in set_aside)
    assert any("alerts[1]" in message and "started_at" in message for message in set_aside)
    assert any("x\\\\n2026-01-01" in message for message in set_aside)  # (a repr's \\ doubled, as every backslash)
    # The whole document is kept for the operator; the next save holds only what was restored.
    assert json.loads((tmp_path / "state.json.corrupt").read_text()) == json.loads(json.dumps(document))
    store = client.app[STORE]
    assert store.stats.corrupt == 0  # records set aside, not a corrupt document


async def test_too_many_records_set_the_document_aside(aiohttp_client: Client, tmp_path: Path) -> None:
    """Counts are bounded: a document no service writes is not read record by record."""
    document = {"version": 1, "alerts": [_alert(f"a-{number}") for number in range(1_001)]}
    (tmp_path / "state.json").write_text(json.dumps(document))
    client = await aiohttp_client(init_app(make_settings(collection_interval=3600,
                                                         persistence={"path": tmp_path / "state.json"})))
    assert client.app[COLLECTOR].alerts.active == {}
    assert client.app[STORE].stats.corrupt == 1


async def test_one_alert_that_cannot_be_encoded_never_fails_the_batch(
        aiohttp_client: Client, aiohttp_server: Client, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """However an absurd alert got in, the others are still sent; it is dropped from the batch, logged, counted."""
    fake, url = await _alertmanager(aiohttp_server)
    client = await aiohttp_client(init_app(_settings(tmp_path, url)))
    collector = client.app[COLLECTOR]
    now = time.time()
    for alert in (Alert(AGENT_DOWN_RULE, "good", Severity.CRITICAL, "down", 0.0, now),
                  # dates are total (alerts.iso), so a label no JSON can hold stands for whatever else may fail
                  Alert(AGENT_DOWN_RULE, "absurd", Severity.CRITICAL, "down", 0.0, now,
                        labels=(("x", b"\xff"),))):  # type: ignore[arg-type]
        collector.alerts.active[alert.key] = alert
    with caplog.at_level(logging.WARNING, "monitoring.notifiers"):
        await wait_for(lambda: "good" in fake.agents())
    assert fake.agents() == {"good"}
    metrics = await (await client.get("/metrics")).text()
    dropped = metric_value(metrics, "monitoring_alert_notifications_unencodable_total", {"handler": "alertmanager"})
    assert dropped is not None and dropped >= 1
    assert "absurd" in caplog.text and "not sent" in caplog.text
    collector.alerts.active.pop(next(key for key in collector.alerts.active if key[1] == "absurd"))  # unsavable too
