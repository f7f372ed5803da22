"""Just enough of the Kubernetes NetworkPolicy and Istio AuthorizationPolicy semantics to ask of rendered
policies "is this flow allowed?" (tests only).

NetworkPolicy: a pod selected by some policy of a direction is isolated in that direction; a flow is then
allowed when some rule of a selecting policy matches its peer (namespace/pod selectors, ipBlock) and port
(number or the destination's named port). Istio ALLOW policies on a workload: a request is allowed when
some rule matches its source (principals, namespaces) and operation (ports, methods, paths with `*`
suffix/prefix globs); a workload with ALLOW policies denies what none matches.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict[str, str] = field(default_factory=dict)
    ip: str = "10.0.0.1"
    ports: dict[str, int] = field(default_factory=dict)  # named container ports


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


def _peer_matches(peer: dict[str, Any], pod: Pod, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        address = ipaddress.ip_address(pod.ip)
        network = ipaddress.ip_network(block["cidr"])
        return (address.version == network.version and address in network
                and not any(address in ipaddress.ip_network(cidr) for cidr in block.get("except", [])))
    namespace_ok = (_selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": pod.namespace})
                    if "namespaceSelector" in peer else pod.namespace == policy_namespace)
    pod_ok = _selects(peer["podSelector"], pod.labels) if "podSelector" in peer else True
    return namespace_ok and pod_ok


def _port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str, destination: Pod) -> bool:
    if not ports:
        return True
    for entry in ports:
        wanted = entry.get("port")
        number = destination.ports.get(wanted) if isinstance(wanted, str) else wanted
        if entry.get("protocol", "TCP") == protocol and (wanted is None or number == port):
            return True
    return False


def network_allows(policies: list[dict[str, Any]], source: Pod, destination: Pod, port: int,
                   protocol: str = "TCP") -> bool:
    """Whether the policies let `source` open `port` on `destination` (both directions checked)."""
    def direction(kind: str, subject: Pod, peer: Pod, rules_key: str, peers_key: str) -> bool:
        selecting = [policy for policy in policies if policy["metadata"]["namespace"] == subject.namespace
                     and kind in policy["spec"].get("policyTypes", ["Ingress"])
                     and _selects(policy["spec"]["podSelector"], subject.labels)]
        if not selecting:
            return True  # not isolated
        return any(_peer_matches_any(rule.get(peers_key), peer, policy["metadata"]["namespace"])
                   and _port_matches(rule.get("ports"), port, protocol, destination)
                   for policy in selecting for rule in policy["spec"].get(rules_key, []))

    return (direction("Egress", source, destination, "egress", "to")
            and direction("Ingress", destination, source, "ingress", "from"))


def _peer_matches_any(peers: list[dict[str, Any]] | None, pod: Pod, policy_namespace: str) -> bool:
    return not peers or any(_peer_matches(peer, pod, policy_namespace) for peer in peers)


def _glob(patterns: list[str] | None, value: str) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def mesh_allows(policies: list[dict[str, Any]], workload: Pod, principal: str | None, source_namespace: str | None,
                method: str, path: str, port: int) -> bool:
    """Whether Istio ALLOW policies on `workload` admit the request (None principal: a plaintext caller)."""
    selecting = [policy for policy in policies if policy["kind"] == "AuthorizationPolicy"
                 and policy["metadata"]["namespace"] == workload.namespace
                 and policy["spec"].get("action", "ALLOW") == "ALLOW"
                 and _selects(policy["spec"].get("selector", {}), workload.labels)]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("rules", []):
            sources = [entry["source"] for entry in rule.get("from", [])]
            source_ok = not sources or any(
                (principal is not None and _glob(source.get("principals"), principal) if "principals" in source
                 else True)
                and (source_namespace is not None and source_namespace in source["namespaces"]
                     if "namespaces" in source else True)
                for source in sources)
            operations = [entry["operation"] for entry in rule.get("to", [])]
            operation_ok = not operations or any(
                _glob(operation.get("ports"), str(port)) and _glob(operation.get("methods"), method)
                and _glob(operation.get("paths"), path) for operation in operations)
            if source_ok and operation_ok:
                return True
    return False
