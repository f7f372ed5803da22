"""Read `Pulumi.yaml` and `Pulumi.<stack>.yaml` the way the Pulumi CLI hands them to a program.

The CLI passes every config value to the program as a string keyed `project:key`
(structured values as JSON). Offline there is no passphrase or secrets provider, so
encrypted values (`secure: ...`) become a visible placeholder instead of being decrypted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class StackFileError(Exception):
    """The project or stack file is missing or unreadable; the message says which and why."""


@dataclass(frozen=True)
class StackConfig:
    """A stack's config as the Pulumi engine would pass it to the program."""

    project: str
    stack: str
    values: dict[str, str]
    secret_keys: list[str] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)  # config paths written as secret placeholders


def secret_placeholder(path: str) -> str:
    """The text written where an encrypted config value would go."""
    return f"<secret {path}: encrypted in the stack file, not decrypted by the offline render>"


def available_stacks(project_dir: Path) -> list[str]:
    """Stack names that have a `Pulumi.<stack>.yaml` next to `Pulumi.yaml`."""
    return sorted(path.name[len("Pulumi."):-len(".yaml")] for path in project_dir.glob("Pulumi.*.yaml"))


def read_stack_config(project_dir: Path, stack: str) -> StackConfig:
    """Load a stack's config; raise StackFileError with a clear message if it can't be read."""
    project_file = project_dir / "Pulumi.yaml"
    project = _load_yaml(project_file).get("name")
    if not isinstance(project, str) or not project:
        raise StackFileError(f"{project_file}: `name` (the project name) is missing")
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        known = ", ".join(available_stacks(project_dir)) or "none"
        raise StackFileError(f"no stack file {stack_file.name} in {project_dir} (stacks here: {known})")
    raw_config = _load_yaml(stack_file).get("config") or {}
    if not isinstance(raw_config, dict):
        raise StackFileError(f"{stack_file}: `config` must be a mapping of `project:key` to values")

    values: dict[str, str] = {}
    secret_keys: list[str] = []
    placeholders: list[str] = []
    for key, value in raw_config.items():
        full_key = key if ":" in key else f"{project}:{key}"
        plain, had_secret = _replace_secrets(value, full_key, placeholders)
        values[full_key] = plain if isinstance(plain, str) else json.dumps(plain)
        if had_secret:
            secret_keys.append(full_key)
    return StackConfig(project, stack, values, secret_keys, placeholders)


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise StackFileError(f"{path} not found; run from the project directory or pass --project-dir") from None
    except yaml.YAMLError as error:
        raise StackFileError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(loaded, dict):
        raise StackFileError(f"{path} must be a YAML mapping")
    return loaded


def _replace_secrets(value: Any, path: str, placeholders: list[str]) -> tuple[Any, bool]:
    """Swap every `{secure: ...}` (top level or nested by `config set --path --secret`) for a placeholder."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            placeholders.append(path)
            return secret_placeholder(path), True
        items = {key: _replace_secrets(item, f"{path}.{key}", placeholders) for key, item in value.items()}
        return {key: item for key, (item, _) in items.items()}, any(secret for _, secret in items.values())
    if isinstance(value, list):
        items_list = [_replace_secrets(item, f"{path}[{index}]", placeholders) for index, item in enumerate(value)]
        return [item for item, _ in items_list], any(secret for _, secret in items_list)
    return value, False
