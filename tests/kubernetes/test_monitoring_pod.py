"""The monitoring pod: the agents' hardening, a settings ConfigMap the service accepts, read-only discovery RBAC."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from components.config import parse_system_config
from components.config.monitoring import ServicePodConfig
from components.kubernetes import monitoring_pod, workload
from monitoring.settings import MonitoringSettings, load_settings

from ..monitored_system import RAW, SYSTEM


def test_monitoring_pod_has_the_agents_hardening() -> None:
    deployment = monitoring_pod.deployment(SYSTEM)
    assert deployment["metadata"]["namespace"] == "monitoring"
    pod = deployment["spec"]["template"]["spec"]
    agent_pod = workload.deployment(SYSTEM, SYSTEM.agents[0])["spec"]["template"]["spec"]
    assert pod["securityContext"] == agent_pod["securityContext"]
    container = pod["containers"][0]
    assert container["securityContext"] == agent_pod["containers"][0]["securityContext"]
    assert container["args"] == ["--config", "/etc/monitoring/settings.yaml"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert {"name": "settings", "mountPath": "/etc/monitoring", "readOnly": True} in container["volumeMounts"]
    # Its credentials are files of the credentials Secret (only its own keys), never environment variables.
    assert not any("secretKeyRef" in item.get("valueFrom", {}) for item in container["env"])
    [volume] = [volume for volume in pod["volumes"] if "secret" in volume]
    assert volume["secret"]["secretName"] == "multi-agent-system-monitoring-credentials"
    assert [item["key"] for item in volume["secret"]["items"]] == ["api-token", "read-token", "ingest-key"]
    assert {mount["mountPath"] for mount in container["volumeMounts"] if mount["name"] == volume["name"]} == {
        "/var/run/secrets/monitoring/api-token", "/var/run/secrets/monitoring/read-token",
        "/var/run/secrets/monitoring/ingest-key"}
    assert "CKV_K8S_38" in " ".join(deployment["metadata"]["annotations"].values())
    assert not any(item["name"].startswith("OTEL_") for item in container["env"])  # agents' settings, not its own
    assert pod["automountServiceAccountToken"] is True  # discovery reads pods through the API


@pytest.fixture
def pod_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the credentials Secret gives the pod through its environment."""
    for name in ("ADMIN_TOKEN", "READ_TOKEN", "INGEST_KEY"):
        monkeypatch.setenv(f"MONITORING_AUTH__{name}", f"{name.lower()}-from-the-secret")


def test_settings_config_map_is_accepted_by_the_service(tmp_path: Path, pod_credentials: None) -> None:
    text = monitoring_pod.settings_config_map(SYSTEM)["data"]["settings.yaml"]
    assert "auth" not in text and "x" * 16 not in text  # the credentials come from the Secret only
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    settings = load_settings(path)
    assert settings.host == "0.0.0.0" and settings.port == 8000
    assert settings.discovery.enabled and settings.discovery.namespaces == ["agents", "agents-tools"]
    assert settings.discovery.label_selector == "app.kubernetes.io/part-of=multi-agent-system,agent-id"
    assert str(settings.alertmanager.url) == "http://alertmanager-operated.monitoring.svc:9093/"
    assert settings.auth.missing() == [] and not settings.local


