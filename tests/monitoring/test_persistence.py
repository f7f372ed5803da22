"""State across restarts: snapshot, stores (file and ConfigMap on a fake API server), restore, the saving loop."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio import client

from monitoring.alerts import Alert
from monitoring.app import init_app
from monitoring.collector import Collector
from monitoring.parsing import Sample
from monitoring.persistence import (ConfigMapStore, FileStore, StateTooLarge, StoreError, StoreStats, keep, load,
                                    restore, snapshot, store_from_settings)
from monitoring.settings import AGENT_DOWN_RULE, AlertRuleSpec, MonitoringSettings
from monitoring.state import COLLECTOR

from .conftest import make_settings
from .test_service import wait_for

DEAD = "http://127.0.0.1:9"  # nothing listens; the schedules below never get to scrape it anyway


def fresh_collector(settings: MonitoringSettings, notified: list[Alert]) -> Collector:
    """A collector as init_app builds it after a restart (static agents registered), not started."""
    collector = Collector(settings, on_alert_change=notified.append)
    for agent in settings.agents:
        collector.register(agent.agent_id, str(agent.metrics_endpoint), None, agent.info, "static")
    return collector


def restart_settings(tmp_path: Path) -> MonitoringSettings:
    return make_settings(collection_interval=3600, persistence={"path": tmp_path / "state" / "state.json"},
                         agents=[{"agent_id": "static-1", "metrics_endpoint": f"{DEAD}/static"}],
                         alert_rules=[{"rule_id": "StaticRule", "metric": "errors", "threshold": 1}])


async def test_restart_keeps_api_registrations_rules_and_active_alerts(
        aiohttp_client: Callable[..., Any], tmp_path: Path) -> None:
    settings = restart_settings(tmp_path)
    service = await aiohttp_client(init_app(settings))
    created = await service.post("/api/v1/agents", json={
        "agent_id": "planner", "metrics_endpoint": f"{DEAD}/metrics", "health_endpoint": f"{DEAD}/health",
        "info": {"team": "search"}})
    assert created.status == 201
    rule = await service.post("/api/v1/alert-rules", json={"rule_id": "HighCpu", "metric": "cpu", "threshold": 80,
                                                           "severity": "critical", "description": "{value:.0f}%"})
    assert rule.status == 201
    collector: Collector = service.app[COLLECTOR]
    now = time.time()
    # Labels out of sorted order: their order is part of the alert's key and must survive.
    collector.process([Sample("planner", "cpu", 95.5, now, (("zone", "b"), ("pod", "a")))], now)
    collector.alerts.agent_down("static-1", "connection refused", now)
    before = {key: alert.as_dict() for key, alert in collector.alerts.active.items()}
    assert {key[0] for key in before} == {"HighCpu", AGENT_DOWN_RULE}

    store = store_from_settings(settings)
    assert isinstance(store, FileStore)
    document = snapshot(collector)
    assert [agent["agent_id"] for agent in document["agents"]] == ["planner"]  # not the static agent
    assert [rule["rule_id"] for rule in document["rules"]] == ["HighCpu"]  # not the settings' rule
    await store.save(json.dumps(document))
    path = tmp_path / "state" / "state.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]  # no temp file left behind

    notified: list[Alert] = []
    restarted = fresh_collector(settings, notified)
    assert await load(restarted, store)
    assert {agent_id: (state.metrics_endpoint, state.health_endpoint, state.info, state.source)
            for agent_id, state in restarted.agents.items()} == {
        "static-1": (f"{DEAD}/static", None, {}, "static"),
        "planner": (f"{DEAD}/metrics", f"{DEAD}/health", {"team": "search"}, "api")}
    assert restarted.rules.all() == collector.rules.all()
    assert {key: alert.as_dict() for key, alert in restarted.alerts.active.items()} == before
    assert notified == [] and restarted.alerts.fired_total == 0  # restored, not reported as new
    assert snapshot(restarted) == document

    # The restored alert behaves as if it never went away: still firing -> no news; clears -> resolved once.
    later = now + 15
    restarted.process([Sample("planner", "cpu", 97.0, later, (("zone", "b"), ("pod", "a")))], later)
    assert notified == []
    restarted.process([Sample("planner", "cpu", 10.0, later + 15, (("zone", "b"), ("pod", "a")))], later + 15)
    assert [(alert.rule_id, alert.status, alert.started_at) for alert in notified] == [("HighCpu", "resolved", now)]


async def test_the_settings_rules_win_over_stored_ones(tmp_path: Path) -> None:
    """A stored rule whose id the settings now define (or one over max_alert_rules) is not restored."""
    settings = restart_settings(tmp_path)
    stored = {"version": 1, "agents": [], "alerts": [],
              "rules": [{"rule_id": "StaticRule", "metric": "errors", "threshold": 5},
                        {"rule_id": "Extra", "metric": "errors", "threshold": 9}]}
    restarted = fresh_collector(settings.model_copy(update={"max_alert_rules": 1}), [])
    done = restore(restarted, stored)
    assert [rule.threshold for rule in restarted.rules.all()] == [1] and done.skipped == 2
    assert snapshot(restarted)["rules"] == []


async def test_agents_the_settings_now_define_or_the_policy_refuses_are_skipped(tmp_path: Path) -> None:
    settings = restart_settings(tmp_path)
    collector = fresh_collector(settings, [])
    done = restore(collector, {"version": 1, "agents": [
        {"agent_id": "static-1", "metrics_endpoint": f"{DEAD}/elsewhere"},  # now in the settings: they win
        {"agent_id": "metadata", "metrics_endpoint": "http://169.254.169.254/latest/meta-data"},  # policy refuses
        {"agent_id": "planner", "metrics_endpoint": f"{DEAD}/metrics"}]})
    assert (done.agents, done.skipped) == (1, 2)
    assert collector.agents["static-1"].metrics_endpoint == f"{DEAD}/static"
    assert set(collector.agents) == {"static-1", "planner"}


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b"[]", b'{"version": 2, "agents": []}',
                                     b'{"version": 1, "agents": {"agent_id": "ok"}}',
                                     b'{"version": 1, "agents": [], "extra": 1}'])
async def test_a_bad_document_is_ignored_and_kept_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                        content: bytes) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    collector = fresh_collector(make_settings(), [])
    with caplog.at_level(logging.ERROR, "monitoring.persistence"):
        assert await load(collector, FileStore(path))  # read (and ignored): saving may go on
    assert collector.agents == {} and collector.alerts.active == {}
    assert not path.exists()
    assert (tmp_path / "state.json.corrupt").read_bytes() == content
    assert "saved state ignored" in caplog.text and "kept as" in caplog.text


async def test_keep_saves_changes_and_once_more_on_shutdown(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "state.json")
    collector = fresh_collector(make_settings(collection_interval=3600), [])
    task = asyncio.create_task(keep(collector, store, 0.02))
    try:
        await wait_for(lambda: store.stats.saves == 1)  # the first round writes the (empty) state
        collector.register("planner", f"{DEAD}/metrics")
        await wait_for(lambda: store.stats.saves == 2)
        assert json.loads(store.path.read_text())["agents"][0]["agent_id"] == "planner"
        collector.alerts.agent_down("planner", "refused", time.time())
        await wait_for(lambda: store.stats.saves == 3)
        # Only the alert's text changes: not worth a write per round, but kept by the final save.
        collector.alerts.agent_down("planner", "timed out", time.time())
        await asyncio.sleep(0.1)
        assert store.stats.saves == 3
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert store.stats.saves == 4
    assert json.loads(store.path.read_text())["alerts"][0]["description"] == "agent planner cannot be scraped: " \
                                                                             "timed out"


class FlakyStore:
    """An in-memory store whose reads fail a given number of times."""

    def __init__(self, text: str | None, failing_reads: int) -> None:
        self.text, self.failing_reads, self.stats = text, failing_reads, StoreStats()

    async def load(self) -> str | None:
        if self.failing_reads:
            self.failing_reads -= 1
            raise StoreError("API server unreachable")
        return self.text

    async def save(self, text: str) -> None:
        self.text = text
        self.stats.saves += 1

    async def set_aside(self, text: str, reason: str) -> None:
        raise AssertionError("not corrupt")


async def test_an_unreadable_store_is_never_overwritten(tmp_path: Path) -> None:
    saved = make_settings(collection_interval=3600)
    original = fresh_collector(saved, [])
    original.register("planner", f"{DEAD}/metrics")
    store = FlakyStore(json.dumps(snapshot(original)), failing_reads=3)
    collector = fresh_collector(saved, [])
    assert not await load(collector, store)  # start-up goes on without the state...
    task = asyncio.create_task(keep(collector, store, 0.02, loaded=False))
    try:
        await wait_for(lambda: "planner" in collector.agents)  # ...which is read again and restored
        await asyncio.sleep(0.1)
        assert json.loads(store.text or "")["agents"][0]["agent_id"] == "planner"  # never the empty state
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_restored_alerts_nothing_can_clear_are_resolved_after_a_grace_period() -> None:
    notified: list[Alert] = []
    collector = fresh_collector(make_settings(collection_interval=3600), notified)
    collector.register("planner", f"{DEAD}/metrics")
    now = time.time()
    restore(collector, {"version": 1, "alerts": [
        {"rule_id": AGENT_DOWN_RULE, "agent_id": "planner", "severity": "critical", "value": 0, "started_at": now},
        {"rule_id": AGENT_DOWN_RULE, "agent_id": "gone-pod.agents", "severity": "critical", "value": 0,
         "started_at": now},
        {"rule_id": "RemovedRule", "agent_id": "planner", "metric": "cpu", "severity": "warning", "value": 1,
         "started_at": now}]})
    assert len(collector.alerts.active) == 3
    task = asyncio.create_task(keep(collector, FlakyStore(None, 0), 0.02, orphans_after=0.05))
    try:
        await wait_for(lambda: len(collector.alerts.active) == 1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [(alert.agent_id, alert.rule_id) for alert in collector.alerts.active.values()] == [
        ("planner", AGENT_DOWN_RULE)]
    assert sorted((alert.agent_id, alert.status) for alert in notified) == [
        ("gone-pod.agents", "resolved"), ("planner", "resolved")]


# --- the ConfigMap store against a fake Kubernetes API ---------------------------------------------


class FakeConfigMaps:
    """GET/PUT /api/v1/namespaces/{ns}/configmaps/{name} and POST .../configmaps, kept in memory."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 2**20)
        app.router.add_get("/api/v1/namespaces/{namespace}/configmaps/{name}", self.read)
        app.router.add_put("/api/v1/namespaces/{namespace}/configmaps/{name}", self.replace)
        app.router.add_post("/api/v1/namespaces/{namespace}/configmaps", self.create)
        return app

    @staticmethod
    def _status(code: int, reason: str) -> web.Response:
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
                                  "code": code}, status=code)

    async def read(self, request: web.Request) -> web.Response:
        key = (request.match_info["namespace"], request.match_info["name"])
        self.requests.append(("GET", key[1]))
        if key not in self.objects:
            return self._status(404, "NotFound")
        return web.json_response(self.objects[key])

    async def replace(self, request: web.Request) -> web.Response:
        key = (request.match_info["namespace"], request.match_info["name"])
        self.requests.append(("PUT", key[1]))
        if key not in self.objects:
            return self._status(404, "NotFound")
        self.objects[key] = await request.json()
        return web.json_response(self.objects[key])

    async def create(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = (request.match_info["namespace"], body["metadata"]["name"])
        self.requests.append(("POST", key[1]))
        if key in self.objects:
            return self._status(409, "AlreadyExists")
        self.objects[key] = body
        return web.json_response(body, status=201)


@pytest.fixture
async def fake_api(aiohttp_server: Callable[..., Any]) -> tuple[FakeConfigMaps, client.Configuration]:
    fake = FakeConfigMaps()
    server = await aiohttp_server(fake.app())
    return fake, client.Configuration(host=str(server.make_url("")).rstrip("/"))


async def test_config_map_store_creates_then_replaces(
        fake_api: tuple[FakeConfigMaps, client.Configuration]) -> None:
    fake, configuration = fake_api
    store = ConfigMapStore("monitoring", "monitoring-state", configuration)
    assert await store.load() is None
    await store.save('{"version": 1}')
    assert fake.requests == [("GET", "monitoring-state"), ("PUT", "monitoring-state"), ("POST", "monitoring-state")]
    stored = fake.objects[("monitoring", "monitoring-state")]
    assert stored["metadata"]["name"] == "monitoring-state" and stored["data"] == {"state.json": '{"version": 1}'}

    collector = fresh_collector(make_settings(collection_interval=3600), [])
    collector.register("planner", f"{DEAD}/metrics")
    await store.save(json.dumps(snapshot(collector)))
    assert fake.requests[-1] == ("PUT", "monitoring-state") and store.stats.saves == 2
    restarted = fresh_collector(make_settings(collection_interval=3600), [])
    assert await load(restarted, store)
    assert restarted.agents["planner"].source == "api"


async def test_config_map_store_refuses_too_large_state(
        fake_api: tuple[FakeConfigMaps, client.Configuration], caplog: pytest.LogCaptureFixture) -> None:
    fake, configuration = fake_api
    store = ConfigMapStore("monitoring", "monitoring-state", configuration, max_bytes=2048)
    with pytest.raises(StateTooLarge):
        await store.save("x" * 2049)
    assert fake.requests == [] and store.stats.refused == 1 and "over the 2048-byte limit" in caplog.text

    # The loop does not try the same oversized state again every round (it tries once more without
    # the alerts, which are empty here, so that is refused too).
    collector = fresh_collector(make_settings(collection_interval=3600, max_agents=100), [])
    for number in range(30):
        collector.register(f"agent-{number}", f"{DEAD}/{number}")
    task = asyncio.create_task(keep(collector, store, 0.02))
    try:
        await wait_for(lambda: store.stats.refused == 3)
        await asyncio.sleep(0.1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert store.stats.refused == 3 and store.stats.saves == 0 and fake.requests == []

    default = ConfigMapStore("monitoring", "monitoring-state", configuration)
    await default.save("x" * 800 * 1024)
    with pytest.raises(StateTooLarge):
        await default.save("x" * 901 * 1024)


async def test_config_map_store_keeps_a_bad_document_aside(
        fake_api: tuple[FakeConfigMaps, client.Configuration]) -> None:
    fake, configuration = fake_api
    fake.objects[("monitoring", "monitoring-state")] = {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "monitoring-state", "namespace": "monitoring"},
        "data": {"state.json": '{"version": 99}'}}
    store = ConfigMapStore("monitoring", "monitoring-state", configuration)
    assert await load(fresh_collector(make_settings(), []), store)
    aside = fake.objects[("monitoring", "monitoring-state-corrupt")]
    assert aside["data"] == {"state.json": '{"version": 99}'}
    assert "unknown version 99" in aside["metadata"]["annotations"]["monitoring/reason"]


async def test_no_cluster_is_a_logged_error_not_a_crash(caplog: pytest.LogCaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    store = store_from_settings(make_settings(persistence={"config_map": "monitoring-state"}))
    assert isinstance(store, ConfigMapStore)
    assert not await load(fresh_collector(make_settings(), []), store)
    assert "state not restored" in caplog.text
    assert store_from_settings(make_settings()) is None


async def test_an_alert_storm_never_costs_the_registrations(
        fake_api: tuple[FakeConfigMaps, client.Configuration]) -> None:
    """Alerts carry what agents expose: a state too large with them is saved without them."""
    fake, configuration = fake_api
    store = ConfigMapStore("monitoring", "monitoring-state", configuration, max_bytes=4096)
    collector = fresh_collector(make_settings(collection_interval=3600), [])
    collector.register("planner", f"{DEAD}/metrics")
    collector.add_rule(AlertRuleSpec(rule_id="Anything", threshold=0))
    collector.process([Sample("planner", "load", float(index), time.time(), (("series", f"s{index:04}"),))
                       for index in range(1, 200)], time.time())
    assert len(collector.alerts.active) == 199
    task = asyncio.create_task(keep(collector, store, 0.02))
    try:
        await wait_for(lambda: store.stats.saves == 1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    saved = json.loads(fake.objects[("monitoring", "monitoring-state")]["data"]["state.json"])
    assert [agent["agent_id"] for agent in saved["agents"]] == ["planner"] and saved["alerts"] == []
    assert [rule["rule_id"] for rule in saved["rules"]] == ["Anything"]
