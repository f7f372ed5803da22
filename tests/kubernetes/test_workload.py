"""Workload builders: an agent's Deployment, ServiceAccount, Service, HPA and PDB, field by field."""

from __future__ import annotations

import pytest

from typing import Any

from components.config import parse_system_config
from components.config.errors import ConfigError
from components.kubernetes import workload
from components.kubernetes.pod import CONTAINER_NAME


def container_of(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_deployment_image_env_and_resources(system: Any) -> None:
    agent = system.agents[0]
    deployment = workload.deployment(system, agent)
    assert deployment["metadata"] == {"name": "coordinator-agent", "namespace": "multi-agent",
                                      "labels": deployment["metadata"]["labels"],
                                      "annotations": deployment["metadata"]["annotations"]}
    # Scanners' findings the design needs carry their reason, in checkov's convention.
    assert all(key.startswith("checkov.io/skip") and "=" in value
               for key, value in deployment["metadata"]["annotations"].items())
    container = container_of(deployment)
    assert container["name"] == CONTAINER_NAME
    assert container["image"] == "myregistry/coordinator:v1.0.0"
    assert container["imagePullPolicy"] == "IfNotPresent"
    env = {item["name"]: item for item in container["env"]}
    assert env["AGENT_ID"] == {"name": "AGENT_ID", "value": "coordinator-agent"}
    assert env["NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["MAX_CONCURRENT_TASKS"] == {"name": "MAX_CONCURRENT_TASKS", "value": "10"}
    assert container["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"},
                                      "limits": {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "1Gi"}}


def test_deployment_probes(system: Any) -> None:
    container = container_of(workload.deployment(system, system.agents[0]))
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": 8080}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8080}
    startup = container["startupProbe"]
    assert startup["httpGet"] == {"path": "/health", "port": 8080}
    # Seed 004's timings: startup 5 s x 30 (150 s, the default startup_timeout_seconds), liveness 10/5/3,
    # readiness 5/3/2.
    assert (startup["periodSeconds"], startup["timeoutSeconds"], startup["failureThreshold"]) == (5, 3, 30)
    liveness, readiness = container["livenessProbe"], container["readinessProbe"]
    assert (liveness["periodSeconds"], liveness["timeoutSeconds"], liveness["failureThreshold"]) == (10, 5, 3)
    assert (readiness["periodSeconds"], readiness["timeoutSeconds"], readiness["failureThreshold"]) == (5, 3, 2)


def test_probe_port_defaults_to_the_first_port_by_name(system: Any) -> None:
    container = container_of(workload.deployment(system, system.agents[1]))
    assert container["livenessProbe"]["httpGet"]["port"] == "http"


def test_secure_defaults(system: Any) -> None:
    deployment = workload.deployment(system, system.agents[1])
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container_of(deployment)["securityContext"]
    assert security == {"allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True,
                        "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"}}
    # A read-only root filesystem still needs a writable, bounded /tmp.
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}]
    assert container_of(deployment)["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]


def test_service_account_token_only_when_asked() -> None:
    raw = {"agents": [{"agent_id": "k8s-operator", "image": "x/op", "service_account": {
        "automount_token": True, "automount_reason": "reconciles the agents' CRDs",
        "annotations": {"iam.gke.io/gcp-service-account": "op@p.iam.gserviceaccount.com"}}}]}
    system = parse_system_config(raw)
    account = workload.service_account(system, system.agents[0])
    assert account["automountServiceAccountToken"] is True
    assert account["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": "op@p.iam.gserviceaccount.com"}
    deployment = workload.deployment(system, system.agents[0])
    assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
    assert "CKV_K8S_38=reconciles the agents' CRDs" in deployment["metadata"]["annotations"].values()
    del raw["agents"][0]["service_account"]["automount_reason"]
    with pytest.raises(ConfigError, match="automount_reason: is required with automount_token"):
        parse_system_config(raw)


def test_secrets_mounted_as_files() -> None:
    raw = {"agents": [{"agent_id": "analyst", "image": "x/a", "secret_files": [
        {"secret": "warehouse", "key": "dsn", "path": "/var/run/secrets/warehouse/dsn"},
        {"secret": "warehouse", "key": "ca.crt", "path": "/etc/ssl/warehouse/ca.crt"}]}]}
    system = parse_system_config(raw)
    pod = workload.deployment(system, system.agents[0])["spec"]["template"]["spec"]
    assert pod["volumes"][1] == {"name": "secret-0", "secret": {
        "secretName": "warehouse", "defaultMode": 0o440,
        "items": [{"key": "dsn", "path": "dsn"}, {"key": "ca.crt", "path": "ca.crt"}]}}
    mounts = pod["containers"][0]["volumeMounts"][1:]
    assert mounts == [{"name": "secret-0", "mountPath": "/var/run/secrets/warehouse/dsn", "subPath": "dsn",
                       "readOnly": True},
                      {"name": "secret-0", "mountPath": "/etc/ssl/warehouse/ca.crt", "subPath": "ca.crt",
                       "readOnly": True}]
    # Volumes are named by position: Secrets that differ only in dots (or in a long tail) stay apart.
    raw["agents"][0]["secret_files"].append({"secret": "ware.house", "key": "dsn", "path": "/etc/other/dsn"})
    names = [volume["name"] for volume in workload.deployment(
        parse_system_config(raw), parse_system_config(raw).agents[0])["spec"]["template"]["spec"]["volumes"]]
    assert names == ["tmp", "secret-0", "secret-1"]
    raw["agents"][0]["secret_files"].pop()
    raw["agents"][0]["secret_files"][1]["path"] = "/var/run/secrets/warehouse/dsn"
    with pytest.raises(ConfigError, match=r"secret_files\[1\].path: '/var/run/secrets/warehouse/dsn' is mounted twice"):
        parse_system_config(raw)
    raw["agents"][0]["secret_files"][1]["path"] = "/var/run/secrets/warehouse/dsn/ca.crt"
    with pytest.raises(ConfigError, match=r"secret_files\[1\].path: .* lies inside, or contains"):
        parse_system_config(raw)


def test_labels_recommended_and_seed(system: Any) -> None:
    deployment = workload.deployment(system, system.agents[0])
    labels = deployment["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "coordinator-agent"
    assert labels["app.kubernetes.io/part-of"] == "multi-agent-system"
    assert labels["app.kubernetes.io/managed-by"] == "pulumi"
    assert labels["app.kubernetes.io/version"] == "v1.0.0"
    assert labels["app"] == labels["agent-id"] == "coordinator-agent"
    assert labels["component"] == "agent"
    # The selector is stable across releases: no version in it, and the pods match it.
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == {"app": "coordinator-agent", "track": "stable"}
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert pod_labels["version"] == "stable"  # the release track, as Istio subsets select it


def test_rolling_update(system: Any) -> None:
    spec = workload.deployment(system, system.agents[0])["spec"]
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "10%"}}
    assert spec["replicas"] == 2


