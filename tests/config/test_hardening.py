"""Issue 23, the render's config checks (items 15, 16, 18, 19), attacked as a user would: through
`parse_system_config` and the offline render. Each bad input is refused at the field to fix, with one
message, before any object is registered, and without a traceback."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import pytest

from components.config import ConfigError, parse_system_config
from components.config.generated import generated_env, generated_mounts
from components.render.cli import RenderError, render_stack

from ..render.test_render import project_copy
from .test_wrong_inputs import BASE, _set

Change = Callable[[dict[str, Any]], Any]
KAFKA = {"cluster": "events", "namespace": "kafka", "bootstrap": "events-kafka-bootstrap.kafka.svc:9093",
         "ca_secret": "kafka-ca"}
CACHE = {"name": "cache", "kind": "redis", "host": "redis.data.svc", "namespace": "data",
         "credentials_secret": "cache-credentials", "credential_keys": ["password"]}


def _all(*changes: Change) -> Change:
    def change(raw: dict[str, Any]) -> None:
        for one in changes:
            one(raw)
    return change


def _kafka_agent(raw: dict[str, Any]) -> None:
    """The agent consumes a topic of a configured Kafka cluster and uses a Redis store."""
    raw["messaging"] = {"kafka": copy.deepcopy(KAFKA)}
    raw["data"] = {"stores": [copy.deepcopy(CACHE)]}
    raw["agents"][0] |= {"consumes": ["agent-tasks"], "uses": ["cache"]}


def _in_group(group: str, settings: dict[str, Any] | None = None, namespace: str | None = None) -> Change:
    def change(raw: dict[str, Any]) -> None:
        if namespace is not None:
            raw["namespace"] = namespace
        raw["groups"] = {group: settings or {}}
        raw["agents"][0]["group"] = group
    return change


def _secret_file(path: str) -> Change:
    return _set("agents.0.secret_files", [{"secret": "app", "key": "token", "path": path}])


LONG_GROUP, LONG_NAMESPACE = "g" * 40, "a" * 40
REFUSED: dict[str, tuple[Change, str]] = {
    # 15: the derived `<namespace>-<group>` must stay a 63-character DNS label.
    "derived group namespace over 63 characters": (
        _in_group(LONG_GROUP, namespace=LONG_NAMESPACE),
        f"groups.{LONG_GROUP}: its namespace '{LONG_NAMESPACE}-{LONG_GROUP}' (namespace-group) is 81 characters, "
        f"over Kubernetes' 63; set groups.{LONG_GROUP}.namespace to a name of at most 63 characters, or shorten "
        f"the group's or the system's namespace name"),
    # 16: namespaces that are not the agents' to take.
    "agents in kube-system": (
        _set("namespace", "kube-system"),
        "namespace: 'kube-system' is reserved: Kubernetes' own namespace (CoreDNS, kube-proxy, the control plane)"),
    "agents in default with create_namespace false": (
        _all(_set("namespace", "default"), _set("create_namespace", False)),
        "namespace: 'default' is reserved: Kubernetes' own namespace"),
    "any kube- prefix": (
        _set("namespace", "kube-agents"),
        "namespace: 'kube-agents' is reserved: Kubernetes reserves the kube- prefix for its own namespaces"),
    "group in the mesh's control plane": (
        _in_group("team", {"namespace": "istio-system"}),
        "groups.team.namespace: 'istio-system' is reserved: the mesh's own namespace"),
    "group in the configured ingress gateway namespace": (
        _all(_set("mesh.ingress_namespace", "gateways"), _in_group("team", {"namespace": "gateways"})),
        "groups.team.namespace: 'gateways' is reserved: the mesh's own namespace (mesh.ingress_namespace)"),
    "derived group namespace that is reserved": (
        _in_group("system", namespace="kube"),
        "groups.system: its namespace 'kube-system' (namespace-group) is reserved: Kubernetes' own namespace"),
    "agents where Prometheus runs": (
        _set("namespace", "monitoring"),
        "namespace: 'monitoring' is reserved: the monitoring stack's namespace (monitoring.namespace, where "
        "the Prometheus Operator objects and Prometheus are)"),
    "group in the Kafka cluster's namespace": (
        _all(_kafka_agent, _in_group("team", {"namespace": "kafka"})),
        "groups.team.namespace: 'kafka' is reserved: the Kafka cluster's namespace (messaging.kafka.namespace)"),
    # 18: what the program sets itself can't be set again by the user.
    "generated Kafka environment": (
        _all(_kafka_agent, _set("agents.0.environment", {"KAFKA_BOOTSTRAP_SERVERS": "localhost:9092"})),
        "agents[0].environment.KAFKA_BOOTSTRAP_SERVERS: is set by the program for agents that use Kafka "
        "(messaging.kafka, consumes, produces); choose another name"),
    "generated store environment as a secret": (
        _all(_kafka_agent, _set("agents.0.secret_environment",
                                {"STORE_CACHE_HOST": {"secret": "app", "key": "host"}})),
        "agents[0].secret_environment.STORE_CACHE_HOST: is set by the program for agents that use data store "
        "'cache' (uses); choose another name"),
    "secret file on the generated Kafka credentials": (
        _all(_kafka_agent, _secret_file("/var/run/secrets/kafka/password")),
        "agents[0].secret_files[0].path: '/var/run/secrets/kafka/password' is inside "
        "/var/run/secrets/kafka, where the program mounts the agent's Kafka credentials; mount it elsewhere"),
    "secret file containing the generated store credentials": (
        _all(_kafka_agent, _secret_file("/var/run/secrets/stores")),
        "agents[0].secret_files[0].path: '/var/run/secrets/stores' contains /var/run/secrets/stores/cache, "
        "where the program mounts the credentials of data store 'cache'; mount it elsewhere"),
    "secret file over the API token": (
        _all(_set("agents.0.service_account", {"automount_token": True, "automount_reason": "reads pods"}),
             _secret_file("/var/run/secrets/kubernetes.io/serviceaccount/token")),
        "agents[0].secret_files[0].path: '/var/run/secrets/kubernetes.io/serviceaccount/token' is inside "
        "/var/run/secrets/kubernetes.io/serviceaccount, where Kubernetes mounts the agent's API token "
        "(automount_token); mount it elsewhere"),
    # 19: names and expressions other systems would refuse.
    "topic name that is no DNS subdomain": (
        _set("messaging", {"kafka": {**KAFKA, "topics": [{"name": "agent..tasks", "partitions": 3}],
                                     "dlq_topic": None}}),
        "messaging.kafka.topics[0].name: 'agent..tasks' is not a valid topic name"),
    "topic name with an upper-case letter": (
        _set("messaging", {"kafka": {**KAFKA, "topics": [{"name": "Agent-tasks", "partitions": 3}],
                                     "dlq_topic": None}}),
        "messaging.kafka.topics[0].name: 'Agent-tasks' is not a valid topic name"),
    "unbalanced route regex": (
        _set("agents.0.routing_rules", [{"name": "api", "match": {"uri": {"regex": "^/api/(["}}}]),
        "agents[0].routing_rules[0].match.uri.regex: '^/api/([' is not an RE2 regular expression (Envoy's): "
        "missing ]"),
    "lookahead in a header regex": (
        _set("agents.0.routing_rules", [{"name": "admins", "match": {"headers": {"x-user": {"regex": "(?=adm)"}}}}]),
        "agents[0].routing_rules[0].match.headers.x-user.regex: '(?=adm)' is not an RE2 regular expression "
        "(Envoy's): invalid perl operator: (?="),
    "backreference in a route regex": (
        _set("agents.0.routing_rules", [{"name": "twice", "match": {"uri": {"regex": r"^/(a+)/\1$"}}}]),
        r"agents[0].routing_rules[0].match.uri.regex: '^/(a+)/\\1$' is not an RE2 regular expression (Envoy's): "
        r"invalid escape sequence: \1"),
    "route regex too complex for Istio's Envoy": (
        _set("agents.0.routing_rules", [{"name": "huge", "match": {"uri": {"regex": "^/(" + "a{1000}" * 40 + ")$"}}}]),
        "agents[0].routing_rules[0].match.uri.regex: compiles to an RE2 program of"),
}


def _raw(case: str) -> tuple[dict[str, Any], str]:
    change, expected = REFUSED[case]
    raw = copy.deepcopy(BASE)
    change(raw)
    return raw, expected


@pytest.mark.parametrize("case", REFUSED)
def test_refused_at_the_field_with_one_message(case: str) -> None:
    raw, expected = _raw(case)
    with pytest.raises(ConfigError) as caught:
        parse_system_config(raw)
    problems = [str(problem) for problem in caught.value.problems]
    assert len(problems) == 1 and problems[0].startswith(expected), problems


@pytest.mark.parametrize("case", REFUSED)
def test_refused_before_any_object_is_registered(case: str, tmp_path: Path, registered_kinds: list[str]) -> None:
    raw, expected = _raw(case)
    with pytest.raises(RenderError) as caught:
        render_stack("broken", project_copy(tmp_path, "broken", raw))
    assert caught.value.exit_code == 1 and expected in str(caught.value) and "Traceback" not in str(caught.value)
    assert registered_kinds == []


@pytest.mark.parametrize("monitoring", [False, True])
def test_a_long_derived_namespace_is_refused_with_monitoring_on_or_off(monitoring: bool, tmp_path: Path,
                                                                        registered_kinds: list[str]) -> None:
    """Monitoring off used to render an 81-character namespace; on, it died in an internal Pulumi ValueError."""
    raw, expected = _raw("derived group namespace over 63 characters")
    raw["monitoring"]["enabled"] = monitoring
    with pytest.raises(RenderError) as caught:
        render_stack("broken", project_copy(tmp_path, "broken", raw))
    assert expected in str(caught.value) and "ValueError" not in str(caught.value)
    assert registered_kinds == []


def test_a_derived_namespace_of_exactly_63_characters_is_accepted() -> None:
    raw = copy.deepcopy(BASE)
    _in_group("g" * 40, namespace="a" * 22)(raw)
    assert parse_system_config(raw).group_namespace("g" * 40) == "a" * 22 + "-" + "g" * 40


def test_the_monitoring_pod_may_share_the_agents_namespace_without_the_prometheus_operator() -> None:
    """The dev stack runs the monitoring pod next to its agents: no Prometheus there to cut off."""
    raw = copy.deepcopy(BASE)
    raw["namespace"] = "agents-dev"
    raw["monitoring"] |= {"namespace": "agents-dev", "prometheus_operator": False}
    parse_system_config(raw)
    raw["mesh"]["monitoring_namespace"] = "agents-dev"  # ... but not where Prometheus itself runs
    with pytest.raises(ConfigError, match=r"namespace: 'agents-dev' is reserved: the monitoring stack's namespace "
                                          r"\(mesh.monitoring_namespace\)"):
        parse_system_config(raw)


@pytest.mark.parametrize("environment, path", [
    ({"KAFKA_BOOTSTRAP_SERVERS": "other-kafka:9092"}, "/var/run/secrets/kafka/other"),  # no Kafka of the program's
    ({"STORE_CACHE_HOST": "redis"}, "/var/run/secrets/stores/cache/password"),          # no store in use
])
def test_names_the_program_does_not_set_for_this_agent_stay_the_users(environment: dict[str, str],
                                                                      path: str) -> None:
    raw = copy.deepcopy(BASE)
    raw["agents"][0] |= {"environment": environment,
                         "secret_files": [{"secret": "app", "key": "token", "path": path}]}
    parse_system_config(raw)


def test_a_sibling_of_a_generated_mount_is_accepted() -> None:
    raw = copy.deepcopy(BASE)
    _kafka_agent(raw)
    _secret_file("/var/run/secrets/kafka-extra/token")(raw)
    parse_system_config(raw)


FULL: dict[str, Any] = {
    "monitoring": {"enabled": True},
    "messaging": {"kafka": KAFKA},
    "data": {"stores": [CACHE, {"name": "state", "kind": "postgres", "namespace": "agents", "database": "state",
                                "cloudnative_pg": {"instances": 2}}]},
    "mesh": {"enabled": True},
    "agents": [
        {"agent_id": "planner", "image": "x/planner", "tag": "1", "consumes": ["agent-tasks"],
         "produces": ["agent-status"], "uses": ["cache", "state"], "environment": {"LOG_LEVEL": "debug"},
         "secret_environment": {"API_KEY": {"secret": "app", "key": "api-key"}},
         "secret_files": [{"secret": "app", "key": "token", "path": "/var/run/secrets/app/token"}],
         "canary": {"tag": "2"}},
        {"agent_id": "tls-user", "image": "x/tls", "tag": "1", "produces": ["agent-tasks"], "group": "tls"},
    ],
    "groups": {"tls": {}},
}


@pytest.mark.parametrize("authentication", ["scram-sha-512", "tls"])
def test_every_env_name_and_mount_the_builders_emit_is_reserved(authentication: str, tmp_path: Path) -> None:
    """The guard against drift: render a system that uses every generator (identity, telemetry, Kafka with
    SCRAM or TLS and a CA, a store with a database, a canary track), and check that each env name and mount
    path in the agents' containers is either the user's own or in the reserved sets the checks refuse."""
    raw = copy.deepcopy(FULL)
    raw["messaging"]["kafka"]["authentication"] = authentication
    system = parse_system_config(copy.deepcopy(raw))
    rendered = render_stack("full", project_copy(tmp_path, "full", raw))
    containers = [(doc["metadata"]["labels"]["agent-id"], container)
                  for doc in rendered.objects if doc["kind"] == "Deployment"
                  for container in doc["spec"]["template"]["spec"]["containers"]]
    agents = {agent.agent_id: agent for agent in system.agents}
    checked = 0
    for agent_id, container in containers:
        agent = agents.get(agent_id)
        if agent is None:
            continue  # the monitoring pod: the program's own workload, not a user's agent
        own_env = {*agent.environment, *agent.secret_environment}
        own_paths = {file.path for file in agent.secret_files}
        reserved_env = generated_env(system, agent)
        mounts = generated_mounts(system, agent)
        for entry in container["env"]:
            if entry["name"] not in own_env:
                assert entry["name"] in reserved_env, (agent_id, entry)
                checked += 1
        for mount in container["volumeMounts"]:
            if mount["mountPath"] not in own_paths:
                assert any(mount["mountPath"] == path or mount["mountPath"].startswith(f"{path}/")
                           for path in mounts), (agent_id, mount, mounts)
                checked += 1
    assert checked > 20 and {agent_id for agent_id, _ in containers} >= set(agents)
