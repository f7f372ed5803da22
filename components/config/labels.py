"""Labels, selectors and object metadata shared by the builders of every API.

Objects carry the recommended `app.kubernetes.io/*` labels plus the seed's
`app` / `agent-id` / `component` labels. Selectors are deliberately few and stable
(`app`, `track`): a Deployment's selector is immutable, so nothing that changes between
releases (such as the image tag) may be in it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .agent import AgentConfig
from .releases import STABLE_TRACK
from .system import SystemConfig

MANAGED_BY = "pulumi"
CONTAINER_NAME = "agent"  # the agent's container in its pods (probes, kubectl, alerts on its limits)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def system_labels(system: SystemConfig) -> dict[str, str]:
    """Labels on every object of the system: the user's, then the program's (which win)."""
    return {**system.labels,
            "app.kubernetes.io/part-of": system.name,
            "app.kubernetes.io/managed-by": MANAGED_BY,
            "environment": system.environment}


def object_meta(system: SystemConfig, name: str, namespace: str | None = None,
                labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`metadata` of an object: its name, namespace (none for cluster-scoped) and labels.

    `labels` defaults to the system labels; callers pass richer ones (an agent's) instead.
    """
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    metadata["labels"] = dict(system_labels(system) if labels is None else labels)
    return metadata


def selector_labels(agent: AgentConfig, track: str = STABLE_TRACK) -> dict[str, str]:
    """Pods of one track (stable, canary, ...) of an agent; immutable once deployed."""
    return {"app": agent.agent_id, "track": track}


def service_selector(agent: AgentConfig) -> dict[str, str]:
    """Every ready pod of the agent, whatever its track."""
    return app_selector(agent.agent_id)


def app_selector(app: str) -> dict[str, str]:
    """Every pod of one workload by its `app` label (an agent id, or the monitoring service's)."""
    return {"app": app}


def agent_labels(system: SystemConfig, agent: AgentConfig) -> dict[str, str]:
    """Labels on an agent's objects (ServiceAccount, Deployment, Service, HPA, PDB)."""
    labels = {**system_labels(system), **agent.labels,
              "app.kubernetes.io/name": agent.agent_id,
              "app.kubernetes.io/instance": f"{system.name}-{agent.agent_id}"[:63].rstrip("-_."),
              "app.kubernetes.io/component": agent.role,
              "app": agent.agent_id,
              "agent-id": agent.agent_id,
              "component": agent.role}
    version = image_version(agent)
    if version:
        labels["app.kubernetes.io/version"] = version
    return labels


def pod_labels(system: SystemConfig, agent: AgentConfig, track: str = STABLE_TRACK) -> dict[str, str]:
    """Labels on an agent's pods: the object labels, the selector, and `version` for Istio.

    `version` is the release track (stable, canary, blue, green), which Istio subsets and
    telemetry use; the image tag is in `app.kubernetes.io/version`. A tag in `version` would
    leave a subset without endpoints halfway through every rollout.
    """
    return {**agent_labels(system, agent), **selector_labels(agent, track), "version": track}


def image_version(agent: AgentConfig) -> str | None:
    """The image tag when it can be a label value (digests and empty tags can't)."""
    if agent.digest or not agent.tag or len(agent.tag) > 63 or not _LABEL_VALUE.match(agent.tag):
        return None
    return agent.tag
