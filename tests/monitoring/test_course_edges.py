"""The course's collector at its edges: restarts, rule names, many series, unregistering, cleanup."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from monitoring import DistributedMetricsCollector

from .course_agents import (
    AlertRecorder,
    MakeCollector,
    Serve,
    StubAgent,
    agent_status,
    make_rule,
    overview_of,
    wait_for,
)

FAST = 0.05


async def _agent(values: dict[str, float], **options: Any) -> tuple[web.AppRunner, StubAgent]:
    agent = StubAgent(values, **options)
    runner = web.AppRunner(agent.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
    agent.base_url = f"http://127.0.0.1:{port}"
    return runner, agent


def test_a_collector_keeps_delivering_after_a_restart_in_a_new_event_loop() -> None:
    """Course code may asyncio.run() twice; the handler queue must not stay bound to the first loop."""
    collector = DistributedMetricsCollector(collection_interval=FAST, collect_system_metrics=False)
    recorder = AlertRecorder()
    collector.add_alert_handler(recorder)
    collector.add_alert_rule(make_rule())

    async def round_with(agent_id: str) -> None:
        runner, agent = await _agent({"queue_depth": 50})
        try:
            await collector.register_agent(agent_id, agent.info())
            await wait_for(lambda: f"DeepQueue:{agent_id}:queue_depth" in recorder.ids(), what="the alert")
        finally:
            await collector.unregister_agent(agent_id)
            await collector.stop()
            await runner.cleanup()

    asyncio.run(round_with("first"))
    asyncio.run(round_with("second"))
    assert recorder.ids() == ["DeepQueue:first:queue_depth", "DeepQueue:second:queue_depth"]


def test_without_stop_the_http_session_still_closes_when_the_loop_ends() -> None:
    """The course never stops its collector; asyncio.run() ending must not leak the ClientSession."""
    collector = DistributedMetricsCollector(collection_interval=FAST, collect_system_metrics=False)
    sessions = []

    async def course_style() -> None:
        runner, agent = await _agent({"queue_depth": 1})
        await collector.register_agent("a", agent.info())
        sessions.append(collector.collector.session)
        await wait_for(lambda: agent.hits >= 1, what="a collection")
        await runner.cleanup()

    asyncio.run(course_style())
    assert sessions[0] is not None and sessions[0].closed


async def test_rules_sharing_a_name_are_separate_rules(serve: Serve, collectors: MakeCollector) -> None:
    """As in the course, add_alert_rule appends: two rules named alike on two metrics both fire."""
    agent = StubAgent({"queue_depth": 50, "memory": 95})
    await serve(agent)
    collector = collectors(collection_interval=FAST, collect_system_metrics=False)
    recorder = AlertRecorder()
    collector.add_alert_handler(recorder)
    collector.add_alert_rule(make_rule(name="high"))
    collector.add_alert_rule(make_rule(name="high", metric_name="memory", threshold=90))
    await collector.register_agent("a", agent.info())
    await wait_for(lambda: len(recorder.alerts) == 2, what="both alerts")
    assert sorted(recorder.ids()) == ["high:a:memory", "high:a:queue_depth"]
    assert len(collector.alert_rules) == 2


async def test_a_rule_firing_on_many_series_is_one_alert(serve: Serve, collectors: MakeCollector) -> None:
    """Three labelled series of one metric over the threshold: one course alert, -10 health once."""
    lines = "# TYPE system_cpu_usage gauge\n" + "".join(f'system_cpu_usage{{core="{core}"}} 50\n' for core in range(3))

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=lines, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
    collector = collectors(collection_interval=FAST, collect_system_metrics=False)
    try:
        collector.add_alert_rule(make_rule(name="busy", metric_name="system_cpu_usage", threshold=40))
        await collector.register_agent("a", {"metrics_endpoint": f"http://127.0.0.1:{port}/metrics"})
        await wait_for(lambda: len(collector.collector.alerts.active) == 3, what="three series firing")
        overview = overview_of(collector)
        assert overview["alerts"]["active_alerts"] == 1 and overview["alerts"]["warning_alerts"] == 1
        report = (await collector.generate_performance_report(1))["performance_report"]
        assert report["agent_performance"]["a"]["health_score"] == 90  # avg CPU 50: no deduction; one alert -10
        assert list(collector.active_alerts) == ["busy:a:system_cpu_usage"]
    finally:
        await runner.cleanup()


async def test_unregister_agent_stops_collection_and_resolves_its_alerts(serve: Serve,
                                                                         collectors: MakeCollector) -> None:
    agent = StubAgent({"queue_depth": 50})
    await serve(agent)
    collector = collectors(collection_interval=FAST, collect_system_metrics=False)
    collector.add_alert_rule(make_rule())
    await collector.register_agent("a", {**agent.info(), "tags": ["x", "y"]})
    assert collector.agent_registry["a"]["agent_info"]["tags"] == ["x", "y"]  # as given, not as strings
    await wait_for(lambda: "DeepQueue:a:queue_depth" in collector.active_alerts, what="the alert")
    assert await collector.unregister_agent("a") is True
    hits = agent.hits
    await asyncio.sleep(4 * FAST)
    assert agent.hits == hits and agent_status(collector, "a") is None
    assert collector.active_alerts["DeepQueue:a:queue_depth"].resolved
    assert await collector.unregister_agent("a") is False


def test_absurd_times_from_an_agent_never_make_the_course_api_raise() -> None:
    """A sample stamped -1e14 s (or NaN, or beyond year 9999) reads as the nearest date the course can show,
    for every caller of metrics_buffer and agent_registry (they raised ValueError for everyone)."""
    from monitoring.parsing import Sample

    course = DistributedMetricsCollector(collection_interval=FAST, collect_system_metrics=False)
    collector = course.collector
    collector.register("hostile", "http://127.0.0.1:9/metrics", None, {}, "static")
    now = collector.clock()
    collector.process([Sample("hostile", "queue_depth", 1.0, -1e14), Sample("hostile", "queue_depth", 2.0, 1e14),
                       Sample("hostile", "queue_depth", 3.0, float("nan")), Sample("hostile", "ok", 4.0, now)], now)
    collector.agents["hostile"].last_success = -1e14
    stamps = [metric.timestamp for metric in course.metrics_buffer]
    assert stamps[0].year == 1 and stamps[1].year == 9999 and stamps[-1].year >= 2026
    assert course.agent_registry["hostile"]["last_heartbeat"].year == 1
