"""The monitoring pod's NetworkPolicy (pure; wire format): what may reach it, and what it may reach.

Ingress on its HTTP port from the agent namespaces (they send telemetry), the scraper's
namespace (Prometheus reads /metrics) and the namespaces named as API clients (e.g. an
ingress controller); operators use `kubectl port-forward`, which NetworkPolicies don't see.
Egress only to DNS, the agents' metrics port in their namespaces, Alertmanager, the trace
relay, the Kubernetes API (discovery and the state ConfigMap) and, with the mesh, istiod (for
its sidecar). Cluster endpoints are matched by the port in their URL: a Service whose port
differs from its pods' needs the pods' port in the URL. The policy selects the
monitoring pod alone: other pods of a shared namespace (Prometheus, Grafana) keep theirs.
Which paths each caller may use is the credentials' job, and the mesh's where it is on
(istio/monitoring.py).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from ..config.labels import app_selector, object_meta
from ..config.lookups import agent_namespaces, scraper_namespace
from ..config.monitoring import SERVICE_ID, SERVICE_PORT
from ..config.system import SystemConfig
from .network_policies import namespace_peer

DNS = ({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}},)
_SERVICE_HOST = re.compile(r"^[a-z0-9-]+\.(?P<namespace>[a-z0-9-]+)\.svc(\.[a-z0-9.-]+)?\.?$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
ISTIOD_PORT = 15012  # istiod's xDS and certificate port


def _tcp(*ports: int | str) -> list[dict[str, Any]]:
    return [{"port": port, "protocol": "TCP"} for port in ports]


def endpoint_rule(url: str) -> dict[str, Any]:
    """An egress rule reaching `url`: its namespace for a cluster Service name, the address for an IP,
    any address on its port otherwise (an external endpoint: DNS names can't be pinned to addresses)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 443)
    match = _SERVICE_HOST.match(host)
    if match:
        return {"to": [namespace_peer(match["namespace"])], "ports": _tcp(port)}
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}], "ports": _tcp(port)}
    return {"to": [{"ipBlock": {"cidr": f"{address}/{address.max_prefixlen}"}}], "ports": _tcp(port)}


def monitoring_network_policy(system: SystemConfig) -> dict[str, Any]:
    """Ingress and egress of the monitoring pod (see the module doc)."""
    pod = system.monitoring.service
    callers = sorted({*agent_namespaces(system), scraper_namespace(system), *pod.api_client_namespaces})
    egress: list[dict[str, Any]] = [
        {"to": list(DNS), "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
        {"to": [namespace_peer(name) for name in agent_namespaces(system)],
         "ports": _tcp(system.monitoring.scrape.port)},
        {"to": [{"ipBlock": {"cidr": cidr}} for cidr in pod.kubernetes_api_cidrs],
         "ports": _tcp(*pod.kubernetes_api_ports)},
    ]
    if system.mesh.enabled:  # its sidecar (if injected) fetches config and certificates from istiod
        egress.append({"to": [namespace_peer(system.mesh.control_plane_namespace)], "ports": _tcp(ISTIOD_PORT)})
    if pod.alertmanager_url:
        egress.append(endpoint_rule(pod.alertmanager_url))
    if pod.trace_relay is not None:
        egress.append(endpoint_rule(pod.trace_relay.endpoint))
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": object_meta(system, SERVICE_ID, system.monitoring.namespace),
            "spec": {"podSelector": {"matchLabels": app_selector(SERVICE_ID)}, "policyTypes": ["Ingress", "Egress"],
                     "ingress": [{"from": [namespace_peer(name) for name in callers], "ports": _tcp(SERVICE_PORT)}],
                     "egress": egress}}
