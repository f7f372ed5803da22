"""What the collector knows about each agent: its heartbeat status and scrape record.

Its own module so that readers of agent state (health, reports, exposition, the API) need not
import the collector, which itself builds on them for the course's overview and report.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import Enum

from .parsing import ShapeCache


class AgentStatus(str, Enum):
    """Heartbeat state of an agent."""
    PENDING = "pending"      # registered, not scraped yet
    ACTIVE = "active"
    UNHEALTHY = "unhealthy"  # scrapes failing, or none succeeded for `unhealthy_after`
    LOST = "lost"            # nothing for `lost_after`


@dataclass(slots=True)  # one per agent, read for every agent at each /metrics: no per-instance dict
class AgentState:
    """What the collector knows about one agent."""

    agent_id: str
    metrics_endpoint: str
    health_endpoint: str | None
    info: dict[str, str]
    source: str
    registered_at: float
    status: AgentStatus = AgentStatus.PENDING
    last_success: float | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    last_scrape_duration: float = 0.0
    scrapes: int = 0
    failures: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)  # its scrape in flight
    body_shape: ShapeCache = field(default_factory=ShapeCache, repr=False)  # its last text body, cut
    penalty: tuple[int, float] | None = field(default=None, repr=False)  # (store version, resource penalty)

    def as_dict(self) -> dict[str, object]:
        return {"agent_id": self.agent_id, "metrics_endpoint": self.metrics_endpoint,
                "health_endpoint": self.health_endpoint, "info": self.info, "source": self.source,
                "status": self.status.value, "last_success": self.last_success, "last_error": self.last_error,
                "consecutive_failures": self.consecutive_failures,
                "last_scrape_duration_seconds": round(self.last_scrape_duration, 6),
                "scrapes": self.scrapes, "failures": self.failures}
