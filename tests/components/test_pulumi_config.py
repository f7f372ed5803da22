"""load_config: the system config read from the Pulumi stack config, and the message when it is missing."""

from __future__ import annotations

import json
from typing import Any, Callable

import pulumi
import pytest

from components.config import ConfigError
from components.pulumi_config import load_config

from ..conftest import SEED_SYSTEM


def _pulumi_config(mocks: Callable[..., Any], value: str | None) -> pulumi.Config:
    from components.render.stack_files import StackConfig

    values = {} if value is None else {"multi-agent-system:system": value}
    mocks(StackConfig("multi-agent-system", "test", values))
    return pulumi.Config("multi-agent-system")


def test_load_config_reads_the_structured_stack_value(mocks: Callable[..., Any]) -> None:
    system = load_config(_pulumi_config(mocks, json.dumps(SEED_SYSTEM)))
    assert [agent.agent_id for agent in system.agents] == ["coordinator-agent", "worker-agent"]


def test_load_config_says_how_to_set_a_missing_value(mocks: Callable[..., Any]) -> None:
    with pytest.raises(ConfigError, match=r"multi-agent-system:system: is not set; add it to Pulumi.<stack>.yaml"):
        load_config(_pulumi_config(mocks, None))
