"""Counters of Prometheus remote-write in (kept by the collector, exposed on /metrics)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class RemoteWriteStats:
    requests: int = 0
    series: int = 0
    samples: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> requests or series refused
    # Held while a request is checked and stored (it yields to the event loop between slices).
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def reject(self, reason: str, count: int = 1) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + count
