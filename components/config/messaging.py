"""The Kafka backbone (seed 004) and the data layer agents reach: settings of the system, and what each
agent consumes, produces and uses.

Kafka is a Strimzi cluster the platform runs: the program declares the topics (`KafkaTopic`, for the
Topic Operator) and one `KafkaUser` per agent with ACLs from what the agent consumes and produces (for
the User Operator, which writes the user's credentials into a Secret of the same name beside it).
The data stores are connections (host, port, the Secret holding the credentials); a PostgreSQL store may
also be a CloudNativePG `Cluster` the program declares.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from .types import DNS1123_SUBDOMAIN, Memory, Namespace, PortNumber, StrictModel

MAX_TOPIC_NAME_LENGTH = 249  # Kafka's own limit (a DNS subdomain may have 253)
SECRET_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
DAY_MS = 86_400_000


def _topic_name(value: str) -> str:
    """A topic name Kafka and Strimzi both accept: the KafkaTopic is named after its topic (metadata.name),
    so it must also be a Kubernetes DNS subdomain (no '..', '_' or upper case)."""
    if len(value) > MAX_TOPIC_NAME_LENGTH or not DNS1123_SUBDOMAIN.match(value):
        raise ValueError(f"{value!r} is not a valid topic name: Strimzi names the KafkaTopic after it, so it must "
                         f"be a DNS subdomain of at most {MAX_TOPIC_NAME_LENGTH} characters: lowercase letters, "
                         f"digits, '-' and '.', each dot-separated part starting and ending with a letter or digit "
                         f"(e.g. 'agent-tasks' or 'agent.tasks')")
    return value


KafkaTopicName = Annotated[str, AfterValidator(_topic_name)]


class CleanupPolicy(str, Enum):
    DELETE = "delete"
    COMPACT = "compact"
    COMPACT_DELETE = "compact,delete"


class KafkaTopicConfig(StrictModel):
    """One topic (a Strimzi KafkaTopic)."""

    name: KafkaTopicName = Field(json_schema_extra={"pattern": DNS1123_SUBDOMAIN.pattern,
                                                    "maxLength": MAX_TOPIC_NAME_LENGTH},
                                 description="Topic name; also the KafkaTopic's name, so a DNS subdomain "
                                             "(lowercase letters, digits, '-', '.').")
    partitions: int = Field(ge=1, le=10_000, description="Partitions (the most consumers that share it).")
    replicas: int = Field(3, ge=1, le=32767, description="Replication factor (the seed's 3).")
    retention_ms: int | None = Field(None, ge=-1, description="retention.ms; null: the broker's default.")
    cleanup_policy: CleanupPolicy | None = Field(None, description="cleanup.policy; null: the broker's default.")
    min_insync_replicas: int | None = Field(2, ge=1, description="min.insync.replicas (with acks=all, the seed's "
                                                                "producer setting, writes survive one broker).")


def _seed_topics() -> list[KafkaTopicConfig]:
    return [KafkaTopicConfig(name="agent-tasks", partitions=50),
            KafkaTopicConfig(name="agent-communication", partitions=30),
            KafkaTopicConfig(name="agent-status", partitions=20, retention_ms=DAY_MS,
                             cleanup_policy=CleanupPolicy.DELETE),
            KafkaTopicConfig(name="agent-dlq", partitions=10)]


class KafkaAuthentication(str, Enum):
    SCRAM = "scram-sha-512"
    TLS = "tls"


class KafkaConfig(StrictModel):
    """The Strimzi Kafka cluster agents use, and its topics."""

    cluster: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63,
                         description="Name of the Strimzi `Kafka` (the `strimzi.io/cluster` label of topics and "
                                     "users).")
    namespace: Namespace = Field("kafka", description="Namespace of the Kafka cluster and its Topic Operator "
                                                      "(the KafkaTopics go here).")
    users_namespace: Namespace | None = Field(None, description="Namespace the User Operator watches (the "
                                                                "KafkaUsers go here, and it writes each user's "
                                                                "Secret beside them); null: `namespace`. Agents in "
                                                                "other namespaces need a copy of their Secret "
                                                                "(External Secrets, reflector).")
    bootstrap: str = Field(pattern=r"^[a-z0-9.-]+:[0-9]{1,5}$",
                           description="Bootstrap address agents connect to, host:port, e.g. "
                                       "my-cluster-kafka-bootstrap.kafka.svc:9093.")
    authentication: KafkaAuthentication = Field(KafkaAuthentication.SCRAM,
                                                description="How agents authenticate (the listener's): SCRAM-SHA-512 "
                                                            "over TLS, or mutual TLS.")
    ca_secret: str | None = Field(None, pattern=SECRET_NAME,
                                  description="Secret in each Kafka-using agent namespace holding the cluster CA "
                                              "(`ca.crt`, a copy of <cluster>-cluster-ca-cert); null: the "
                                              "listener's certificate is publicly trusted.")
    topics: list[KafkaTopicConfig] = Field(default_factory=_seed_topics, description="Topics (the seed's four "
                                                                                     "by default).")
    consumer_lag_threshold: int = Field(10_000, ge=1, description="Lag per consumer replica KEDA aims for (it runs "
                                                                  "total lag / threshold replicas; the seed's "
                                                                  "10,000). The lag alert fires beyond threshold "
                                                                  "x the consumer's max_replicas.")
    dlq_topic: str | None = Field("agent-dlq", description="The dead-letter topic whose growth alerts; null for "
                                                           "none.")

    @property
    def user_namespace(self) -> str:
        return self.users_namespace or self.namespace


class StoreKind(str, Enum):
    REDIS = "redis"
    DOCUMENT = "document"
    POSTGRES = "postgres"


DEFAULT_PORTS = {StoreKind.REDIS: 6379, StoreKind.DOCUMENT: 27017, StoreKind.POSTGRES: 5432}


class CloudNativePG(StrictModel):
    """A CloudNativePG `Cluster` for a PostgreSQL store (the seed's replicated relational layer)."""

    instances: int = Field(3, ge=1, le=9, description="Instances: a primary and replicas (the seed's replication).")
    synchronous_replicas: int = Field(1, ge=0, description="Replicas that confirm each commit (0: asynchronous). "
                                                           "Commits wait for them only while a spare replica "
                                                           "remains (dataDurability required); with none spare, "
                                                           "preferred (writes go on through an outage).")
    cpu: str = Field("1", description="CPU request and limit of each instance.")
    memory: Memory = Field("2Gi", description="Memory request and limit of each instance.")
    storage_size: Memory = Field("10Gi", description="Volume of each instance.")
    storage_class: str | None = Field(None, description="StorageClass; null: the cluster's default.")
    image_name: str | None = Field(None, description="PostgreSQL image; null: the operator's default.")
    operator_namespace: Namespace = Field("cnpg-system", description="Namespace of the CloudNativePG operator "
                                                                     "(it reaches the instances).")


class DataStore(StrictModel):
    """A store agents use: where it is and which Secret (in each using agent's namespace) holds its credentials."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40, description="Store name.")
    kind: StoreKind = Field(description="redis (cache), document (e.g. MongoDB) or postgres (relational).")
    host: str | None = Field(None, pattern=r"^[a-z0-9.-]+$", max_length=253,
                             description="Host agents connect to; null with cloudnative_pg: its read-write "
                                         "Service, <name>-rw.<namespace>.svc.")
    port: PortNumber | None = Field(None, description="Port; null: the kind's (6379, 27017, 5432).")
    namespace: Namespace | None = Field(None, description="Namespace of an in-cluster store (its Sidecar egress "
                                                          "and, for cloudnative_pg, where the Cluster goes); null: "
                                                          "outside the cluster.")
    database: str | None = Field(None, max_length=63, description="Database name, when the kind has one.")
    credentials_secret: str | None = Field(None, pattern=SECRET_NAME,
                                           description="Secret in each using agent's namespace with the "
                                                       "credentials; null with cloudnative_pg: <name>-app (the "
                                                       "operator's, in the store's namespace).")
    credential_keys: list[str] = Field(default_factory=lambda: ["username", "password"], min_length=1,
                                       description="Keys of that Secret mounted as files (never env values).")
    cloudnative_pg: CloudNativePG | None = Field(None, description="Declare the PostgreSQL store as a "
                                                                   "CloudNativePG Cluster.")

    @model_validator(mode="after")
    def _complete(self) -> DataStore:
        if self.cloudnative_pg is not None:
            if self.kind is not StoreKind.POSTGRES:
                raise ValueError("cloudnative_pg is for kind: postgres")
            if self.namespace is None:
                raise ValueError("cloudnative_pg needs the namespace its Cluster goes in")
        elif self.host is None:
            raise ValueError("host is required (or declare a postgres store with cloudnative_pg)")
        elif self.credentials_secret is None:
            raise ValueError("credentials_secret is required: the Secret with the store's credentials")
        return self

    @property
    def address(self) -> str:
        return self.host or f"{self.name}-rw.{self.namespace}.svc"

    @property
    def port_number(self) -> int:
        return self.port or DEFAULT_PORTS[self.kind]

    @property
    def secret(self) -> str:
        return self.credentials_secret or f"{self.name}-app"


class EventDrivenScaling(StrictModel):
    """KEDA scales the agent instead of an HPA: on its consumer lag, or on a Prometheus query."""

    trigger: Literal["kafka", "prometheus"] = Field("kafka", description="kafka: lag of the agent's consumer "
                                                                         "group on each topic it consumes; "
                                                                         "prometheus: a query (the seed's "
                                                                         "active_tasks_per_pod).")
    lag_threshold: int | None = Field(None, ge=1, description="Lag per replica (KEDA runs total lag / threshold "
                                                              "replicas); null: messaging.kafka.consumer_lag_threshold.")
    scale_to_zero: bool = Field(False, description="Down to no replicas while there is nothing to consume "
                                                   "(the first message waits for a pod to start).")
    prometheus_url: str = Field("http://prometheus-operated.monitoring.svc:9090",
                                description="Prometheus KEDA queries (prometheus trigger).")
    query: str = Field('sum(active_tasks_per_pod{namespace="NAMESPACE", agent_id="AGENT"})',
                       max_length=2000, description="Query of the prometheus trigger (NAMESPACE and AGENT are "
                                                    "replaced).")
    threshold: float = Field(100, gt=0, description="Target value per replica of the query (the seed's 100).")
    polling_interval: int = Field(15, ge=1, description="Seconds between KEDA's checks.")
    cooldown_period: int = Field(300, ge=0, description="Seconds of nothing to do before scaling to zero.")


class MessagingConfig(StrictModel):
    """The message backbone agents share."""

    kafka: KafkaConfig | None = Field(None, description="The Strimzi Kafka cluster and its topics; null for none.")


class DataConfig(StrictModel):
    """The data layer agents use (cache, document store, relational database)."""

    stores: list[DataStore] = Field(default_factory=list, description="Stores agents may use (`agents[].uses`).")

    def store(self, name: str) -> DataStore | None:
        return next((store for store in self.stores if store.name == name), None)
