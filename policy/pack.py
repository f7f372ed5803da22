"""The policy pack's policies: the rules (rules.py) as Pulumi resource and stack validations."""

from __future__ import annotations

from typing import Any

from pulumi_policy import (EnforcementLevel, PolicyConfigSchema, ReportViolation, ResourceValidationArgs,
                           ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy)

try:
    from . import rules
except ImportError:  # loaded by the Pulumi policy runtime as a top-level module
    import rules  # type: ignore[no-redef]

KUBERNETES = "kubernetes:"
PRODUCTION_SCHEMA = PolicyConfigSchema(properties={"production": {"type": "boolean", "default": False}})


def _object(args: ResourceValidationArgs) -> dict[str, Any] | None:
    return args.props if args.resource_type.startswith(KUBERNETES) else None


def _report(found: list[str], report: ReportViolation) -> None:
    for message in found:
        report(message, None)


def _no_privileged(args: ResourceValidationArgs, report: ReportViolation) -> None:
    obj = _object(args)
    if obj is not None:
        _report(rules.privileged(obj), report)


def _pinned_in_production(args: ResourceValidationArgs, report: ReportViolation) -> None:
    obj = _object(args)
    if obj is not None:
        _report(rules.unpinned_images(obj, bool(args.get_config().get("production", False))), report)


def _limits(args: ResourceValidationArgs, report: ReportViolation) -> None:
    obj = _object(args)
    if obj is not None:
        _report(rules.missing_limits(obj), report)


def _isolated(args: StackValidationArgs, report: ReportViolation) -> None:
    objects = [resource.props for resource in args.resources if resource.resource_type.startswith(KUBERNETES)]
    _report(rules.unisolated_workloads(objects), report)


POLICIES = [
    ResourceValidationPolicy(name="no-privileged-pods", description=rules.privileged.__doc__ or "",
                             validate=_no_privileged, enforcement_level=EnforcementLevel.MANDATORY),
    ResourceValidationPolicy(name="images-pinned-in-production", description=rules.unpinned_images.__doc__ or "",
                             validate=_pinned_in_production, enforcement_level=EnforcementLevel.MANDATORY,
                             config_schema=PRODUCTION_SCHEMA),
    ResourceValidationPolicy(name="resource-limits-set", description=rules.missing_limits.__doc__ or "",
                             validate=_limits, enforcement_level=EnforcementLevel.MANDATORY),
    StackValidationPolicy(name="default-deny-network-policy", description=rules.unisolated_workloads.__doc__ or "",
                          validate=_isolated, enforcement_level=EnforcementLevel.MANDATORY),
]
