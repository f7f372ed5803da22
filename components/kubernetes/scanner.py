"""Reasons, written on each Deployment, for what an independent scanner would flag but the design needs.

The convention is checkov's: one `checkov.io/skip<N>: <check id>=<reason>` annotation per check on
the Deployment's own metadata (checkov ignores it on the pod template). The program writes a
reason only where it knows one: a secret an app reads from its environment, a service-account
token the config asks for (with its `automount_reason`), an image by tag outside production.
Everything else the scanner checks must pass. Pure.
"""

from __future__ import annotations

from typing import Any

from ..config.agent import AgentConfig
from ..config.system import SystemConfig

SECRETS_AS_ENV, TOKEN_MOUNTED, IMAGE_DIGEST, PULL_ALWAYS = "CKV_K8S_35", "CKV_K8S_38", "CKV_K8S_43", "CKV_K8S_15"


def skip_annotations(system: SystemConfig, agent: AgentConfig, pod_spec: dict[str, Any]) -> dict[str, str]:
    """The Deployment's annotations for checks that fail by design, each with its reason."""
    reasons: dict[str, str] = {}
    from_env = [item["name"] for container in pod_spec["containers"] for item in container.get("env", [])
                if "secretKeyRef" in item.get("valueFrom", {})]
    if from_env:
        reasons[SECRETS_AS_ENV] = (f"{', '.join(from_env)} are read from the environment by their clients (the "
                                   f"OpenTelemetry exporter reads its headers only there); other secrets are "
                                   f"mounted as files (secret_files)")
    if pod_spec.get("automountServiceAccountToken"):
        reasons[TOKEN_MOUNTED] = agent.service_account.automount_reason or "the config asks for the token"
    if agent.digest is None and not system.production:
        reasons[IMAGE_DIGEST] = "not a production stack: images by tag (production: true requires digests)"
        reasons[PULL_ALWAYS] = "not a production stack: images by tag (production: true requires digests)"
    return {f"checkov.io/skip{index}": f"{check}={reason.replace('=', ':')}"
            for index, (check, reason) in enumerate(sorted(reasons.items()), start=1)}
