"""psutil readings of the pod the service runs in: its process CPU and memory, and network I/O."""

from __future__ import annotations

import time
from typing import Any

import psutil


class SystemSampler:
    """Takes a reading on demand and keeps the latest one for the overview and /metrics."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # the first call only starts the measurement interval
        self.latest: dict[str, Any] = {}

    def sample(self) -> dict[str, Any]:
        memory = self._process.memory_info()
        network = psutil.net_io_counters()
        self.latest = {
            "timestamp": time.time(),
            "process_cpu_percent": self._process.cpu_percent(None),
            "process_resident_memory_bytes": memory.rss,
            "system_memory_percent": psutil.virtual_memory().percent,
            "network_sent_bytes": network.bytes_sent if network else 0,
            "network_received_bytes": network.bytes_recv if network else 0,
        }
        return self.latest
