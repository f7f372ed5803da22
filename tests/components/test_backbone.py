"""The Kafka backbone, KEDA scaling and the data layer: config errors at their fields, the objects (valid
against their CRDs and CEL rules), and the wiring (which agent gets which Secret, which ACL, which egress,
who may reach a store) under Pulumi mocks."""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from components.config import parse_system_config
from components.config.backbone import backbone_env
from components.data import objects as data
from components.istio import security
from components.kafka import objects as kafka
from components.keda import objects as keda
from components.kubernetes import workload
from components.render.mock_runtime import RecordingMonitor

from ..config.problems import problems_of
from ..crd import validate_custom_resource
from .test_agent_deployment import by_type, deploy

KAFKA = {"cluster": "agents-kafka", "namespace": "kafka", "bootstrap": "agents-kafka-kafka-bootstrap.kafka.svc:9093",
         "ca_secret": "kafka-ca"}
RAW: dict[str, Any] = {
    "namespace": "agents",
    "groups": {"research": {"namespace": "research"}},
    "messaging": {"kafka": KAFKA},
    "data": {"stores": [
        {"name": "cache", "kind": "redis", "host": "redis.data.svc", "namespace": "data",
         "credentials_secret": "cache-credentials", "credential_keys": ["password"]},
        {"name": "state", "kind": "postgres", "namespace": "research", "database": "agent_state",
         "cloudnative_pg": {"instances": 3, "synchronous_replicas": 1}},
        {"name": "docs", "kind": "document", "host": "docs.example.net", "credentials_secret": "docs-credentials"}]},
    "mesh": {"enabled": True},
    "agents": [
        {"agent_id": "planner", "image": "x/planner", "tag": "1", "produces": ["agent-tasks"],
         "consumes": ["agent-status"], "uses": ["cache"]},
        {"agent_id": "worker", "image": "x/worker", "tag": "1", "group": "research", "consumes": ["agent-tasks"],
         "produces": ["agent-status", "agent-dlq"], "uses": ["state", "docs"],
         "scaling": {"min_replicas": 2, "max_replicas": 50, "event_driven": {"trigger": "kafka"}}},
        {"agent_id": "reporter", "image": "x/reporter", "tag": "1", "group": "research",
         "scaling": {"min_replicas": 1, "max_replicas": 5, "event_driven": {"trigger": "prometheus"}}},
    ],
}


def system() -> Any:
    return parse_system_config(copy.deepcopy(RAW))


def agent(system: Any, agent_id: str) -> Any:
    return next(item for item in system.agents if item.agent_id == agent_id)


