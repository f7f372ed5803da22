"""Validate a custom resource against its CRD schema from ../shared/schemas/crds."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonschema
import pytest

from .conftest import CRD_SCHEMAS


@lru_cache(maxsize=None)
def _validator(group: str, kind: str, version: str) -> Any:
    schema = json.loads((CRD_SCHEMAS / group / f"{kind.lower()}_{version}.json").read_text())
    # The schemas are converted from Go CRDs: some `pattern`s use Go-only regex syntax (e.g. inline
    # `(?i)`), which fails jsonschema's meta-check of the schema itself. Validate instances without it.
    return jsonschema.validators.validator_for(schema)(schema)


def validate_custom_resource(obj: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError if `obj` does not match its CRD; skip when the schemas are absent."""
    if not CRD_SCHEMAS.is_dir():
        pytest.skip(f"CRD schemas not found at {CRD_SCHEMAS} (set CRD_SCHEMA_DIR)")
    group, version = obj["apiVersion"].split("/")
    path = CRD_SCHEMAS / group / f"{obj['kind'].lower()}_{version}.json"
    assert path.exists(), f"no schema for {obj['apiVersion']} {obj['kind']}"
    _validator(group, obj["kind"], version).validate(obj)
