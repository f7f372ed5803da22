"""Builders of the Istio traffic objects of an agent (pure; wire format): its VirtualService and
DestinationRule, or, when Flagger drives its releases, a Flagger Canary instead.

Routes: the agent's `routing_rules`, then the canary header, then a default route, so every
agent has one. Subsets are the agent's release tracks (config.releases).
"""

from __future__ import annotations

from typing import Any

from ..config.agent import AgentConfig
from ..config.labels import object_meta
from ..config.lookups import service_host
from ..config.mesh import MtlsMode
from ..config.releases import CANARY_TRACK, STABLE_TRACK, controller, serving_track, subsets, tracks
from ..config.region import DeploymentMode, RoutingMode
from ..config.system import SystemConfig
from ..config.traffic import ReleaseController, RoutingRule, UriMatch
from .meta import api_version


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
            "metadata": object_meta(system, agent.agent_id, system.agent_namespace(agent)),
            "spec": {"hosts": [host], "http": http}}


def _default_destinations(system: SystemConfig, agent: AgentConfig) -> list[dict[str, Any]]:
    host = service_host(system, agent)
    if agent.canary is not None:
        # Argo Rollouts rewrites these weights; pulumi sets them from the config.
        weight = agent.canary.weight if controller(agent) is ReleaseController.PULUMI else 0
        return [{"destination": {"host": host, "subset": STABLE_TRACK}, "weight": 100 - weight},
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


def locality_lb_setting(system: SystemConfig) -> dict[str, Any] | None:
    """How this region's calls spread over regions (config/region.py): nearest first (geographic), split by
    weight (weighted), or failing over in order (active-passive); None without a region."""
    region = system.region
    if region is None:
        return None
    setting: dict[str, Any] = {"enabled": True}
    if region.routing is RoutingMode.WEIGHTED:
        setting["distribute"] = [{"from": f"{region.name}/*",
                                  "to": {f"{name}/*": weight for name, weight in region.weights.items() if weight}}]
    if region.mode is DeploymentMode.ACTIVE_PASSIVE and region.failover_to is not None:
        setting["failover"] = [{"from": region.name, "to": region.failover_to}]
    return setting


def destination_rule(system: SystemConfig, agent: AgentConfig) -> dict[str, Any]:
    """Load balancing, connection pool, circuit breaking, mTLS and one subset per release track.

    Subsets select the pods' `version` label, which is the release track (stable, canary, blue,
    green; see config.labels.pod_labels), so a subset keeps its endpoints through a rollout.
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
    locality = locality_lb_setting(system)
    if locality is not None:
        load_balancer["localityLbSetting"] = locality
    policy: dict[str, Any] = {
        "loadBalancer": load_balancer,
        "connectionPool": {"tcp": {"maxConnections": pool.max_connections, "connectTimeout": pool.connect_timeout},
                           "http": http},
    }
    if outlier is not None:
        policy["outlierDetection"] = {"consecutive5xxErrors": outlier.consecutive_5xx_errors,
                                      "interval": outlier.interval, "baseEjectionTime": outlier.base_ejection_time,
                                      "maxEjectionPercent": outlier.max_ejection_percent,
                                      "minHealthPercent": outlier.min_health_percent}
    if system.mesh.mtls_mode is not MtlsMode.DISABLE:
        policy["tls"] = {"mode": "ISTIO_MUTUAL"}
    return {"apiVersion": api_version(system, "networking"), "kind": "DestinationRule",
            "metadata": object_meta(system, agent.agent_id, system.agent_namespace(agent)),
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
            "metadata": object_meta(system, agent.agent_id, system.agent_namespace(agent)), "spec": spec}