def test_discovery_rbac_is_read_only_pods_in_agent_namespaces() -> None:
    objects = monitoring_pod.discovery_rbac(SYSTEM)
    roles = [obj for obj in objects if obj["kind"] == "Role"]
    assert [role["metadata"]["namespace"] for role in roles] == ["agents", "agents-tools"]
    assert all(role["rules"] == [{"apiGroups": [""], "resources": ["pods", "endpoints"],
                                  "verbs": ["get", "list", "watch"]}] for role in roles)
    binding = next(obj for obj in objects if obj["kind"] == "RoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "agent-monitoring", "namespace": "monitoring"}]


@pytest.mark.parametrize("interval", [0.001, 3600])
def test_every_interval_the_config_accepts_the_service_accepts(interval: float) -> None:
    """The config copies the service's bounds (it cannot import the service); the extremes must agree."""
    raw = copy.deepcopy(RAW)
    raw.setdefault("monitoring", {}).setdefault("service", {})["collection_interval"] = interval
    settings = monitoring_pod.service_settings(parse_system_config(raw))
    assert settings.collection_interval == interval
    config_bound = ServicePodConfig.model_fields["collection_interval"].metadata
    service_bound = MonitoringSettings.model_fields["collection_interval"].metadata
    assert config_bound == service_bound


def test_trace_relay_and_byte_budget_reach_the_service(tmp_path: Path, pod_credentials: None) -> None:
    """The relay's endpoint goes into the settings file, its credential into the env from the credentials
    Secret; the live traces get a quarter of the pod's memory limit."""
    raw = copy.deepcopy(RAW)
    raw.setdefault("monitoring", {}).setdefault("service", {}).update(
        memory_limit="2Gi", trace_relay={"endpoint": "http://otel-collector.observability.svc:4318",
                                         "authorization_secret": "traceStoreAuthorization", "signals": ["traces"]})
    system = parse_system_config(raw)
    path = tmp_path / "settings.yaml"
    path.write_text(monitoring_pod.settings_config_map(system)["data"]["settings.yaml"])
    settings = load_settings(path)
    assert settings.tracing.max_bytes == 2 * 2**30 // 4
    assert settings.tracing.relay is not None and settings.tracing.relay.signals == ["traces"]
    assert str(settings.tracing.relay.endpoint) == "http://otel-collector.observability.svc:4318/"
    container = monitoring_pod.deployment(system)["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "secret-0", "subPath": "trace-relay-authorization",
            "mountPath": "/var/run/secrets/monitoring/trace-relay-authorization", "readOnly": True} \
        in container["volumeMounts"]
    assert system.monitoring.secret_keys()["traceStoreAuthorization"] == "trace-relay-authorization"


def test_agents_export_to_the_service_with_their_namespace_token() -> None:
    for agent in SYSTEM.agents:
        container = workload.deployment(SYSTEM, agent)["spec"]["template"]["spec"]["containers"][0]
        env = {item["name"]: item for item in container["env"]}
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://agent-monitoring.monitoring.svc.cluster.local:8000"
        assert env["OTEL_SERVICE_NAME"]["value"] == agent.agent_id
        assert env["OTEL_EXPORTER_OTLP_HEADERS"]["valueFrom"]["secretKeyRef"] == {
            "name": "multi-agent-system-monitoring-ingest", "key": "otlp-headers", "optional": False}


def test_the_state_role_reaches_one_config_map() -> None:
    role, binding = monitoring_pod.state_rbac(SYSTEM)
    assert role["metadata"]["namespace"] == "monitoring"
    assert role["rules"][0] == {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "update"],
                                "resourceNames": ["agent-monitoring-state", "agent-monitoring-state-corrupt"]}
    assert role["rules"][1]["verbs"] == ["create"]
    assert binding["subjects"][0]["name"] == "agent-monitoring"
    settings = monitoring_pod.service_settings(SYSTEM)
    assert settings.persistence.config_map == "agent-monitoring-state"


def test_the_service_reads_its_credentials_from_the_mounted_files(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    for key in ("api-token", "read-token", "ingest-key", "trace-relay-authorization"):
        (credentials / key).write_text(f"{key}-from-the-secret-file\n")
    settings = MonitoringSettings(host="0.0.0.0", credentials_dir=credentials,
                                  tracing={"relay": {"endpoint": "http://collector:4318"}})
    assert settings.auth.admin_token is not None
    assert settings.auth.admin_token.get_secret_value() == "api-token-from-the-secret-file"
    assert settings.tracing.relay is not None and settings.tracing.relay.authorization is not None
    (credentials / "read-token").write_text("short")
    with pytest.raises(ValueError, match="at least 16 characters"):
        MonitoringSettings(host="0.0.0.0", credentials_dir=credentials)
