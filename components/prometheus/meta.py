"""What the Prometheus Operator builders share: object metadata."""

from __future__ import annotations

from typing import Any

from ..config.labels import object_meta, system_labels
from ..config.system import SystemConfig


def operator_meta(system: SystemConfig, name: str) -> dict[str, Any]:
    """Metadata of a Prometheus Operator object: in the monitoring namespace, with `monitor_labels`
    (many installations select only labelled objects)."""
    return object_meta(system, name, system.monitoring.namespace,
                       {**system_labels(system), **system.monitoring.monitor_labels})
