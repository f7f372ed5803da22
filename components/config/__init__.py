"""The config contract: pydantic (RE2 for route regexes) + stdlib only; never imports builders, pulumi or monitoring.

`parse_system_config` is the one entry point (model -> cross-field checks -> ConfigError);
`lookups` and `labels` derive what builders of several APIs must agree on.
"""

from .agent import AgentConfig
from .errors import ConfigError, ConfigProblem
from .parse import parse_system_config, require_checked
from .system import CONFIG_KEY, PROJECT, SystemConfig

__all__ = ["AgentConfig", "CONFIG_KEY", "ConfigError", "ConfigProblem", "PROJECT", "SystemConfig",
           "parse_system_config", "require_checked"]
