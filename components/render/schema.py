"""JSON Schema of `Pulumi.<stack>.yaml` (editor validation) and the Markdown config reference.

    python -m components.render.schema --out schema/stack-config.schema.json --reference docs/config.md

Editors with the YAML language server pick it up from the first line of a stack file:
`# yaml-language-server: $schema=./schema/stack-config.schema.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..config import CONFIG_KEY, PROJECT, SystemConfig
from ..config.stack_keys import REGION_KEY, SYSTEM_FILE_KEY

# The hand-written account of the defaults taken from the seeds, placed at the top of the reference.
SEED_DEFAULTS = Path(__file__).resolve().parents[2] / "docs" / "seed-defaults.md"


def stack_file_schema() -> dict[str, Any]:
    """Schema of a whole stack file: `config:` holding `multi-agent-system:system`."""
    system = SystemConfig.model_json_schema(mode="validation")
    definitions = system.pop("$defs", {})
    definitions["SystemConfig"] = system
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Pulumi.<stack>.yaml of {PROJECT}",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": {f"{PROJECT}:{CONFIG_KEY}": {"$ref": "#/$defs/SystemConfig"},
                               f"{PROJECT}:{SYSTEM_FILE_KEY}": {"type": "string",
                                                               "description": "A YAML file in the project holding "
                                                                              "the system (shared by stacks)."},
                               f"{PROJECT}:{REGION_KEY}": {"$ref": "#/$defs/RegionConfig"}},
            },
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
            "encryptionsalt": {"type": "string"},
            "environment": {},
        },
        "$defs": definitions,
    }


def render_schema() -> str:
    """The schema as the file content that is committed (stable key order, trailing newline)."""
    return json.dumps(stack_file_schema(), indent=2, sort_keys=True) + "\n"


def render_reference() -> str:
    """The config reference in Markdown: one table per model, fields with type, default, meaning."""
    lines = ["# Config reference", "",
             f"Everything under `{PROJECT}:{CONFIG_KEY}` in `Pulumi.<stack>.yaml`. Generated from the config "
             "model by `./run schema` (with docs/seed-defaults.md); do not edit by hand.", "",
             SEED_DEFAULTS.read_text().strip(), ""]
    seen: set[type[BaseModel]] = set()
    pending: list[tuple[str, type[BaseModel]]] = [("system", SystemConfig)]
    while pending:
        path, model = pending.pop(0)
        if model in seen:
            continue
        seen.add(model)
        lines += [f"## `{path}` ({model.__name__})", "", (model.__doc__ or "").strip(), "",
                  "| field | type | default | meaning |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            default = "required" if field.is_required() else _shown_default(field)
            lines.append(f"| `{name}` | {_type_name(field.annotation)} | {default} | {field.description} |")
            child = f"{path}.{name}" if path != "system" else name
            for nested in _models_in(field.annotation):
                pending.append((child + _container_suffix(field.annotation), nested))
        lines.append("")
    return "\n".join(lines)


def _container_suffix(annotation: Any) -> str:
    """`[]` for list items, `.<name>` for dict values, so paths read like the YAML they describe."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _container_suffix(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return "".join(_container_suffix(arg) for arg in typing.get_args(annotation) if arg is not type(None))[:2]
    return {list: "[]", dict: ".<name>"}.get(origin, "")


def _shown_default(field: Any) -> str:
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, Enum):
        value = value.value
    return f"`{json.dumps(value, default=str)}`"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " \\| ".join(f"`{member.value}`" for member in annotation)
    if isinstance(annotation, type):
        return annotation.__name__
    origin = typing.get_origin(annotation)
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        optional = len(args) < len(typing.get_args(annotation))
        return " \\| ".join(_type_name(arg) for arg in args) + (" \\| null" if optional else "")
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_type_name(arg) for arg in args)}]"
    return str(annotation)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.render.schema", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the JSON Schema here instead of standard output")
    parser.add_argument("--reference", type=Path, help="also write the Markdown config reference here")
    args = parser.parse_args(argv)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(render_schema())
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(render_schema())
    if args.reference:
        args.reference.parent.mkdir(parents=True, exist_ok=True)
        args.reference.write_text(render_reference())
        print(f"wrote {args.reference}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
