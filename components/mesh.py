"""Builders for the Istio objects of the system (pure; wire format).

Traffic: a VirtualService and a DestinationRule per agent. Zero trust per namespace:
PeerAuthentication (mTLS), AuthorizationPolicy (default deny plus one ALLOW per agent for
its declared callers), a Sidecar limiting egress, ServiceEntries for external APIs.

Metrics under STRICT mTLS: Prometheus runs outside the mesh and cannot present a mesh
certificate, so each agent's metrics port gets a port-level PERMISSIVE exception
(PeerAuthentication) and an ALLOW rule for that port without a source identity (a
plaintext caller has none). Who may reach the port at all is then limited by the
NetworkPolicy to the monitoring namespace.
"""

from __future__ import annotations

from typing import Any

from .config import AgentConfig, SystemConfig
from .labels import service_selector, system_labels
from .mesh_config import MtlsMode
from .monitoring_objects import SERVICE_ID, SERVICE_PORT
from .releases import CANARY_TRACK, controller, serving_track, subsets, tracks
from .traffic_config import ReleaseController, RoutingRule, UriMatch


def api_version(system: SystemConfig, group: str) -> str:
    """`networking.istio.io/v1` (or v1beta1, per `mesh.api_version`)."""
    return f"{group}.istio.io/{system.mesh.api_version.value}"


def service_host(system: SystemConfig, agent: AgentConfig) -> str:
    return f"{agent.agent_id}.{system.agent_namespace(agent)}.svc.cluster.local"


def principal(system: SystemConfig, agent: AgentConfig) -> str:
    """The SPIFFE identity of an agent's pods (its ServiceAccount)."""
    return f"{system.mesh.trust_domain}/ns/{system.agent_namespace(agent)}/sa/{agent.agent_id}"


def monitoring_namespace(system: SystemConfig) -> str:
    """Where the collector and Prometheus run (mesh.monitoring_namespace, else monitoring.namespace)."""
    return system.mesh.monitoring_namespace or system.monitoring.namespace


