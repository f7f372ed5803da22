"""Every object the render produces is valid: native kinds against Kubernetes' own schemas
(kubernetes-validate, strict, 1.30 to the newest it knows), custom resources against their CRDs."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from kubernetes_validate.utils import latest_version

from components.render.cli import Rendered, render_stack

from ..conftest import STACKS
from ..crd import CelRuleViolation, validate_custom_resource

FIRST_VERSION = (1, 30)


def kubernetes_versions() -> list[str]:
    newest = tuple(int(part) for part in latest_version().split(".")[:2])
    return [f"1.{minor}.0" for minor in range(FIRST_VERSION[1], newest[1] + 1)]


def is_native(obj: dict[str, Any]) -> bool:
    group = obj["apiVersion"].rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


@pytest.fixture(scope="module")
def rendered() -> dict[str, Rendered]:
    return {stack: render_stack(stack) for stack in STACKS}


def test_versions_cover_130_to_newest() -> None:
    versions = kubernetes_versions()
    assert versions[0] == "1.30.0" and len(versions) >= 2


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("version", kubernetes_versions())
def test_native_objects_are_valid_kubernetes(rendered: dict[str, Rendered], stack: str, version: str) -> None:
    natives = [obj for obj in rendered[stack].objects if is_native(obj)]
    assert natives
    errors = []
    for obj in natives:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {error.message} at {list(error.path)}")
    assert errors == []


@pytest.mark.parametrize("stack", STACKS)
def test_custom_resources_match_their_crds(rendered: dict[str, Rendered], stack: str) -> None:
    customs = [obj for obj in rendered[stack].objects if not is_native(obj)]
    if not customs:
        pytest.skip(f"stack {stack} renders no custom resources")
    for obj in customs:
        validate_custom_resource(obj)


def test_the_validator_rejects_a_broken_object(rendered: dict[str, Rendered]) -> None:
    """Guards the check itself: a misspelt field must fail strict validation."""
    deployment = next(obj for obj in rendered["dev"].objects if obj["kind"] == "Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_versions()[0], strict=True)



def test_the_cel_rules_of_the_crds_are_evaluated(rendered: dict[str, Rendered]) -> None:
    """Guards the CEL check: objects that pass the OpenAPI schema but break a CRD's CEL rule (what the API
    server refuses) fail. Each mutation breaks one rule of the prod render's objects."""
    objects = rendered["prod"].objects
    rule = next(obj for obj in objects if obj["kind"] == "DestinationRule")
    entry = next(obj for obj in objects if obj["kind"] == "ServiceEntry")
    policy = next(obj for obj in objects if obj["kind"] == "AuthorizationPolicy" and "selector" in obj["spec"])
    breaks: list[tuple[dict[str, Any], str]] = []
    zero_interval = json.loads(json.dumps(rule))
    zero_interval["spec"]["trafficPolicy"]["outlierDetection"]["interval"] = "0s"  # duration(self) >= 1ms
    breaks.append((zero_interval, r"outlierDetection\.interval: .*duration\(self\) >= duration\('1ms'\)"))
    every_host = json.loads(json.dumps(entry))
    every_host["spec"]["hosts"] = ["*"]  # self != "*"
    breaks.append((every_host, r'hosts\[0\]: .*self != "\*"'))
    two_targets = json.loads(json.dumps(policy))
    two_targets["spec"]["targetRefs"] = [{"group": "", "kind": "Service", "name": "x"}]  # selector or targetRefs
    breaks.append((two_targets, r"<object>\.spec: .*has\(self\.targetRefs\)"))
    for obj, rule in breaks:
        with pytest.raises(CelRuleViolation, match=rule):
            validate_custom_resource(obj)
