"""KEDA ScaledObject and TriggerAuthentication of an agent (keda.sh/v1alpha1). Pure builders.

KEDA creates and owns the HPA of the Deployment it scales (the program then makes none): on the lag of the
agent's consumer group on each topic it consumes (replicas = total lag / threshold, the seed's 10,000 by default), or on a Prometheus query
(the seed's `active_tasks_per_pod`). The HPA behaviour is the agent's (`scaling.behavior`).
"""

from __future__ import annotations

from typing import Any

from ..config.agent import AgentConfig
from ..config.backbone import KAFKA_CA_KEY, consumer_group, kafka_user_name
from ..config.labels import CONTAINER_NAME, agent_labels, object_meta
from ..config.lookups import hpa_behavior
from ..config.messaging import KafkaAuthentication
from ..config.system import SystemConfig

API_VERSION = "keda.sh/v1alpha1"


def trigger_authentication_name(agent: AgentConfig) -> str:
    return f"{agent.agent_id}-kafka"


def trigger_authentication(system: SystemConfig, agent: AgentConfig) -> dict[str, Any]:
    """How KEDA reads the agent's lag: as the agent's own Kafka user (its Secret; the user name from the
    agent container's environment)."""
    kafka = system.messaging.kafka
    assert kafka is not None
    user = kafka_user_name(system, agent)
    if kafka.authentication is KafkaAuthentication.SCRAM:
        secrets = [{"parameter": "password", "name": user, "key": "password"}]
        env = [{"parameter": "username", "name": "KAFKA_SASL_USERNAME", "containerName": CONTAINER_NAME}]
    else:
        secrets = [{"parameter": "cert", "name": user, "key": "user.crt"},
                   {"parameter": "key", "name": user, "key": "user.key"}]
        env = []
    if kafka.ca_secret is not None:
        secrets.append({"parameter": "ca", "name": kafka.ca_secret, "key": KAFKA_CA_KEY})
    spec: dict[str, Any] = {"secretTargetRef": secrets}
    if env:
        spec["env"] = env
    return {"apiVersion": API_VERSION, "kind": "TriggerAuthentication",
            "metadata": object_meta(system, trigger_authentication_name(agent), system.agent_namespace(agent),
                                    agent_labels(system, agent)),
            "spec": spec}


def _triggers(system: SystemConfig, agent: AgentConfig) -> list[dict[str, Any]]:
    scaling = agent.scaling.event_driven
    assert scaling is not None
    if scaling.trigger == "prometheus":
        query = scaling.query.replace("NAMESPACE", system.agent_namespace(agent)).replace("AGENT", agent.agent_id)
        return [{"type": "prometheus", "metadata": {"serverAddress": scaling.prometheus_url, "query": query,
                                                    "threshold": f"{scaling.threshold:g}"}}]
    kafka = system.messaging.kafka
    assert kafka is not None
    security = ({"sasl": "scram_sha512", "tls": "enable"} if kafka.authentication is KafkaAuthentication.SCRAM
                else {"sasl": "none", "tls": "enable"})
    threshold = scaling.lag_threshold or kafka.consumer_lag_threshold
    return [{"type": "kafka", "name": f"lag-{index}",
             "metadata": {"bootstrapServers": kafka.bootstrap, "consumerGroup": consumer_group(agent),
                          "topic": topic, "lagThreshold": str(threshold),
                          "activationLagThreshold": "0", **security},
             "authenticationRef": {"name": trigger_authentication_name(agent)}}
            for index, topic in enumerate(agent.consumes)]


def scaled_object(system: SystemConfig, agent: AgentConfig, deployment: str) -> dict[str, Any]:
    """The agent's ScaledObject over its serving Deployment `deployment`."""
    scaling = agent.scaling
    event_driven = scaling.event_driven
    assert event_driven is not None
    metadata = object_meta(system, agent.agent_id, system.agent_namespace(agent), agent_labels(system, agent))
    # An agent moving from our HPA to KEDA: KEDA takes that HPA over (same name) instead of refusing to scale a
    # Deployment another HPA manages.
    metadata["annotations"] = {"scaledobject.keda.sh/transfer-hpa-ownership": "true"}
    return {"apiVersion": API_VERSION, "kind": "ScaledObject",
            "metadata": metadata,
            "spec": {"scaleTargetRef": {"name": deployment},
                     "minReplicaCount": 0 if event_driven.scale_to_zero else scaling.min_replicas,
                     "maxReplicaCount": scaling.max_replicas,
                     "pollingInterval": event_driven.polling_interval,
                     "cooldownPeriod": event_driven.cooldown_period,
                     "advanced": {"horizontalPodAutoscalerConfig": {"name": deployment,
                                                                    "behavior": hpa_behavior(agent)}},
                     "triggers": _triggers(system, agent)}}