def _metadata(system: SystemConfig, name: str, namespace: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": system_labels(system)}


# --- traffic ---------------------------------------------------------------------------------

def virtual_service(system: SystemConfig, agent: AgentConfig) -> dict[str, Any]:
    """Routes for calls into the agent: the user's rules, the canary header, then the default route."""
    host = service_host(system, agent)
    http = [_http_route(system, agent, rule) for rule in agent.routing_rules]
    canary = agent.canary
    if canary is not None and canary.header is not None:
        http.append({"name": "canary-header",
                     "match": [{"headers": {canary.header.name: {"exact": canary.header.value}}}],
                     "route": [{"destination": {"host": host, "subset": CANARY_TRACK}}],
                     "timeout": agent.traffic.timeout, "retries": _retries(agent, None)})
    http.append({"name": "primary" if controller(agent) is ReleaseController.ARGO_ROLLOUTS else "default",
                 "route": _default_destinations(system, agent),
                 "timeout": agent.traffic.timeout, "retries": _retries(agent, None)})
    return {"apiVersion": api_version(system, "networking"), "kind": "VirtualService",
            "metadata": _metadata(system, agent.agent_id, system.agent_namespace(agent)),
            "spec": {"hosts": [host], "http": http}}


def _default_destinations(system: SystemConfig, agent: AgentConfig) -> list[dict[str, Any]]:
    host = service_host(system, agent)
    if agent.canary is not None:
        # Argo Rollouts rewrites these weights; pulumi sets them from the config.
        weight = agent.canary.weight if controller(agent) is ReleaseController.PULUMI else 0
        return [{"destination": {"host": host, "subset": "stable"}, "weight": 100 - weight},
                {"destination": {"host": host, "subset": CANARY_TRACK}, "weight": weight}]
    subset = serving_track(agent) or tracks(agent)[0].name
    return [{"destination": {"host": host, "subset": subset}}]


def _http_route(system: SystemConfig, agent: AgentConfig, rule: RoutingRule) -> dict[str, Any]:
    host = service_host(system, agent)
    route: dict[str, Any] = {"name": rule.name}
    match = _match(rule)
    if match:
        route["match"] = [match]
    if rule.rewrite_uri is not None:
        route["rewrite"] = {"uri": rule.rewrite_uri}
    if rule.route:
        route["route"] = [{"destination": {"host": host, "subset": part.subset}, "weight": part.weight}
                          for part in rule.route]
    else:
        route["route"] = _default_destinations(system, agent)
    if rule.fault is not None:
        # Istio ignores timeout and retries on a route with a fault (config validation refuses both).
        route["fault"] = _fault(rule)
        return route
    route["timeout"] = rule.timeout or agent.traffic.timeout
    route["retries"] = _retries(agent, rule)
    return route


def _match(rule: RoutingRule) -> dict[str, Any]:
    match: dict[str, Any] = {}
    if rule.match.uri is not None:
        match["uri"] = _string_match(rule.match.uri)
    if rule.match.headers:
        match["headers"] = {name: _string_match(value) for name, value in rule.match.headers.items()}
    return match


def _string_match(value: UriMatch) -> dict[str, str]:
    for kind in ("prefix", "exact", "regex"):
        if getattr(value, kind) is not None:
            return {kind: getattr(value, kind)}
    raise ValueError("empty match")  # unreachable: UriMatch validates exactly one


def _retries(agent: AgentConfig, rule: RoutingRule | None) -> dict[str, Any]:
    if rule is not None and not rule.idempotent:
        return {"attempts": 0}  # explicit: Istio's default would retry twice
    retries = (rule.retries if rule is not None and rule.retries is not None else agent.traffic.retries)
    if retries.attempts == 0:
        return {"attempts": 0}
    return {"attempts": retries.attempts, "perTryTimeout": retries.per_try_timeout, "retryOn": retries.retry_on}


def _fault(rule: RoutingRule) -> dict[str, Any]:
    assert rule.fault is not None
    fault: dict[str, Any] = {}
    if rule.fault.delay is not None:
        fault["delay"] = {"fixedDelay": rule.fault.delay.fixed_delay,
                          "percentage": {"value": rule.fault.delay.percentage}}
    if rule.fault.abort is not None:
        fault["abort"] = {"httpStatus": rule.fault.abort.http_status,
                          "percentage": {"value": rule.fault.abort.percentage}}
    return fault


def destination_rule(system: SystemConfig, agent: AgentConfig) -> dict[str, Any]:
    """Load balancing, connection pool, circuit breaking, mTLS and one subset per release track.

    Subsets select the pods' `version` label, which is the release track (stable, canary, blue,
    green; see labels.pod_labels), so a subset keeps its endpoints through a rollout.
    """
    pool, outlier = agent.traffic.connection_pool, agent.traffic.outlier_detection
    balancer = agent.load_balancer
    load_balancer: dict[str, Any] = (
        {"consistentHash": {"httpHeaderName": balancer.consistent_hash_header}}
        if balancer.consistent_hash_header else {"simple": balancer.algorithm.value})
    http: dict[str, Any] = {"http1MaxPendingRequests": pool.http1_max_pending_requests,
                            "http2MaxRequests": pool.http2_max_requests, "maxRetries": pool.max_retries}
    if pool.max_requests_per_connection:
        http["maxRequestsPerConnection"] = pool.max_requests_per_connection
    policy: dict[str, Any] = {
        "loadBalancer": load_balancer,
        "connectionPool": {"tcp": {"maxConnections": pool.max_connections, "connectTimeout": pool.connect_timeout},
                           "http": http},
        "outlierDetection": {"consecutive5xxErrors": outlier.consecutive_5xx_errors, "interval": outlier.interval,
                             "baseEjectionTime": outlier.base_ejection_time,
                             "maxEjectionPercent": outlier.max_ejection_percent,
                             "minHealthPercent": outlier.min_health_percent},
    }
    if system.mesh.mtls_mode is not MtlsMode.DISABLE:
        policy["tls"] = {"mode": "ISTIO_MUTUAL"}
    return {"apiVersion": api_version(system, "networking"), "kind": "DestinationRule",
            "metadata": _metadata(system, agent.agent_id, system.agent_namespace(agent)),
            "spec": {"host": service_host(system, agent), "trafficPolicy": policy,
                     "subsets": [{"name": name, "labels": {"version": name}} for name in subsets(agent)]}}


def flagger_canary(system: SystemConfig, agent: AgentConfig, autoscaled: bool) -> dict[str, Any]:
    """Hand-off to Flagger: a Canary that owns the agent's Services, routes, weights and replicas."""
    assert agent.canary is not None
    http_port = agent.ports[0]
    spec: dict[str, Any] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": agent.agent_id},
        "service": {"port": http_port.port, "targetPort": http_port.container_port,
                    "timeout": agent.traffic.timeout,
                    "retries": {"attempts": agent.traffic.retries.attempts,
                                "perTryTimeout": agent.traffic.retries.per_try_timeout,
                                "retryOn": agent.traffic.retries.retry_on}},
        "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": max(1, agent.canary.weight),
                     "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"},
                                 {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "1m"}]},
    }
    if autoscaled:
        spec["autoscalerRef"] = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                                 "name": agent.agent_id}
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": _metadata(system, agent.agent_id, system.agent_namespace(agent)), "spec": spec}


