"""Validate a custom resource against its CRD schema from ../shared/schemas/crds: the OpenAPI schema and its
CEL rules (`x-kubernetes-validations`, see cel_rules.py), as the API server does."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonschema
import pytest

from .cel_rules import cel_violations
from .conftest import CRD_SCHEMAS


def go_pattern(pattern: str) -> str:
    """A Go regular expression in Python's syntax: Go's `(?i)` inside a group (case-insensitive to the group's
    end) becomes Python's scoped `(?i:...)`; Python refuses global flags anywhere but at the start."""
    while (start := pattern.find("(?i)", 1)) != -1:
        depth, end = 0, start + 4
        while end < len(pattern) and not (pattern[end] == ")" and depth == 0 and pattern[end - 1] != "\\"):
            depth += {"(": 1, ")": -1}.get(pattern[end], 0) if pattern[end - 1] != "\\" else 0
            end += 1
        pattern = f"{pattern[:start]}(?i:{pattern[start + 4:end]}){pattern[end:]}"
    return pattern


def _go_patterns(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: go_pattern(value) if key == "pattern" and isinstance(value, str) else _go_patterns(value)
                for key, value in node.items()}
    if isinstance(node, list):
        return [_go_patterns(item) for item in node]
    return node


@lru_cache(maxsize=None)
def _schema(group: str, kind: str, version: str) -> dict[str, Any]:
    # The schemas are converted from Go CRDs: `pattern`s are Go regular expressions (see go_pattern).
    return _go_patterns(json.loads((CRD_SCHEMAS / group / f"{kind.lower()}_{version}.json").read_text()))


@lru_cache(maxsize=None)
def _validator(group: str, kind: str, version: str) -> Any:
    schema = _schema(group, kind, version)
    return jsonschema.validators.validator_for(schema)(schema)


class CelRuleViolation(AssertionError):
    """The object breaks CEL rules of its CRD (the API server would refuse it)."""


def validate_custom_resource(obj: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError if `obj` does not match its CRD's schema, CelRuleViolation if it breaks
    the CRD's CEL rules; skip when the schemas are absent."""
    if not CRD_SCHEMAS.is_dir():
        pytest.skip(f"CRD schemas not found at {CRD_SCHEMAS} (set CRD_SCHEMA_DIR)")
    group, version = obj["apiVersion"].split("/")
    path = CRD_SCHEMAS / group / f"{obj['kind'].lower()}_{version}.json"
    assert path.exists(), f"no schema for {obj['apiVersion']} {obj['kind']}"
    _validator(group, obj["kind"], version).validate(obj)
    violations = cel_violations(_schema(group, obj["kind"], version), obj)
    if violations:
        raise CelRuleViolation(f"{obj['kind']} {obj['metadata'].get('name')}: " + "; ".join(violations))