def test_spreading_across_nodes_and_zones() -> None:
    raw = {"agents": [{"agent_id": "a", "image": "x/a", "scheduling": {
        "spread_across_nodes": "required", "spread_across_zones": "preferred",
        "node_selector": {"pool": "agents"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}}]}
    system = parse_system_config(raw)
    pod = workload.deployment(system, system.agents[0])["spec"]["template"]["spec"]
    required = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required == [{"labelSelector": {"matchLabels": {"app": "a", "track": "stable"}},
                         "topologyKey": "kubernetes.io/hostname"}]
    spread = {item["topologyKey"]: item["whenUnsatisfiable"] for item in pod["topologySpreadConstraints"]}
    assert spread == {"topology.kubernetes.io/zone": "ScheduleAnyway", "kubernetes.io/hostname": "DoNotSchedule"}
    assert pod["nodeSelector"] == {"pool": "agents"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_no_spreading_when_disabled() -> None:
    raw = {"agents": [{"agent_id": "a", "image": "x/a", "scheduling": {
        "spread_across_nodes": "none", "spread_across_zones": "none"}}]}
    system = parse_system_config(raw)
    pod = workload.deployment(system, system.agents[0])["spec"]["template"]["spec"]
    assert "affinity" not in pod and "topologySpreadConstraints" not in pod


def test_service_targets_named_container_ports(system: Any) -> None:
    service = workload.service(system, system.agents[0])
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == {"app": "coordinator-agent"}
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"},
        {"name": "port-9090", "port": 9090, "targetPort": "port-9090", "protocol": "TCP"}]


def test_hpa_metrics_and_behavior(system: Any) -> None:
    hpa = workload.horizontal_pod_autoscaler(system, system.agents[0])
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "coordinator-agent"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 10)
    assert spec["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
        {"type": "Resource", "resource": {"name": "memory",
                                          "target": {"type": "Utilization", "averageUtilization": 80}}},
        {"type": "Pods", "pods": {"metric": {"name": "active_tasks_per_pod"},
                                  "target": {"type": "AverageValue", "averageValue": "5"}}}]
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert spec["behavior"]["scaleUp"]["policies"][0] == {"type": "Percent", "value": 100, "periodSeconds": 30}


def test_pdb(system: Any) -> None:
    pdb = workload.pod_disruption_budget(system, system.agents[0])
    assert pdb["spec"] == {"selector": {"matchLabels": {"app": "coordinator-agent", "track": "stable"}},
                           "maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow"}


def test_image_pinned_by_digest_pulls_by_digest() -> None:
    digest = "sha256:" + "ab" * 32
    system = parse_system_config({"agents": [{"agent_id": "a", "image": "x/a", "digest": digest}]})
    container = container_of(workload.deployment(system, system.agents[0]))
    assert container["image"] == f"x/a@{digest}"
    assert container["imagePullPolicy"] == "IfNotPresent"


def test_latest_tag_is_always_pulled() -> None:
    system = parse_system_config({"agents": [{"agent_id": "a", "image": "x/a"}]})
    assert container_of(workload.deployment(system, system.agents[0]))["imagePullPolicy"] == "Always"


def test_with_a_sidecar_the_hpa_measures_the_agent_container(seed_system: dict[str, Any]) -> None:
    """The mesh injects istio-proxy: pod-level utilisation would mix its usage and requests in."""
    seed_system["mesh"] = {"enabled": True}
    system = parse_system_config(seed_system)
    metrics = workload.horizontal_pod_autoscaler(system, system.agents[0])["spec"]["metrics"]
    assert metrics[:2] == [
        {"type": "ContainerResource", "containerResource": {
            "name": "cpu", "container": CONTAINER_NAME,
            "target": {"type": "Utilization", "averageUtilization": 70}}},
        {"type": "ContainerResource", "containerResource": {
            "name": "memory", "container": CONTAINER_NAME,
            "target": {"type": "Utilization", "averageUtilization": 80}}}]
    assert metrics[2]["type"] == "Pods"
