"""Typed keys of the application state, in one place (aiohttp's AppKey)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram

from .collector import Collector
from .notifiers import Dispatcher
from .persistence import StateStore
from .settings import MonitoringSettings
from .system_metrics import SystemSampler
from .tracing.analyst import Analyst
from .tracing.genai_metrics import GenAIMetrics
from .tracing.model import Tracer
from .tracing.relay import Relay

SETTINGS = web.AppKey("settings", MonitoringSettings)
COLLECTOR = web.AppKey("collector", Collector)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
SAMPLER = web.AppKey("sampler", SystemSampler)
REGISTRY = web.AppKey("registry", CollectorRegistry)
READY = web.AppKey("ready", dict)  # {"ready": bool}: set once the background loops run
TRACER = web.AppKey("tracer", Tracer)
ANALYSIS_SECONDS = web.AppKey("analysis_seconds", Histogram)
ANALYST = web.AppKey("analyst", Analyst)
GENAI_METRICS = web.AppKey("genai_metrics", GenAIMetrics)
RELAY = web.AppKey("relay", Relay)  # only when tracing.relay is set
STORE = web.AppKey("store", StateStore)  # only when persistence is set
# The one slot for Python work in a worker thread (large scrape bodies parsed, large OTLP bodies decoded): one
# thread at a time, or the event loop starves of the GIL. The collector's thread_slot.
THREAD_SLOT = web.AppKey("thread_slot", asyncio.Semaphore)
# Set on requests authenticated with an ingestion token: the namespace it speaks for.
INGEST_NAMESPACE = web.RequestKey("ingest_namespace", str)