# --- zero trust ------------------------------------------------------------------------------

def _metrics_port(system: SystemConfig, agent: AgentConfig) -> Any:
    return next((port for port in agent.ports if port.name == system.mesh.metrics_port_name), None)


def peer_authentications(system: SystemConfig, namespace: str, agents: list[AgentConfig]) -> list[dict[str, Any]]:
    """Namespace-wide mTLS mode, plus a PERMISSIVE metrics-port exception per agent (see module doc)."""
    mode = system.mesh.mtls_mode.value
    objects = [{"apiVersion": api_version(system, "security"), "kind": "PeerAuthentication",
                "metadata": _metadata(system, "default", namespace), "spec": {"mtls": {"mode": mode}}}]
    if not system.mesh.metrics_plaintext or system.mesh.mtls_mode is not MtlsMode.STRICT:
        return objects
    for agent in agents:
        port = _metrics_port(system, agent)
        if port is None:
            continue
        objects.append({
            "apiVersion": api_version(system, "security"), "kind": "PeerAuthentication",
            "metadata": _metadata(system, f"{agent.agent_id}-metrics", namespace),
            "spec": {"selector": {"matchLabels": service_selector(agent)}, "mtls": {"mode": mode},
                     # Keyed by the container port, as the sidecar sees it.
                     "portLevelMtls": {str(port.container_port): {"mode": "PERMISSIVE"}}}})
    return objects


def callers(system: SystemConfig, agent: AgentConfig) -> list[AgentConfig]:
    """Agents that declare they call `agent` (its `talks_to` callers)."""
    return [caller for caller in system.agents if agent.agent_id in caller.talks_to]


def authorization_policies(system: SystemConfig, namespace: str, agents: list[AgentConfig]) -> list[dict[str, Any]]:
    """Default deny for the namespace, and per agent an ALLOW for its callers and the metrics port."""
    mesh = system.mesh
    objects: list[dict[str, Any]] = [{"apiVersion": api_version(system, "security"), "kind": "AuthorizationPolicy",
                                      "metadata": _metadata(system, "default-deny", namespace), "spec": {}}]
    for agent in agents:
        principals = [principal(system, caller) for caller in callers(system, agent)]
        if agent.traffic.entrypoint:
            principals.append(f"{mesh.trust_domain}/ns/{mesh.ingress_namespace}/sa/{mesh.ingress_service_account}")
        rules: list[dict[str, Any]] = []
        serving_ports = [str(port.container_port) for port in agent.ports if port.name != mesh.metrics_port_name]
        if principals:
            rules.append({"from": [{"source": {"principals": sorted(set(principals))}}],
                          "to": [{"operation": {"ports": serving_ports}}]})
        port = _metrics_port(system, agent)
        if port is not None:
            metrics_rule: dict[str, Any] = {"to": [{"operation": {"ports": [str(port.container_port)]}}]}
            if not mesh.metrics_plaintext:
                metrics_rule["from"] = [{"source": {"namespaces": [monitoring_namespace(system)]}}]
            rules.append(metrics_rule)
        if not rules:
            continue  # nobody may call it: the default deny covers it
        objects.append({"apiVersion": api_version(system, "security"), "kind": "AuthorizationPolicy",
                        "metadata": _metadata(system, f"{agent.agent_id}-allow", namespace),
                        "spec": {"selector": {"matchLabels": service_selector(agent)}, "action": "ALLOW",
                                 "rules": rules}})
    if _hosts_monitoring_pod(system, namespace):
        objects.append({"apiVersion": api_version(system, "security"), "kind": "AuthorizationPolicy",
                        "metadata": _metadata(system, f"{SERVICE_ID}-allow", namespace),
                        "spec": {"selector": {"matchLabels": {"app": SERVICE_ID}}, "action": "ALLOW",
                                 "rules": [{"from": [{"source": {"principals": sorted(
                                     principal(system, agent) for agent in system.agents)}}],
                                            "to": [{"operation": {"ports": [str(SERVICE_PORT)]}}]}]}})
    return objects


