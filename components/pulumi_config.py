"""The only reader of `pulumi.Config`: the system config and the secrets it names.

Everything else receives a validated `SystemConfig` and plain (or `Output`) secret values,
so the config layer and the builders run without the Pulumi runtime.
"""

from __future__ import annotations

import pulumi

from .config import CONFIG_KEY, PROJECT, ConfigError, ConfigProblem, SystemConfig, parse_system_config


def load_config(config: pulumi.Config | None = None) -> SystemConfig:
    """Read `multi-agent-system:system` from the stack config and validate it (ConfigError if invalid)."""
    config = config or pulumi.Config(PROJECT)
    raw = config.get_object(CONFIG_KEY)
    if raw is None:
        raise ConfigError([ConfigProblem(
            f"{PROJECT}:{CONFIG_KEY}",
            f"is not set; add it to Pulumi.<stack>.yaml under `config:` (see Pulumi.dev.yaml) or "
            f"run `pulumi config set --path {CONFIG_KEY}.agents[0].agent_id my-agent`")])
    return parse_system_config(raw)


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
