"""ExternalSecrets (external-secrets.io/v1): the Secret a workload reads, filled by the External Secrets
Operator from the store the config names, so a rendered manifest never holds a credential."""

from __future__ import annotations

from typing import Any, Mapping

from ..config.labels import object_meta
from ..config.system import SystemConfig

API_VERSION = "external-secrets.io/v1"


def external_secret(system: SystemConfig, namespace: str, name: str, remote_keys: Mapping[str, str],
                    template: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An ExternalSecret making the Secret `namespace/name`: each key of `remote_keys` filled from that key in the
    store. With `template` (Secret key -> Go template over those keys, e.g. `Bearer {{ .token }}`) the Secret
    holds exactly the template's keys."""
    store = system.monitoring.credentials.secret_store
    if store is None:
        raise ValueError("external_secret needs monitoring.credentials.secret_store")
    target: dict[str, Any] = {"name": name, "creationPolicy": "Owner", "deletionPolicy": "Retain"}
    if template is not None:
        target["template"] = {"engineVersion": "v2", "type": "Opaque", "mergePolicy": "Replace",
                              "data": dict(template)}
    return {"apiVersion": API_VERSION, "kind": "ExternalSecret", "metadata": object_meta(system, name, namespace),
            "spec": {"secretStoreRef": {"name": store.name, "kind": store.kind},
                     "refreshInterval": system.monitoring.credentials.refresh_interval,
                     "target": target,
                     "data": [{"secretKey": key, "remoteRef": {"key": remote_key}}
                              for key, remote_key in remote_keys.items()]}}
