"""Run the policy pack's Pulumi validators over Kubernetes objects, as `pulumi preview` would; run with the
pack's own Python (its pins, protobuf 5, clash with the project's).

    <policy venv>/bin/python tests/policy/run_pack.py < {"objects": [...], "production": bool}

prints the violations as a JSON list.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "policy"))

from pulumi_policy import StackValidationPolicy  # noqa: E402

from pack import POLICIES  # noqa: E402


@dataclass
class Args:
    """What the Pulumi policy runtime hands a resource validation (the fields the pack reads)."""

    resource_type: str
    props: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)

    def get_config(self) -> dict[str, Any]:
        return self.config


@dataclass
class StackArgs:
    resources: list[Args]


def resource_type(obj: dict[str, Any]) -> str:
    group, _, version = obj["apiVersion"].rpartition("/")
    return f"kubernetes:{group or 'core'}/{version}:{obj['kind']}"


def main() -> None:
    request = json.load(sys.stdin)
    found: list[str] = []
    resources = [Args(resource_type(obj), obj, {"production": request["production"]}) for obj in request["objects"]]
    for policy in POLICIES:
        if isinstance(policy, StackValidationPolicy):
            policy.validate(StackArgs(resources), lambda message, urn: found.append(message))
        else:
            for args in resources:
                policy.validate(args, lambda message, urn: found.append(message))
    json.dump(found, sys.stdout)


if __name__ == "__main__":
    main()
