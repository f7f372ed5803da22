"""The policy pack (policy/), run offline: the rendered stacks pass every rule, and each bad object is
refused by the rule that should refuse it, through the same validators `pulumi preview` calls."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from components.render.cli import render_stack
from policy import pack, rules

from ..conftest import STACKS


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


def violations(objects: list[dict[str, Any]], production: bool = False) -> list[str]:
    """Every violation the pack reports for these objects, as `pulumi preview` would run it."""
    found: list[str] = []
    report = lambda message, urn: found.append(message)  # noqa: E731
    resources = [Args(resource_type(obj), obj, {"production": production}) for obj in objects]
    for policy in pack.POLICIES:
        if hasattr(policy, "validate") and isinstance(policy, pack.StackValidationPolicy):
            policy.validate(StackArgs(resources), report)
        else:
            for args in resources:
                policy.validate(args, report)
    return found


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {stack: render_stack(stack).objects for stack in STACKS}


@pytest.mark.parametrize("stack", STACKS)
def test_the_rendered_stacks_pass_every_rule(rendered: dict[str, list[dict[str, Any]]], stack: str) -> None:
    assert violations(rendered[stack], production=stack == "prod") == []


def deployment_of(rendered: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return copy.deepcopy(next(obj for obj in rendered["dev"] if obj["kind"] == "Deployment"))


def test_privileged_pods_and_host_namespaces_are_refused(rendered: dict[str, list[dict[str, Any]]]) -> None:
    bad = deployment_of(rendered)
    pod = bad["spec"]["template"]["spec"]
    pod["hostNetwork"] = True
    pod["containers"][0]["securityContext"].update(privileged=True, allowPrivilegeEscalation=True,
                                                   capabilities={"add": ["SYS_ADMIN"]})
    found = rules.privileged(bad)
    assert len(found) == 4 and "host's Network namespace" in found[0]
    assert any("privileged" in message for message in violations([bad]))


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
    stray = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug", "namespace": "scratch"},
             "spec": {"containers": [{"name": "shell", "image": "busybox"}]}}
    assert any("Pod scratch/debug is not selected" in message for message in violations([*rendered["dev"], stray]))
