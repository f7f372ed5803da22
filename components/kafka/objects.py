"""KafkaTopic and KafkaUser objects (Strimzi, kafka.strimzi.io/v1beta2). Pure builders.

Topics go to the Kafka cluster's namespace (its Topic Operator's). Each agent that consumes or produces
gets a KafkaUser in the namespace the User Operator watches (`users_namespace`), which writes the user's
credentials into a Secret of the same name there; the agent mounts a copy of it in its own namespace. ACLs
allow exactly reading its consumed topics with its consumer group and writing its produced topics.
"""

from __future__ import annotations

from typing import Any

from ..config.agent import AgentConfig
from ..config.backbone import consumer_group, kafka_user_name
from ..config.labels import agent_labels, object_meta, system_labels
from ..config.messaging import KafkaConfig, KafkaTopicConfig
from ..config.system import SystemConfig

API_VERSION = "kafka.strimzi.io/v1beta2"
CLUSTER_LABEL = "strimzi.io/cluster"


def _kafka(system: SystemConfig) -> KafkaConfig:
    kafka = system.messaging.kafka
    if kafka is None:
        raise ValueError("messaging.kafka is not configured")
    return kafka


def kafka_topic(system: SystemConfig, topic: KafkaTopicConfig) -> dict[str, Any]:
    kafka = _kafka(system)
    config: dict[str, Any] = {}
    if topic.retention_ms is not None:
        config["retention.ms"] = topic.retention_ms
    if topic.cleanup_policy is not None:
        config["cleanup.policy"] = topic.cleanup_policy.value
    if topic.min_insync_replicas is not None:
        config["min.insync.replicas"] = min(topic.min_insync_replicas, topic.replicas)
    spec: dict[str, Any] = {"partitions": topic.partitions, "replicas": topic.replicas}
    if config:
        spec["config"] = config
    return {"apiVersion": API_VERSION, "kind": "KafkaTopic",
            "metadata": object_meta(system, topic.name, kafka.namespace,
                                    {**system_labels(system), CLUSTER_LABEL: kafka.cluster}),
            "spec": spec}


def _acl(kind: str, name: str, operations: list[str]) -> dict[str, Any]:
    return {"resource": {"type": kind, "name": name, "patternType": "literal"}, "operations": operations,
            "host": "*", "type": "allow"}


def kafka_user(system: SystemConfig, agent: AgentConfig) -> dict[str, Any]:
    """The agent's user: authenticated as the listener requires, allowed what its config says and no more."""
    kafka = _kafka(system)
    acls = [_acl("topic", topic, ["Read", "Describe"]) for topic in agent.consumes]
    if agent.consumes:
        acls.append(_acl("group", consumer_group(agent), ["Read"]))
    acls += [_acl("topic", topic, ["Write", "Describe"]) for topic in agent.produces]
    return {"apiVersion": API_VERSION, "kind": "KafkaUser",
            "metadata": object_meta(system, kafka_user_name(system, agent), kafka.user_namespace,
                                    {**agent_labels(system, agent), CLUSTER_LABEL: kafka.cluster}),
            "spec": {"authentication": {"type": kafka.authentication.value},
                     "authorization": {"type": "simple", "acls": acls}}}
