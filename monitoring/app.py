"""The monitoring service as an aiohttp application: `init_app(settings)` and its background loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from prometheus_client import Histogram

from .api import add_routes, errors_as_json, require_json, require_token
from .collector import HEARTBEAT_PERIOD, Collector
from .exposition import STORE_FAMILIES, FamilyTable, build_registry
from .log_escaping import install as escape_logs
from .notifiers import AlertmanagerNotifier, Dispatcher, Handler, WebhookNotifier
from .periodic import every
from .persistence import keep, load, store_from_settings
from .settings import MonitoringSettings
from .state import (ANALYSIS_SECONDS, ANALYST, COLLECTOR, DISPATCHER, GENAI_METRICS, READY, REGISTRY, RELAY, SAMPLER,
                    SETTINGS, STORE, THREAD_SLOT, TRACER)
from .system_metrics import SystemSampler
from .targets import guarded_session
from .tracing.analyst import Analyst
from .tracing.budget import SpanLimits
from .tracing.genai_metrics import GenAIMetrics
from .tracing.model import Tracer
from .tracing.relay import Relay, RelayLimits

TRACE_EVICTION_PERIOD = 5.0
log = logging.getLogger(__name__)


def init_app(settings: MonitoringSettings) -> web.Application:
    """Build the application; nothing runs until it starts (background loops live in cleanup_ctx)."""
    escape_logs()  # every log record from here on escapes what requests sent (no forged lines)
    # The body cap is OTLP's (larger); the JSON API checks its own smaller limit.
    # Idle keep-alive connections close after idle_timeout (serving.py also cuts connections whose first
    # request never completes); after an answer to an unread body, the rest is drained for at most
    # request_timeout instead of aiohttp's 10 s.
    app = web.Application(client_max_size=max(settings.max_request_bytes, settings.tracing.max_otlp_bytes,
                                              settings.remote_write.max_request_bytes),
                          middlewares=[errors_as_json, require_token, require_json],
                          handler_args={"keepalive_timeout": settings.idle_timeout,
                                        "lingering_time": settings.request_timeout})
    dispatcher = Dispatcher([])
    collector = Collector(settings, on_alert_change=dispatcher.submit)
    for agent in settings.agents:
        collector.register(agent.agent_id, str(agent.metrics_endpoint),
                           str(agent.health_endpoint) if agent.health_endpoint else None, agent.info, "static")
    app[SETTINGS] = settings
    app[DISPATCHER] = dispatcher
    app[COLLECTOR] = collector
    app[THREAD_SLOT] = collector.thread_slot  # scrape parsing and OTLP decoding share one worker thread
    app[SAMPLER] = collector.sampler = SystemSampler()
    tracing = settings.tracing
    app[TRACER] = Tracer(tracing.max_traces, tracing.max_spans_per_trace, tracing.retention_seconds,
                         max_bytes=tracing.max_bytes,
                         limits=SpanLimits(tracing.max_attributes, tracing.max_attribute_length,
                                           tracing.max_events, tracing.max_links))
    app[GENAI_METRICS] = GenAIMetrics(tracing.max_metric_streams)
    relay = _relay(settings)
    if relay is not None:
        app[RELAY] = relay
    store = store_from_settings(settings)
    if store is not None:
        app[STORE] = store
    app[REGISTRY] = build_registry(collector, dispatcher, app[TRACER], app[GENAI_METRICS], relay)
    if store is not None:
        app[REGISTRY].register(FamilyTable(STORE_FAMILIES, store.stats))
    app[ANALYSIS_SECONDS] = Histogram("monitoring_trace_analysis_seconds", "Time to analyse one trace.",
                                      registry=app[REGISTRY], buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5))
    app[ANALYST] = Analyst(app[TRACER], observe=app[ANALYSIS_SECONDS].observe)
    app[READY] = {"ready": False}
    add_routes(app)
    app.cleanup_ctx.append(_background)
    return app


def _relay(settings: MonitoringSettings) -> Relay | None:
    relay = settings.tracing.relay
    if relay is None:
        return None
    headers = dict(relay.headers)
    if relay.authorization is not None:
        headers["Authorization"] = relay.authorization.get_secret_value()
    return Relay(str(relay.endpoint), headers, RelayLimits(
        relay.max_queue_requests, relay.max_queue_bytes, relay.max_attempts, relay.max_elapsed,
        timeout=relay.timeout, workers=relay.workers))


def _handlers(settings: MonitoringSettings, session: aiohttp.ClientSession) -> list[Handler]:
    handlers: list[Handler] = []
    if settings.alertmanager.url is not None:
        handlers.append(AlertmanagerNotifier(session, str(settings.alertmanager.url),
                                             settings.alertmanager.resend_interval, settings.scrape_timeout))
    if settings.webhook.url is not None:
        token = settings.webhook.token.get_secret_value() if settings.webhook.token else None
        handlers.append(WebhookNotifier(session, str(settings.webhook.url), token, settings.scrape_timeout))
    return handlers


async def _background(app: web.Application) -> AsyncIterator[None]:
    """Client sessions; scrape schedules, heartbeats, psutil, alert delivery; all cancelled on exit."""
    settings, collector, dispatcher = app[SETTINGS], app[COLLECTOR], app[DISPATCHER]
    connector = aiohttp.TCPConnector(limit=settings.max_concurrent_scrapes, ttl_dns_cache=300)
    # Trusted scrapes (static, discovered) and alert delivery share `session`; agents registered
    # through the API get their own, whose resolver applies the scrape-target policy.
    async with aiohttp.ClientSession(connector=connector) as session, \
            guarded_session(collector.targets, settings.max_concurrent_scrapes) as api_scrapes:
        collector.session, collector.guarded_session = session, api_scrapes
        dispatcher.handlers = _handlers(settings, session)
        app[SAMPLER].sample()
        # What was set through the API (and the active alerts) comes back before anything runs.
        store = app.get(STORE)
        loaded = await load(collector, store) if store is not None else True
        tasks = [asyncio.create_task(dispatcher.run(), name="alert delivery"),
                 asyncio.create_task(every(HEARTBEAT_PERIOD, collector.check_heartbeats), name="heartbeats"),
                 asyncio.create_task(every(settings.system_metrics_interval, app[SAMPLER].sample), name="psutil"),
                 asyncio.create_task(every(TRACE_EVICTION_PERIOD, app[TRACER].evict), name="trace eviction")]
        if settings.alertmanager.url is not None:
            async def resend() -> None:  # Alertmanager expires alerts that aren't re-sent
                if collector.alerts.active:
                    await dispatcher.send_now(list(collector.alerts.active.values()))
            tasks.append(asyncio.create_task(every(settings.alertmanager.resend_interval, resend), name="resend"))
        relay_session = None
        if RELAY in app:  # its own session: upstream trouble never slows the scrapes down
            relay_session = aiohttp.ClientSession()
            tasks.append(asyncio.create_task(app[RELAY].run(relay_session), name="trace relay"))
        if settings.discovery.enabled:
            from .discovery import watch_pods

            tasks.append(asyncio.create_task(watch_pods(settings.discovery, collector), name="discovery"))
        if store is not None:  # saves changes; a final save when cancelled at shutdown
            tasks.append(asyncio.create_task(keep(collector, store, settings.persistence.interval, loaded=loaded),
                                             name="persistence"))
        collector.start()
        app[READY]["ready"] = True
        try:
            yield
        finally:
            app[READY]["ready"] = False
            app[ANALYST].close()
            await collector.stop()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if relay_session is not None:
                await relay_session.close()
