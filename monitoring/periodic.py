"""Background loops: run an action every so often, surviving a failing round."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


async def every(period: float, action: Callable[[], object]) -> None:
    """Run `action` (sync or async) every `period` seconds; a failing run is logged, the loop goes on."""
    while True:
        await asyncio.sleep(period)
        try:
            result = action()
            if inspect.isawaitable(result):
                await result
        except Exception:  # noqa: BLE001 (a background loop must survive one bad round)
            log.exception("background task %s failed", getattr(action, "__qualname__", action))
