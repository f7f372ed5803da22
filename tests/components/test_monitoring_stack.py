"""MonitoringStack under Pulumi mocks: credentials stay secret, what it registers, and the operator switch."""

from __future__ import annotations

import copy
import secrets
import string
from typing import Any, Callable

import pulumi
import pytest
import yaml

from components.config import ConfigError, parse_system_config
from components.monitoring_stack import MonitoringStack, MonitoringStackArgs
from components.render.manifests import from_wire
from components.render.mock_runtime import RANDOM_PASSWORD, RecordingMocks, RecordingMonitor, install_mocks
from monitoring.credentials import PROMETHEUS_SCOPE, ingest_scope, ingest_token

from ..crd import validate_custom_resource
from ..monitored_system import RAW

SECRETS = {"oncall-pagerduty-routing-key": "pd-s3cr3t", "oncall-slack-webhook-url": "https://hooks/s3cr3t",
           "team-smtp-password": "smtp-s3cr3t", "api-token": "token-s3cr3t"}


class UpMocks(RecordingMocks):
    """As `pulumi up` with the random provider: a RandomPassword's result is a fresh random string."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id, state = super().new_resource(args)
        if args.typ == RANDOM_PASSWORD:
            alphabet = string.ascii_letters + string.digits  # special=False
            state["result"] = "".join(secrets.choice(alphabet) for _ in range(int(args.inputs["length"])))
        return resource_id, state


def up_mocks() -> RecordingMonitor:
    return install_mocks("multi-agent-system", "test", mocks=UpMocks(), preview=False)


def run_stack(mocks: Callable[..., RecordingMonitor], raw: dict[str, Any]) -> RecordingMonitor:
    monitor = mocks()

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        secrets = {key: pulumi.Output.secret(value) for key, value in SECRETS.items()}
        stack = MonitoringStack("monitoring", MonitoringStackArgs(parse_system_config(raw), secrets))
        return pulumi.Output.all(stack.urn, stack.objects, stack.service_url)

    program()
    return monitor


def test_credentials_stay_secret(mocks: Callable[..., RecordingMonitor]) -> None:
    monitor = run_stack(mocks, RAW)
    secrets = [r for r in monitor.registrations if r.type == "kubernetes:core/v1:Secret"]
    assert len(secrets) == 1 + 2  # the credentials, and an ingestion Secret per agent namespace
    for secret in secrets:
        assert secret.secret_inputs == ["stringData"], f"{secret.name}: stringData must reach the engine as a secret"
    for registration in monitor.registrations:
        if registration.type == "kubernetes:core/v1:Secret":
            continue
        text = yaml.safe_dump(registration.inputs)
        assert "s3cr3t" not in text and "mi2." not in text, f"{registration.name} holds a credential in plain text"


def test_service_credentials_are_generated_unless_named_and_agents_get_only_their_namespace_token() -> None:
    monitor = run_stack(up_mocks, RAW)  # as pulumi up creates them
    passwords = sorted(r.name for r in monitor.registrations if r.type == RANDOM_PASSWORD)
    assert passwords == ["monitoring-ingest-key", "monitoring-read-token"]  # the admin token is configured
    by_name = {r.inputs["metadata"]["name"] + "/" + r.inputs["metadata"]["namespace"]: r.inputs
               for r in monitor.registrations if r.type == "kubernetes:core/v1:Secret"}
    credentials = from_wire(by_name["multi-agent-system-monitoring-credentials/monitoring"]["stringData"])
    assert credentials["api-token"] == "token-s3cr3t"
    key = credentials["ingest-key"]
    for namespace in ("agents", "agents-tools"):
        data = from_wire(by_name[f"multi-agent-system-monitoring-ingest/{namespace}"]["stringData"])
        assert data["token"] == ingest_token(key, namespace)
        assert data["otlp-headers"] == f"Authorization=Bearer%20{ingest_token(key, namespace)}"
        assert ingest_scope(key, data["token"].encode()) == namespace


def test_stack_registers_everything_under_the_component(mocks: Callable[..., RecordingMonitor]) -> None:
    monitor = run_stack(mocks, RAW)
    children = [r for r in monitor.registrations if r.parent.endswith("MonitoringStack::monitoring")]
    kinds = sorted({r.type.split(":")[-1] for r in children})
    assert kinds == ["AlertmanagerConfig", "ConfigMap", "Deployment", "NetworkPolicy", "PrometheusRule",
                     "RandomPassword", "Role", "RoleBinding", "Secret", "Service", "ServiceAccount", "ServiceMonitor"]


def test_without_the_operator_only_native_objects(mocks: Callable[..., RecordingMonitor]) -> None:
    raw = copy.deepcopy(RAW)
    raw["monitoring"]["prometheus_operator"] = False
    monitor = run_stack(mocks, raw)
    kinds = {r.type.split(":")[-1] for r in monitor.registrations if r.parent.endswith("MonitoringStack::monitoring")}
    assert not kinds & {"AlertmanagerConfig", "PrometheusRule", "ServiceMonitor"}
    assert {"Deployment", "ConfigMap"} <= kinds


def test_an_agent_namespace_named_like_the_prometheus_role_gets_only_its_namespace_token() -> None:
    """The program and the service agree on token kinds: the namespace `prometheus-remote-write` gets a token the
    service reads as that namespace, and Prometheus' remote-write Secret the role's token."""
    raw = copy.deepcopy(RAW)
    raw["namespace"] = "prometheus-remote-write"
    raw["monitoring"]["service"]["source"] = "remote_write"
    monitor = run_stack(up_mocks, raw)
    by_name = {r.inputs["metadata"]["name"] + "/" + r.inputs["metadata"]["namespace"]: from_wire(r.inputs)
               for r in monitor.registrations if r.type == "kubernetes:core/v1:Secret"}
    key = by_name["multi-agent-system-monitoring-credentials/monitoring"]["stringData"]["ingest-key"]
    agents = by_name["multi-agent-system-monitoring-ingest/prometheus-remote-write"]["stringData"]["token"]
    prometheus = by_name["multi-agent-system-monitoring-remote-write/monitoring"]["stringData"]["token"]
    assert agents != prometheus
    assert ingest_scope(key, agents.encode()) == "prometheus-remote-write"
    assert ingest_scope(key, prometheus.encode()) == PROMETHEUS_SCOPE


def test_offline_the_generated_credentials_and_their_tokens_are_unknown_not_placeholders(
        mocks: Callable[..., RecordingMonitor]) -> None:
    """Under the render's mocks a RandomPassword has no value (as in a preview): nothing registered holds a
    made-up credential, or a token derived from one, that the service or anyone could use."""
    monitor = run_stack(mocks, RAW)
    assert sorted(r.name for r in monitor.registrations if r.type == RANDOM_PASSWORD) == [
        "monitoring-ingest-key", "monitoring-read-token"]  # pulumi up still generates them
    for registration in monitor.registrations:
        text = repr(registration.inputs)
        assert "generated by" not in text and "mi2." not in text, registration.name
    ingest = next(r for r in monitor.registrations if r.name == "monitoring-ingest-agents")
    assert isinstance(from_wire(ingest.inputs["stringData"]), pulumi.output.Unknown)


def test_with_a_secret_store_only_external_secrets_and_nothing_generated(mocks: Callable[..., RecordingMonitor]) -> None:
    raw = copy.deepcopy(RAW)
    raw["monitoring"]["service"] = {"source": "remote_write"}
    raw["monitoring"]["credentials"] = {"secret_store": {"name": "vault"}, "remote_key_prefix": "prod/monitoring/"}
    monitor = run_stack(mocks, raw)
    kinds = [r.type for r in monitor.registrations]
    assert RANDOM_PASSWORD not in kinds and "kubernetes:core/v1:Secret" not in kinds
    external = {(r.inputs["metadata"]["namespace"], r.inputs["spec"]["target"]["name"]): from_wire(r.inputs)
                for r in monitor.registrations if r.inputs.get("kind") == "ExternalSecret"}
    assert set(external) == {("monitoring", "multi-agent-system-monitoring-credentials"),
                             ("monitoring", "multi-agent-system-monitoring-remote-write"),
                             ("agents", "multi-agent-system-monitoring-ingest"),
                             ("agents-tools", "multi-agent-system-monitoring-ingest")}
    for obj in external.values():
        validate_custom_resource(obj)
        assert obj["spec"]["secretStoreRef"] == {"name": "vault", "kind": "SecretStore"}
    credentials = external[("monitoring", "multi-agent-system-monitoring-credentials")]["spec"]["data"]
    assert {item["secretKey"]: item["remoteRef"]["key"] for item in credentials} == {
        key: f"prod/monitoring/credentials-{key}"
        for key in ("api-token", "read-token", "ingest-key", "oncall-slack-webhook-url",
                    "oncall-pagerduty-routing-key", "team-smtp-password")}
    ingest = external[("agents", "multi-agent-system-monitoring-ingest")]["spec"]
    assert ingest["data"] == [{"secretKey": "token", "remoteRef": {"key": "prod/monitoring/ingest-ns-agents"}}]
    assert ingest["target"]["template"]["data"]["otlp-headers"] == "Authorization=Bearer%20{{ .token }}"


def test_a_secret_store_and_a_named_pulumi_secret_for_the_same_credential_are_refused() -> None:
    raw = copy.deepcopy(RAW)  # names apiToken for the admin token
    raw["monitoring"]["credentials"] = {"secret_store": {"name": "vault"}}
    with pytest.raises(ConfigError) as caught:
        parse_system_config(raw)
    assert "service.api_token_secret names a Pulumi secret, but credentials.secret_store" in caught.value.report()
