"""What the program itself puts into an agent's container: environment variables and mounted paths.

A user's variable of the same name would be silently replaced (or replace ours), and a user's file on
or around one of our mounts gives the API server a duplicate mountPath; so the config checks refuse
these names at the user's field. The backbone's names come from `backbone.py`, the very functions the
pod builder calls; the names the pod builder writes itself are listed here, and
`tests/config/test_hardening.py` renders a system and fails if the builders emit one not reserved.
"""

from __future__ import annotations

import posixpath

from .agent import AgentConfig
from .backbone import backbone_env, backbone_secret_files
from .system import SystemConfig

# The pod builder's own: identity and the downward API (every agent), the OpenTelemetry exporter
# (every agent while the monitoring service runs; reserved always, so turning monitoring on breaks nothing).
EVERY_AGENT_ENV = ("AGENT_ID", "AGENT_ROLE", "NAMESPACE", "POD_NAME", "POD_IP", "NODE_NAME",
                   "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_SERVICE_NAME",
                   "OTEL_EXPORTER_OTLP_HEADERS")
TMP_DIR = "/tmp"  # the writable emptyDir of every agent (the root filesystem is read-only)
# Where the kubelet mounts the Kubernetes API token when automount_token is on.
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def backbone_env_origins(system: SystemConfig, agent: AgentConfig) -> dict[str, str]:
    """The Kafka and data-store variables the program sets for this agent -> why (for the message)."""
    kafka_only = backbone_env(system, agent.model_copy(update={"uses": []}))
    return {name: ("agents that use Kafka (messaging.kafka, consumes, produces)" if name in kafka_only
                   else f"agents that use data store '{_store_of(system, agent, name)}' (uses)")
            for name in backbone_env(system, agent)}


def _store_of(system: SystemConfig, agent: AgentConfig, name: str) -> str:
    """The store among the agent's whose variables include `name`."""
    for store in agent.uses:
        alone = agent.model_copy(update={"uses": [store], "consumes": [], "produces": []})
        if name in backbone_env(system, alone):
            return store
    raise LookupError(name)  # backbone_env only adds Kafka's and the stores' names


def generated_env(system: SystemConfig, agent: AgentConfig) -> set[str]:
    """Every environment variable name the program sets in this agent's container."""
    return {*EVERY_AGENT_ENV, *backbone_env(system, agent)}


def mount_origins(system: SystemConfig, agent: AgentConfig) -> dict[str, str]:
    """Directories the program (or Kubernetes, on its behalf) mounts into this agent's container -> who
    mounts what there (for the message).

    The backbone's credential files are mounted one by one, but their directory is the program's: the
    agent is told to read its credentials there (STORE_<NAME>_CREDENTIALS_DIR lists it whole).
    """
    mounts = {TMP_DIR: "the program mounts the agent's writable scratch space"}
    kafka_files = {file.path for file in backbone_secret_files(system, agent.model_copy(update={"uses": []}))}
    for file in backbone_secret_files(system, agent):
        directory = posixpath.dirname(file.path)
        mounts[directory] = ("the program mounts the agent's Kafka credentials" if file.path in kafka_files
                             else f"the program mounts the credentials of data store "
                                  f"'{posixpath.basename(directory)}'")
    if agent.service_account.automount_token:
        mounts[SERVICE_ACCOUNT_DIR] = "Kubernetes mounts the agent's API token (automount_token)"
    return mounts


def generated_mounts(system: SystemConfig, agent: AgentConfig) -> set[str]:
    """Every path the program mounts in this agent's container (files lie inside these directories)."""
    return set(mount_origins(system, agent))
