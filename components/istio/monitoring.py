"""The monitoring pod's zero trust in the mesh (pure; wire format): who may call which paths.

- the agents (their mesh identities) may POST the ingestion paths: OTLP and the span API;
- anyone on the network path the NetworkPolicy leaves open may GET /metrics and the probes
  (Prometheus runs outside the mesh, so the pod's port accepts plaintext: PERMISSIVE);
- pods of the API-client namespaces (e.g. an ingress controller in the mesh) may call the API;
- nothing else: an ALLOW policy on a workload denies every request it doesn't match.
Credentials still decide what each caller may do within those paths (monitoring/credentials.py).
"""

from __future__ import annotations

from typing import Any

from ..config.labels import app_selector, object_meta
from ..config.monitoring import SERVICE_ID, SERVICE_PORT
from ..config.system import SystemConfig
from .meta import api_version, principal

INGESTION_PATHS = ("/v1/traces", "/v1/metrics", "/v1/logs", "/api/v1/spans", "/api/v1/spans/*")
OPEN_PATHS = ("/metrics", "/health/live", "/health/ready")


def monitoring_peer_authentication(system: SystemConfig) -> dict[str, Any]:
    """The pod's port takes plaintext too: Prometheus has no mesh certificate (agents still use mTLS)."""
    return {"apiVersion": api_version(system, "security"), "kind": "PeerAuthentication",
            "metadata": object_meta(system, SERVICE_ID, system.monitoring.namespace),
            "spec": {"selector": {"matchLabels": app_selector(SERVICE_ID)}, "mtls": {"mode": "STRICT"},
                     "portLevelMtls": {str(SERVICE_PORT): {"mode": "PERMISSIVE"}}}}


def monitoring_authorization_policy(system: SystemConfig) -> dict[str, Any]:
    """ALLOW rules by caller and path for the monitoring pod (see the module doc)."""
    port = [str(SERVICE_PORT)]
    rules: list[dict[str, Any]] = [
        {"from": [{"source": {"principals": sorted(principal(system, agent) for agent in system.agents)}}],
         "to": [{"operation": {"ports": port, "methods": ["POST"], "paths": list(INGESTION_PATHS)}}]},
        {"to": [{"operation": {"ports": port, "methods": ["GET"], "paths": list(OPEN_PATHS)}}]},
    ]
    if system.monitoring.service.source == "remote_write":  # Prometheus, outside the mesh; its token decides
        rules.append({"to": [{"operation": {"ports": port, "methods": ["POST"], "paths": ["/api/v1/write"]}}]})
    clients = system.monitoring.service.api_client_namespaces
    if clients:
        rules.append({"from": [{"source": {"namespaces": sorted(clients)}}], "to": [{"operation": {"ports": port}}]})
    return {"apiVersion": api_version(system, "security"), "kind": "AuthorizationPolicy",
            "metadata": object_meta(system, f"{SERVICE_ID}-allow", system.monitoring.namespace),
            "spec": {"selector": {"matchLabels": app_selector(SERVICE_ID)}, "action": "ALLOW", "rules": rules}}
