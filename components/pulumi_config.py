"""The only reader of `pulumi.Config`: the system config and the secrets it names.

Everything else receives a validated `SystemConfig` and plain (or `Output`) secret values,
so the config layer and the builders run without the Pulumi runtime.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import yaml

from .config import CONFIG_KEY, PROJECT, ConfigError, ConfigProblem, SystemConfig, parse_system_config
from .config.stack_keys import REGION_KEY, SYSTEM_FILE_KEY, combine



def load_config(config: pulumi.Config | None = None, project_dir: Path | None = None) -> SystemConfig:
    """The stack's system (config/stack_keys.py: `system`, or the shared `systemFile`, plus `region`), validated
    (ConfigError if invalid). `systemFile` is read from the project directory: Pulumi runs the program there."""
    config = config or pulumi.Config(PROJECT)
    project_dir = project_dir or Path.cwd()
    file_name = config.get(SYSTEM_FILE_KEY)
    from_file = read_system_file(project_dir, file_name) if file_name else None
    return parse_system_config(combine(config.get_object(CONFIG_KEY), from_file, config.get_object(REGION_KEY),
                                       file_name))


def read_system_file(project_dir: Path, name: str) -> Any:
    """The YAML system definition a stack names, from inside the project only."""
    path = (project_dir / name).resolve()
    if project_dir.resolve() not in path.parents or not path.is_file():
        raise ConfigError([ConfigProblem(f"{PROJECT}:{SYSTEM_FILE_KEY}", f"'{name}' is not a file in the project "
                                                                          f"({project_dir}); give its path from there, "
                                                                          f"e.g. systems/prod.yaml")])
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError([ConfigProblem(f"{PROJECT}:{SYSTEM_FILE_KEY}", f"'{name}' is not valid YAML: {error}")]) \
            from None


def read_secrets(system: SystemConfig, config: pulumi.Config | None = None) -> dict[str, pulumi.Output[str]]:
    """Secret values by key in the credentials Secret, read from the Pulumi config keys the config names.

    Every missing key is reported at the field that names it (ConfigError), before any resource exists.
    """
    config = config or pulumi.Config(PROJECT)
    missing = [ConfigProblem(path, f"names the Pulumi secret '{config_key}', which is not set; run "
                                   f"`pulumi config set --secret {config_key} <value>`")
               for path, config_key, _ in system.monitoring.secret_references() if config.get_secret(config_key) is None]
    if missing:
        raise ConfigError(missing, f"{PROJECT}:{CONFIG_KEY}")
    return {secret_key: config.require_secret(config_key)
            for config_key, secret_key in system.monitoring.secret_keys().items()}
