"""How a stack's config keys make up the system: `system` inline, or `systemFile` (a YAML file in the project
that several stacks share), plus `region` (what differs per region stack).

A multi-region system keeps one definition in `systems/<name>.yaml`; each region's
`Pulumi.<env>-<region>.yaml` names that file and its own region facts (and its own secrets), so the
stacks cannot drift apart. Pulumi's own config merges no structured values across files, so the
program does this one step itself.
"""

from __future__ import annotations

from typing import Any

from .errors import ConfigError, ConfigProblem
from .system import CONFIG_KEY, PROJECT

SYSTEM_FILE_KEY = "systemFile"
REGION_KEY = "region"


def combine(inline: Any, from_file: Any, region: Any, file_name: str | None = None) -> dict[str, Any]:
    """The raw system config of a stack from its keys (ConfigError naming the key when they don't fit)."""
    if inline is not None and from_file is not None:
        raise ConfigError([ConfigProblem(f"{PROJECT}:{SYSTEM_FILE_KEY}", f"the stack also sets {PROJECT}:{CONFIG_KEY}; "
                                                                          f"keep one of the two")])
    raw = inline if inline is not None else from_file
    if raw is None:
        raise ConfigError([ConfigProblem(
            f"{PROJECT}:{CONFIG_KEY}",
            f"is not set; add it to Pulumi.<stack>.yaml under `config:` (see Pulumi.dev.yaml), name a shared "
            f"file with {PROJECT}:{SYSTEM_FILE_KEY}, or run "
            f"`pulumi config set --path {CONFIG_KEY}.agents[0].agent_id my-agent`")])
    if not isinstance(raw, dict):
        where = file_name or f"{PROJECT}:{CONFIG_KEY}"
        raise ConfigError([ConfigProblem(where, f"must be a mapping with an `agents` list (got {type(raw).__name__})")])
    if region is None:
        return raw
    if "region" in raw:
        raise ConfigError([ConfigProblem(f"{PROJECT}:{REGION_KEY}", "the system already sets `region`; set it in one "
                                                                    "place (the region stacks' `region` key)")])
    return {**raw, "region": region}
