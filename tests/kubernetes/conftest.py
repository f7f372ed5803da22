"""The seed-style system, parsed, for the Kubernetes builder tests."""

from __future__ import annotations

from typing import Any

import pytest

from components.config import parse_system_config

from ..conftest import SEED_SYSTEM


@pytest.fixture
def system() -> Any:
    return parse_system_config(SEED_SYSTEM)
