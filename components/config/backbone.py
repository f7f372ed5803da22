"""What an agent gets from the Kafka backbone and the data layer, derived once for every builder: its Kafka
user, the Secrets (and keys) it mounts, the environment that tells it where things are, and which
namespaces and hosts its traffic reaches.

Credentials are always files from Secrets (never env values): `/var/run/secrets/kafka/<key>` and
`/var/run/secrets/stores/<store>/<key>`.
"""

from __future__ import annotations

import hashlib

from .agent import AgentConfig, SecretFile
from .messaging import DataStore, KafkaAuthentication
from .system import SystemConfig

KAFKA_DIR = "/var/run/secrets/kafka"
STORES_DIR = "/var/run/secrets/stores"
KAFKA_CA_KEY = "ca.crt"


def uses_kafka(agent: AgentConfig) -> bool:
    return bool(agent.consumes or agent.produces)


def kafka_user_name(system: SystemConfig, agent: AgentConfig) -> str:
    """The agent's KafkaUser and the Secret with its credentials: the User Operator writes it in the users'
    namespace, and the agent mounts a copy of the same name in its own. Named after the system too, since
    several systems may share one Kafka cluster (and its user namespace)."""
    name = f"{system.name}-{agent.agent_id}"
    return name if len(name) <= 63 else f"{name[:54]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def consumer_group(agent: AgentConfig) -> str:
    return agent.consumer_group or agent.agent_id


def _user_keys(system: SystemConfig) -> list[str]:
    kafka = system.messaging.kafka
    assert kafka is not None
    return ["password"] if kafka.authentication is KafkaAuthentication.SCRAM else ["user.crt", "user.key"]


def agent_stores(system: SystemConfig, agent: AgentConfig) -> list[DataStore]:
    """The stores the agent uses, in its order (the config checks guarantee they exist)."""
    return [store for name in agent.uses if (store := system.data.store(name)) is not None]


def backbone_secret_files(system: SystemConfig, agent: AgentConfig) -> list[SecretFile]:
    """The Secret files the agent mounts for Kafka and its stores."""
    files: list[SecretFile] = []
    kafka = system.messaging.kafka
    if kafka is not None and uses_kafka(agent):
        user = kafka_user_name(system, agent)
        files += [SecretFile(secret=user, key=key, path=f"{KAFKA_DIR}/{key}") for key in _user_keys(system)]
        if kafka.ca_secret is not None:
            files.append(SecretFile(secret=kafka.ca_secret, key=KAFKA_CA_KEY, path=f"{KAFKA_DIR}/{KAFKA_CA_KEY}"))
    for store in agent_stores(system, agent):
        files += [SecretFile(secret=store.secret, key=key, path=f"{STORES_DIR}/{store.name}/{key}")
                  for key in store.credential_keys]
    return files


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def backbone_env(system: SystemConfig, agent: AgentConfig) -> dict[str, str]:
    """Where the agent's topics and stores are (names of files, never their contents)."""
    env: dict[str, str] = {}
    kafka = system.messaging.kafka
    if kafka is not None and uses_kafka(agent):
        scram = kafka.authentication is KafkaAuthentication.SCRAM
        env.update({"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
                    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL" if scram else "SSL",
                    "KAFKA_CONSUMER_GROUP": consumer_group(agent),
                    "KAFKA_CONSUMES": ",".join(agent.consumes), "KAFKA_PRODUCES": ",".join(agent.produces)})
        if scram:
            env.update({"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": kafka_user_name(system, agent),
                        "KAFKA_SASL_PASSWORD_FILE": f"{KAFKA_DIR}/password"})
        else:
            env.update({"KAFKA_SSL_CERTIFICATE_LOCATION": f"{KAFKA_DIR}/user.crt",
                        "KAFKA_SSL_KEY_LOCATION": f"{KAFKA_DIR}/user.key"})
        if kafka.ca_secret is not None:
            env["KAFKA_SSL_CA_LOCATION"] = f"{KAFKA_DIR}/{KAFKA_CA_KEY}"
    for store in agent_stores(system, agent):
        prefix = f"STORE_{_env_name(store.name)}"
        env.update({f"{prefix}_KIND": store.kind.value, f"{prefix}_HOST": store.address,
                    f"{prefix}_PORT": str(store.port_number), f"{prefix}_CREDENTIALS_DIR": f"{STORES_DIR}/{store.name}"})
        if store.database:
            env[f"{prefix}_DATABASE"] = store.database
    return env


def kafka_hosts(system: SystemConfig, agents: list[AgentConfig]) -> list[str]:
    """Sidecar egress hosts (namespace/host) for the Kafka cluster, when any of `agents` uses it."""
    kafka = system.messaging.kafka
    return [f"{kafka.namespace}/*"] if kafka is not None and any(uses_kafka(agent) for agent in agents) else []


def store_users(system: SystemConfig, store: DataStore) -> list[AgentConfig]:
    return [agent for agent in system.agents if store.name in agent.uses]


def store_host(store: DataStore) -> str:
    """A Sidecar egress host for the store: `<namespace>/<full DNS name>` in the cluster (Istio matches service
    names in full), `./<host>` outside it (its ServiceEntry)."""
    if store.namespace is None:
        return f"./{store.address}"
    address = store.address
    if address.endswith(".svc"):
        address += ".cluster.local"
    return f"{store.namespace}/{address}"
