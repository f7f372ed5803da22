"""JSON Schema of `Pulumi.<stack>.yaml`, for editor validation and completion of the system config.

    python -m components.schema --out schema/stack-config.schema.json

Editors with the YAML language server pick it up from the first line of a stack file:
`# yaml-language-server: $schema=./schema/stack-config.schema.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .config import CONFIG_KEY, PROJECT, SystemConfig


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
                "properties": {f"{PROJECT}:{CONFIG_KEY}": {"$ref": "#/$defs/SystemConfig"}},
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.schema", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write here instead of standard output")
    args = parser.parse_args(argv)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(render_schema())
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(render_schema())
    return 0


if __name__ == "__main__":
    sys.exit(main())
