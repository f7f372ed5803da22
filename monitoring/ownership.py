"""Which namespace each agent belongs to, and what each namespace holds against its remote-write quotas.

An agent belongs to one namespace: the one discovery sees its pods in, else the one its remote-written series
(their `namespace` label) were bound to. Who binds matters:

- Trusted sources: discovery, Prometheus' token (role `prometheus-remote-write`: its relabeling sets the
  `namespace` label from the pod it scraped) and the admin token. Their binding holds.
- A namespace's own ingestion token only *claims* an agent nobody has named yet. A trusted source that reports
  the agent in another namespace overrides the claim: the claimant's series for it are dropped (with its share
  of its namespace's usage) and its later writes for the agent are refused (403, counted).
- A namespace's token never writes an agent registered from the settings or the API (Prometheus' or the admin
  token does), nor one discovery sees in another namespace.

Bindings aren't persisted: after a restart an agent is claimable again until the first trusted write (or
discovery) closes the claim once more, dropping what a squatter wrote meanwhile.

Per namespace, the agents bound to it and the series they hold in the store are counted, with the store's own
estimate of the bytes those series take once their rolling windows are full (store.new_series_bytes, so the
namespace quotas and `max_series_bytes` add up), against `remote_write`'s
`max_agents_per_namespace`, `max_series_per_namespace` and `max_bytes_per_namespace`: one namespace's
token can't fill `max_agents` or the service's memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Usage:
    """What one namespace (or one agent) holds."""

    agents: int = 0
    series: int = 0
    bytes: int = 0


@dataclass
class Ownership:
    """Agent -> namespace bindings and what each namespace holds. Entries live as long as their agent's
    registration (the collector forgets an agent here when it deregisters it)."""

    owners: dict[str, str] = field(default_factory=dict)        # agent id -> namespace
    trusted: set[str] = field(default_factory=set)              # agents a trusted source bound (not claims)
    namespaces: dict[str, Usage] = field(default_factory=dict)  # namespace -> its agents, series, bytes
    agents: dict[str, Usage] = field(default_factory=dict)      # agent id -> its series and bytes

    def owner(self, agent_id: str) -> str | None:
        return self.owners.get(agent_id)

    def is_claim(self, agent_id: str) -> bool:
        """Whether the agent's binding is only a namespace token's claim (a trusted source overrides it)."""
        return agent_id in self.owners and agent_id not in self.trusted

    def usage(self, namespace: str) -> Usage:
        """What `namespace` holds (zeros for one that holds nothing; not stored)."""
        return self.namespaces.get(namespace) or Usage()

    def bind(self, agent_id: str, namespace: str, trusted: bool) -> None:
        """Make `namespace` the agent's (once: a bound agent keeps its namespace). A trusted source's binding
        of a claim to the same namespace confirms it; a claim of another namespace is overridden first
        (Collector.override_claim), never here."""
        if agent_id in self.owners:
            if trusted and self.owners[agent_id] == namespace:
                self.trusted.add(agent_id)
            return
        self.owners[agent_id] = namespace
        if trusted:
            self.trusted.add(agent_id)
        self.agents[agent_id] = Usage()
        self.namespaces.setdefault(namespace, Usage()).agents += 1

    def add_series(self, agent_id: str, count: int, size: int) -> None:
        """Charge `count` new series of `size` estimated bytes (store.new_series_bytes) to a bound agent and its
        namespace: called once the store has made their windows, never for a series it did not keep."""
        namespace = self.owners[agent_id]
        for usage in (self.agents[agent_id], self.namespaces[namespace]):
            usage.series += count
            usage.bytes += size

    def forget(self, agent_id: str) -> None:
        """An agent is gone (its series with it): free its namespace's share."""
        namespace = self.owners.pop(agent_id, None)
        self.trusted.discard(agent_id)
        if namespace is None:
            return
        held = self.agents.pop(agent_id)
        usage = self.namespaces[namespace]
        usage.agents -= 1
        usage.series -= held.series
        usage.bytes -= held.bytes
        if usage.agents <= 0:
            del self.namespaces[namespace]
