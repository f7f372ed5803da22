"""The monitoring service of a multi-agent system: metrics collector, alerting, tracing and HTTP API.

Runs in the monitoring pod (`python -m monitoring`); never imports pulumi. The course's API
(`distributed_monitoring.py`) is importable from here, as a thin layer over the same internals.
It is loaded on first use, so the Pulumi program, which imports only `monitoring.settings`,
needs none of the service's own packages (aiohttp, psutil, ...).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"AgentMetric": ".course", "AlertSeverity": ".course", "DistributedMetricsCollector": ".course",
            "MetricType": ".course", "SystemAlert": ".course", "DistributedTracing": ".tracing.course"}
__all__ = ["AgentMetric", "AlertSeverity", "DistributedMetricsCollector", "DistributedTracing", "MetricType",
           "SystemAlert"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'monitoring' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
