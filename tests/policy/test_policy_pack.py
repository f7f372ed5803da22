"""The policy pack (policy/), offline: the rendered stacks pass every rule, and each bad object is refused
by the rule that should refuse it. The rules (policy/rules.py) run here; the Pulumi validators that
`pulumi preview` calls (policy/pack.py) run in the pack's own virtualenv, which `./run test` creates
(.venv-policy, from policy/requirements.txt: pulumi-policy pins protobuf 5, the project protobuf 6)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.render.cli import render_stack
from policy import rules

from ..conftest import PROJECT_DIR, STACKS

POLICY_PYTHON = Path(os.environ.get("POLICY_PYTHON", PROJECT_DIR / ".venv-policy" / "bin" / "python"))
RUN_PACK = Path(__file__).with_name("run_pack.py")


def violations(objects: list[dict[str, Any]], production: bool = False) -> list[str]:
    return [*(message for obj in objects for message in [*rules.privileged(obj), *rules.missing_limits(obj),
                                                        *rules.unpinned_images(obj, production)]),
            *rules.unisolated_workloads(objects)]


def pack_violations(objects: list[dict[str, Any]], production: bool = False) -> list[str]:
    """What the Pulumi validators report, run by the pack's own Python."""
    if not POLICY_PYTHON.exists():
        pytest.skip(f"the policy pack's virtualenv is not at {POLICY_PYTHON} (./run test creates it; or set "
                    f"POLICY_PYTHON)")
    run = subprocess.run([str(POLICY_PYTHON), str(RUN_PACK)], input=json.dumps({"objects": objects,
                                                                                  "production": production}),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {stack: render_stack(stack).objects for stack in STACKS}


@pytest.mark.parametrize("stack", STACKS)
def test_the_rendered_stacks_pass_every_rule(rendered: dict[str, list[dict[str, Any]]], stack: str) -> None:
    assert violations(rendered[stack], production=stack == "prod") == []


def deployment_of(rendered: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return copy.deepcopy(next(obj for obj in rendered["dev"] if obj["kind"] == "Deployment"))


def privileged_deployment(rendered: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    bad = deployment_of(rendered)
    pod = bad["spec"]["template"]["spec"]
    pod["hostNetwork"] = True
    pod["containers"][0]["securityContext"].update(privileged=True, allowPrivilegeEscalation=True,
                                                   capabilities={"add": ["SYS_ADMIN"]})
    return bad


def test_privileged_pods_and_host_namespaces_are_refused(rendered: dict[str, list[dict[str, Any]]]) -> None:
    found = rules.privileged(privileged_deployment(rendered))
    assert len(found) == 4 and "host's Network namespace" in found[0]


def test_unpinned_images_are_refused_in_production_only(rendered: dict[str, list[dict[str, Any]]]) -> None:
    bad = deployment_of(rendered)
    assert any("not pinned by digest" in message for message in violations([bad], production=True))
    assert not any("not pinned by digest" in message for message in violations([bad], production=False))


def test_containers_without_limits_are_refused(rendered: dict[str, list[dict[str, Any]]]) -> None:
    bad = deployment_of(rendered)
    del bad["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
    assert rules.missing_limits(bad) == [f"Deployment {bad['metadata']['namespace']}/{bad['metadata']['name']} "
                                         f"container 'agent' sets no limits.memory"]


def test_a_workload_without_a_default_deny_is_refused(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = [obj for obj in rendered["dev"] if obj["kind"] != "NetworkPolicy"]
    found = rules.unisolated_workloads(objects)
    assert len(found) == len([obj for obj in objects if obj["kind"] == "Deployment"])


def test_the_pulumi_validators_agree(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """The same verdicts through pulumi-policy's validators, as `pulumi preview --policy-pack policy` runs them."""
    assert pack_violations(rendered["prod"], production=True) == []
    stray = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug", "namespace": "scratch"},
             "spec": {"containers": [{"name": "shell", "image": "busybox"}]}}
    found = pack_violations([*rendered["dev"], privileged_deployment(rendered), stray], production=True)
    assert any("is privileged" in message for message in found)
    assert any("'busybox', not pinned by digest" in message for message in found)
    assert any("container 'shell' sets no requests.cpu" in message for message in found)
    assert any("Pod scratch/debug is not selected" in message for message in found)
