"""psutil readings of the machine the service runs on: for the overview, and as the course's samples."""

from __future__ import annotations

import time
from typing import Any

import psutil

from .parsing import Sample


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


def course_system_samples(agent_id: str, now: float) -> list[Sample]:
    """The course's per-agent system metrics, read from this machine (as the course does, for a demo):
    `system_cpu_usage` and `system_memory_usage` (percent), `network_bytes_sent` / `_recv` (counters)."""
    network = psutil.net_io_counters()
    return [Sample(agent_id, "system_cpu_usage", psutil.cpu_percent(None), now, (("unit", "percent"),)),
            Sample(agent_id, "system_memory_usage", psutil.virtual_memory().percent, now, (("unit", "percent"),)),
            Sample(agent_id, "network_bytes_sent", float(network.bytes_sent if network else 0), now,
                   (("direction", "sent"),), "counter"),
            Sample(agent_id, "network_bytes_recv", float(network.bytes_recv if network else 0), now,
                   (("direction", "received"),), "counter")]