def with_changes(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    raw = copy.deepcopy(RAW)
    change(raw)
    return raw


# --- config errors, each at its field --------------------------------------------------------------

def test_hpa_and_keda_on_one_agent_is_an_error() -> None:
    raw = with_changes(lambda raw: raw["agents"][1]["scaling"].update(autoscaling=True))
    assert any(problem.startswith("agents[1].scaling.autoscaling: KEDA (scaling.event_driven) creates and owns")
               for problem in problems_of(raw))


def test_unknown_topics_are_named_with_a_suggestion() -> None:
    raw = with_changes(lambda raw: raw["agents"][0].update(produces=["agent-task"], consumes=["nope"]))
    problems = problems_of(raw)
    assert any(problem.startswith("agents[0].produces[0]: unknown topic 'agent-task'; did you mean 'agent-tasks'?")
               for problem in problems)
    assert any(problem.startswith("agents[0].consumes[0]: unknown topic 'nope'") for problem in problems)


def test_topics_without_kafka_and_a_lag_trigger_without_topics_are_errors() -> None:
    raw = with_changes(lambda raw: raw.pop("messaging"))
    assert any(problem.startswith("agents[0].produces: no Kafka cluster is configured") for problem in
               problems_of(raw))
    raw = with_changes(lambda raw: raw["agents"][1].update(consumes=[]))
    assert any(problem.startswith("agents[1].scaling.event_driven.trigger: the kafka trigger scales on the lag")
               for problem in problems_of(raw))


def test_a_store_used_but_not_defined_is_an_error() -> None:
    raw = with_changes(lambda raw: raw["agents"][0].update(uses=["cahce"]))
    assert any(problem.startswith("agents[0].uses[0]: no data store is named 'cahce'; did you mean 'cache'?")
               for problem in problems_of(raw))


def test_operator_credentials_in_another_namespace_must_be_copied() -> None:
    raw = with_changes(lambda raw: raw["agents"][0].update(uses=["state"]))  # planner runs in agents
    assert any(problem.startswith("agents[0].uses[0]: the operator writes the credentials of 'state' into the "
                                  "Secret 'state-app' in namespace research") for problem in problems_of(raw))


@pytest.mark.parametrize(("change", "message"), [
    (lambda raw: raw["messaging"]["kafka"].update(topics=[{"name": "agent-dlq", "partitions": 10},
                                                          {"name": "agent-dlq", "partitions": 1}]),
     "messaging.kafka.topics[1].name: 'agent-dlq' is listed twice"),
    (lambda raw: raw["messaging"]["kafka"].update(dlq_topic="dead"),
     "messaging.kafka.dlq_topic: 'dead' is not one of the topics"),
    (lambda raw: raw["data"]["stores"][1]["cloudnative_pg"].update(instances=1),
     "data.stores[1].cloudnative_pg.synchronous_replicas: 1 needs that many replicas besides the primary"),
    (lambda raw: raw["data"]["stores"].append(dict(raw["data"]["stores"][0])), "data.stores[3].name: 'cache' is listed twice"),
    (lambda raw: raw["data"]["stores"][0].pop("host"), "host is required"),
    (lambda raw: raw["agents"][1].update(consumes=["agent-tasks", "agent-tasks"]),
     "agents[1].consumes[1]: 'agent-tasks' is listed twice"),
    (lambda raw: raw["agents"][2]["scaling"]["event_driven"].update(scale_to_zero=True),
     "agents[2].scaling.event_driven.scale_to_zero: a Prometheus query on the agent's own pods"),
])
def test_malformed_backbone_settings_are_refused(change: Callable[[dict[str, Any]], None], message: str) -> None:
    assert any(message in problem for problem in problems_of(with_changes(change)))


# --- objects ---------------------------------------------------------------------------------------

def test_topics_are_the_seeds_and_valid_strimzi() -> None:
    built = {topic.name: kafka.kafka_topic(system(), topic) for topic in system().messaging.kafka.topics}
    assert {name: topic["spec"]["partitions"] for name, topic in built.items()} == {
        "agent-tasks": 50, "agent-communication": 30, "agent-status": 20, "agent-dlq": 10}
    assert all(topic["spec"]["replicas"] == 3 for topic in built.values())
    assert built["agent-status"]["spec"]["config"]["retention.ms"] == 86_400_000
    assert built["agent-status"]["spec"]["config"]["cleanup.policy"] == "delete"
    assert built["agent-tasks"]["metadata"]["labels"]["strimzi.io/cluster"] == "agents-kafka"
    assert built["agent-tasks"]["metadata"]["namespace"] == "kafka"
    for topic in built.values():
        validate_custom_resource(topic)


def test_each_agent_may_do_exactly_what_its_config_says_on_kafka() -> None:
    worker = kafka.kafka_user(system(), agent(system(), "worker"))
    # where the User Operator watches (the cluster's namespace here), named after the system too
    assert worker["metadata"] == {**worker["metadata"], "name": "multi-agent-system-worker", "namespace": "kafka"}
    acls = {(acl["resource"]["type"], acl["resource"]["name"]): acl["operations"]
            for acl in worker["spec"]["authorization"]["acls"]}
    assert acls == {("topic", "agent-tasks"): ["Read", "Describe"], ("group", "worker"): ["Read"],
                    ("topic", "agent-status"): ["Write", "Describe"], ("topic", "agent-dlq"): ["Write", "Describe"]}
    assert worker["spec"]["authentication"] == {"type": "scram-sha-512"}
    validate_custom_resource(worker)


def test_keda_scales_consumers_on_lag_and_others_on_a_query() -> None:
    built = system()
    worker = keda.scaled_object(built, agent(built, "worker"), "worker")
    assert worker["spec"]["scaleTargetRef"] == {"name": "worker"}
    assert (worker["spec"]["minReplicaCount"], worker["spec"]["maxReplicaCount"]) == (2, 50)
    [trigger] = worker["spec"]["triggers"]
    assert trigger["type"] == "kafka" and trigger["metadata"]["lagThreshold"] == "10000"
    assert trigger["metadata"]["consumerGroup"] == "worker" and trigger["metadata"]["topic"] == "agent-tasks"
    assert trigger["authenticationRef"] == {"name": "worker-kafka"} and trigger["name"] == "lag-0"
    assert worker["metadata"]["annotations"] == {"scaledobject.keda.sh/transfer-hpa-ownership": "true"}
    assert worker["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["name"] == "worker"  # the HPA it takes over
    behavior = worker["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300  # the seed's behaviour, as with an HPA
    auth = keda.trigger_authentication(built, agent(built, "worker"))
    assert {ref["parameter"]: (ref["name"], ref["key"]) for ref in auth["spec"]["secretTargetRef"]} == {
        "password": ("multi-agent-system-worker", "password"), "ca": ("kafka-ca", "ca.crt")}
    reporter = keda.scaled_object(built, agent(built, "reporter"), "reporter")
    assert reporter["spec"]["minReplicaCount"] == 1
    [query] = reporter["spec"]["triggers"]
    assert query["type"] == "prometheus" and query["metadata"]["threshold"] == "100"
    assert query["metadata"]["query"] == 'sum(active_tasks_per_pod{namespace="research", agent_id="reporter"})'
    for obj in (worker, auth, reporter):
        validate_custom_resource(obj)


def test_agents_get_their_secrets_as_files_and_where_things_are_as_env() -> None:
    built = system()
    pod = workload.deployment(built, agent(built, "worker"))["spec"]["template"]["spec"]
    [container] = pod["containers"]
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume["secret"] for volume in pod["volumes"] if "secret" in volume}
    secret_of = {path: volumes[mount["name"]]["secretName"] for path, mount in mounts.items() if mount["name"] in volumes}
    assert secret_of == {"/var/run/secrets/kafka/password": "multi-agent-system-worker",
                         "/var/run/secrets/kafka/ca.crt": "kafka-ca",
                         "/var/run/secrets/stores/state/username": "state-app",
                         "/var/run/secrets/stores/state/password": "state-app",
                         "/var/run/secrets/stores/docs/username": "docs-credentials",
                         "/var/run/secrets/stores/docs/password": "docs-credentials"}
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "agents-kafka-kafka-bootstrap.kafka.svc:9093"
    assert env["KAFKA_SASL_USERNAME"] == "multi-agent-system-worker" and env["KAFKA_CONSUMES"] == "agent-tasks"
    assert env["STORE_STATE_HOST"] == "state-rw.research.svc" and env["STORE_STATE_PORT"] == "5432"
    assert env["STORE_DOCS_HOST"] == "docs.example.net" and env["STORE_DOCS_PORT"] == "27017"
    assert not any("PASSWORD" in name and not name.endswith("_FILE") for name in env)  # never a password value
    assert backbone_env(built, agent(built, "reporter")) == {}  # uses neither Kafka nor a store


def test_mesh_egress_follows_what_each_namespace_uses() -> None:
    built = system()
    research = [agent(built, "worker"), agent(built, "reporter")]
    hosts = security.sidecar(built, "research", research)["spec"]["egress"][0]["hosts"]
    # in-cluster stores by their full service names (Istio matches hosts in full)
    assert "kafka/*" in hosts and "./docs.example.net" in hosts
    assert "research/state-rw.research.svc.cluster.local" in hosts
    assert "data/redis.data.svc.cluster.local" not in hosts  # the cache is the planner's, in the other namespace
    planner_hosts = security.sidecar(built, "agents", [agent(built, "planner")])["spec"]["egress"][0]["hosts"]
    assert "data/redis.data.svc.cluster.local" in planner_hosts and "./docs.example.net" not in planner_hosts
    entries = {entry["metadata"]["name"]: entry for entry in security.service_entries(built, "research", research)}
    assert entries["store-docs"]["spec"]["hosts"] == ["docs.example.net"]
    assert entries["store-docs"]["spec"]["ports"] == [{"number": 27017, "name": "tcp-27017", "protocol": "TCP"}]
    for obj in (security.sidecar(built, "research", research), *entries.values()):
        validate_custom_resource(obj)


def test_the_postgres_cluster_replicates_and_admits_only_its_users() -> None:
    built = system()
    store = built.data.store("state")
    cluster = data.cnpg_cluster(built, store)
    assert cluster["spec"]["instances"] == 3 and cluster["metadata"]["namespace"] == "research"
    # a spare replica beyond the synchronous one: commits wait for it (required); no sidecar on the instances
    assert cluster["spec"]["postgresql"]["synchronous"] == {"method": "any", "number": 1, "dataDurability": "required"}
    assert cluster["spec"]["inheritedMetadata"]["labels"] == {"sidecar.istio.io/inject": "false"}
    two = parse_system_config(with_changes(lambda raw: raw["data"]["stores"][1]["cloudnative_pg"].update(instances=2)))
    assert data.cnpg_cluster(two, two.data.store("state"))["spec"]["postgresql"]["synchronous"]["dataDurability"] \
        == "preferred"  # no spare: an outage of the one replica must not stop every commit
    assert cluster["spec"]["bootstrap"]["initdb"] == {"database": "agent_state", "owner": "agent_state"}
    validate_custom_resource(cluster)
    policy = data.store_network_policy(built, store)
    clients = policy["spec"]["ingress"][-1]
    assert clients["ports"] == [{"protocol": "TCP", "port": 5432}]
    assert clients["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "research"}},
                                "podSelector": {"matchExpressions": [{"key": "agent-id", "operator": "In",
                                                                      "values": ["worker"]}]}}]


# --- registration under mocks -------------------------------------------------------------------------

def test_agent_deployment_registers_the_backbone(mocks: Callable[..., RecordingMonitor]) -> None:
    monitor = deploy(mocks, copy.deepcopy(RAW), lambda component: component.urn)
    found = by_type(monitor)
    assert len(found["kubernetes:kafka.strimzi.io/v1beta2:KafkaTopic"]) == 4
    assert found["kubernetes:kafka.strimzi.io/v1beta2:KafkaUser"] == ["agents-planner-kafka-user",
                                                                       "agents-worker-kafka-user"]
    assert found["kubernetes:keda.sh/v1alpha1:ScaledObject"] == ["agents-reporter-scaled-object",
                                                                  "agents-worker-scaled-object"]
    assert found["kubernetes:keda.sh/v1alpha1:TriggerAuthentication"] == ["agents-worker-trigger-auth"]
    assert found["kubernetes:postgresql.cnpg.io/v1:Cluster"] == ["agents-cluster-research-state"]
    # KEDA owns the scaled agents' HPAs: the program makes one only for the planner
    assert found["kubernetes:autoscaling/v2:HorizontalPodAutoscaler"] == ["agents-planner-hpa"]
    ignored = {r.name: r.ignore_changes for r in monitor.registrations if r.type == "kubernetes:apps/v1:Deployment"}
    assert ignored["agents-worker-deployment"] == ["spec.replicas"]


def test_remote_write_mode_renders_prometheus_a_token_and_no_discovery(mocks: Callable[..., RecordingMonitor]) -> None:
    """monitoring.service.source: remote_write: the service's settings say so and discover nothing, it gets no
    access to the agents' pods, Prometheus gets its token in a Secret, and the mesh lets it POST /api/v1/write."""
    import yaml

    from components.istio import monitoring as mesh_monitoring
    from components.kubernetes import monitoring_pod
    from components.monitoring_stack import MonitoringStack, MonitoringStackArgs
    import pulumi

    raw = copy.deepcopy(RAW)
    raw["monitoring"] = {"service": {"source": "remote_write"}}
    built = parse_system_config(raw)
    settings = yaml.safe_load(monitoring_pod.settings_config_map(built)["data"]["settings.yaml"])
    assert settings["source"] == "remote_write" and settings["discovery"]["enabled"] is False
    secret = monitoring_pod.remote_write_secret(built, "k" * 20)
    assert secret["stringData"]["token"].startswith("mi2.role.prometheus-remote-write.")
    policy = mesh_monitoring.monitoring_authorization_policy(built)
    assert {"to": [{"operation": {"ports": ["8000"], "methods": ["POST"], "paths": ["/api/v1/write"]}}]} \
        in policy["spec"]["rules"]
    monitor = mocks()

    @pulumi.runtime.test
    def program() -> Any:
        return MonitoringStack("monitoring", MonitoringStackArgs(system=built, secrets={})).urn

    program()
    kinds = {(registration.type, registration.name) for registration in monitor.registrations}
    assert ("kubernetes:core/v1:Secret", "monitoring-remote-write") in kinds
    roles = {name for kind, name in kinds if kind == "kubernetes:rbac.authorization.k8s.io/v1:Role"}
    assert roles == {"monitoring-state-role"}  # its state ConfigMap only: no access to the agents' pods
