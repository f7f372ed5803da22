"""What the Prometheus builders share: object metadata and the matcher of the agents' series."""

from __future__ import annotations

from typing import Any

from ..config.labels import object_meta, system_labels
from ..config.lookups import agent_namespaces
from ..config.system import SystemConfig


def operator_meta(system: SystemConfig, name: str) -> dict[str, Any]:
    """Metadata of a Prometheus Operator object: in the monitoring namespace, with `monitor_labels`
    (many installations select only labelled objects)."""
    return object_meta(system, name, system.monitoring.namespace,
                       {**system_labels(system), **system.monitoring.monitor_labels})


def agent_series_matcher(system: SystemConfig) -> str:
    """`namespace=~"<agent namespaces>"`: the label matcher that selects this system's agent series."""
    return f'namespace=~"{"|".join(agent_namespaces(system))}"'
