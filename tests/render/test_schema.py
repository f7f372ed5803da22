"""The exported JSON Schema and config reference are current, and every stack file validates against the schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from components.render.schema import render_reference, render_schema

from ..conftest import PROJECT_DIR, STACK_FILES


def test_committed_schema_is_current() -> None:
    committed = (PROJECT_DIR / "schema" / "stack-config.schema.json").read_text()
    assert committed == render_schema(), "schema is stale: run ./run schema"


def test_committed_config_reference_is_current() -> None:
    committed = (PROJECT_DIR / "docs" / "config.md").read_text()
    assert committed == render_reference(), "docs/config.md is stale: run ./run schema"
    assert "| `max_replicas` | int | `10` | HPA upper bound (seed 000's 10;" in committed


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda path: path.name)
def test_stack_files_validate_against_the_schema(stack_file: Any) -> None:
    """The stack file, and the shared system file it names, validate; a misspelt field in the system does not."""
    import jsonschema

    schema = json.loads(render_schema())
    stack = yaml.safe_load(stack_file.read_text())
    jsonschema.validate(stack, schema)
    shared = stack["config"].get("multi-agent-system:systemFile")
    if shared is None:
        document, system = stack, stack["config"]["multi-agent-system:system"]
        with_system_schema = schema
    else:  # the system file against the same definition, as the program validates it
        system = yaml.safe_load((PROJECT_DIR / shared).read_text())
        document, with_system_schema = system, {**schema, "$ref": "#/$defs/SystemConfig"}
        with_system_schema.pop("properties")
        with_system_schema.pop("type")
        jsonschema.validate(document, with_system_schema)
    system["agents"][0]["scalling"] = {}
    with pytest.raises(jsonschema.ValidationError, match="'scalling' was unexpected"):
        jsonschema.validate(document, with_system_schema)
