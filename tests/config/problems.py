"""The problems a config is rejected with, as the strings the user reads."""

from __future__ import annotations

from typing import Any

import pytest

from components.config import ConfigError, parse_system_config


def problems_of(raw: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_system_config(raw)
    return [str(problem) for problem in caught.value.problems]
