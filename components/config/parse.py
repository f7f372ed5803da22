"""The one way in: raw config (a mapping from the stack file) -> `SystemConfig`, or `ConfigError`.

Field validation (the pydantic model), then the cross-field rules (`checks.py`); every
problem is collected with its field path, so one run shows the user all of them. Nothing
else in the program validates config, and no builder runs before this has passed.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .agent import AgentConfig
from .agent_checks import agent_problems
from .checks import cross_field_problems
from .errors import ConfigError, ConfigProblem, problems_from_validation_error
from .system import CONFIG_KEY, PROJECT, SystemConfig

DEFAULT_SOURCE = f"{PROJECT}:{CONFIG_KEY}"


def parse_system_config(raw: Any, source: str = DEFAULT_SOURCE) -> SystemConfig:
    """Validate a raw config value; raise ConfigError listing every problem found."""
    if not isinstance(raw, dict):
        raise ConfigError([ConfigProblem("", f"must be a mapping with an `agents` list (got {type(raw).__name__})")],
                          source)
    try:
        system = SystemConfig.model_validate(raw)
    except ValidationError as error:
        problems = problems_from_validation_error(error, SystemConfig)
        broken = {detail["loc"][1] for detail in error.errors() if detail["loc"][:1] == ("agents",)
                  and len(detail["loc"]) > 1}
        raise ConfigError(problems + _problems_of_sound_agents(raw, broken), source) from None
    problems = cross_field_problems(system)
    if problems:
        raise ConfigError(problems, source)
    system._checked = True  # noqa: SLF001 (this module is what makes it true)
    return system


def require_checked(system: SystemConfig) -> SystemConfig:
    """`system` if it came from `parse_system_config`; builders rely on the cross-field rules holding."""
    if not system.checked:
        raise TypeError("this SystemConfig was not validated as a whole; build it with "
                        "components.config.parse_system_config(raw) instead of SystemConfig(...)")
    return system


def _problems_of_sound_agents(raw: dict[str, Any], broken: set[Any]) -> list[ConfigProblem]:
    """While some fields are invalid, still report the per-agent rules of the agents that parse.

    Users then see every problem in one run instead of fixing them in rounds.
    """
    agents = raw.get("agents")
    if not isinstance(agents, list):
        return []
    problems: list[ConfigProblem] = []
    for index, item in enumerate(agents):
        if index in broken:
            continue
        try:
            agent = AgentConfig.model_validate(item)
        except ValidationError:
            continue
        problems += agent_problems(agent, f"agents[{index}]", raw.get("production") is True)
    return problems