def sidecar(system: SystemConfig, namespace: str, agents: list[AgentConfig]) -> dict[str, Any]:
    """Egress of the namespace's sidecars: own namespace, called agents, control plane, monitoring, external APIs."""
    mesh = system.mesh
    called = {system.agent_namespace(target) for agent in agents for target in system.agents
              if target.agent_id in agent.talks_to}
    namespaces = sorted({namespace, mesh.control_plane_namespace, monitoring_namespace(system), *called})
    hosts = [f"{'.' if name == namespace else name}/*" for name in namespaces]
    hosts += [f"./{host}" for api in mesh.external_apis for host in api.hosts]
    return {"apiVersion": api_version(system, "networking"), "kind": "Sidecar",
            "metadata": _metadata(system, "default", namespace),
            "spec": {"egress": [{"hosts": hosts}],
                     "outboundTrafficPolicy": {"mode": mesh.outbound_policy.value}}}


def service_entries(system: SystemConfig, namespace: str) -> list[dict[str, Any]]:
    """External APIs the namespace's agents may call, visible to that namespace only."""
    return [{"apiVersion": api_version(system, "networking"), "kind": "ServiceEntry",
             "metadata": _metadata(system, api.name, namespace),
             "spec": {"hosts": list(api.hosts), "location": "MESH_EXTERNAL", "resolution": "DNS",
                      "exportTo": ["."],
                      "ports": [{"number": api.port, "name": f"{api.protocol.value.lower()}-{api.port}",
                                 "protocol": api.protocol.value}]}}
            for api in system.mesh.external_apis]


# --- network policies ------------------------------------------------------------------------

def _namespace_selector(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def network_policies(system: SystemConfig, namespace: str, agents: list[AgentConfig]) -> list[dict[str, Any]]:
    """Default-deny ingress plus, per agent, its declared callers, monitoring (metrics port) and the mesh."""
    mesh = system.mesh
    objects: list[dict[str, Any]] = [{
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": _metadata(system, "default-deny-ingress", namespace),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}]
    for agent in agents:
        serving = [{"port": port.name, "protocol": port.protocol.value}
                   for port in agent.ports if port.name != mesh.metrics_port_name]
        ingress: list[dict[str, Any]] = []
        peers = [{**_namespace_selector(system.agent_namespace(caller)),
                  "podSelector": {"matchLabels": service_selector(caller)}} for caller in callers(system, agent)]
        if agent.traffic.entrypoint:
            peers.append(_namespace_selector(mesh.ingress_namespace))
        if peers:
            ingress.append({"from": peers, "ports": serving})
        metrics = _metrics_port(system, agent)
        if metrics is not None:
            ingress.append({"from": [_namespace_selector(monitoring_namespace(system))],
                            "ports": [{"port": metrics.name, "protocol": metrics.protocol.value}]})
        if mesh.enabled:
            ingress.append({"from": [_namespace_selector(mesh.control_plane_namespace)]})
        objects.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                        "metadata": _metadata(system, f"{agent.agent_id}-ingress", namespace),
                        "spec": {"podSelector": {"matchLabels": service_selector(agent)},
                                 "policyTypes": ["Ingress"], "ingress": ingress}})
    if _hosts_monitoring_pod(system, namespace):
        # The agents send traces (OTLP) to the monitoring pod living under this default deny.
        peers = [_namespace_selector(name) for name in sorted({system.agent_namespace(a) for a in system.agents})]
        objects.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                        "metadata": _metadata(system, f"{SERVICE_ID}-ingress", namespace),
                        "spec": {"podSelector": {"matchLabels": {"app": SERVICE_ID}}, "policyTypes": ["Ingress"],
                                 "ingress": [{"from": peers, "ports": [{"port": SERVICE_PORT, "protocol": "TCP"}]}]}})
    return objects


def _hosts_monitoring_pod(system: SystemConfig, namespace: str) -> bool:
    return system.monitoring.enabled and system.monitoring.namespace == namespace
