"""Where one stack of a multi-region system runs (seed 004): its region and zones, and how traffic between
regions is shaped with Istio locality load balancing.

One Pulumi stack per region; the stacks share the system definition (`systemFile`) and differ in this.
The seed's routing modes, as Istio can express them:
- geographic: nearest first. Istio's locality-prioritized load balancing (same zone, then region,
  then the others) with outlier detection ejecting what fails;
- weighted: `localityLbSetting.distribute`, this region's traffic split by percent across regions
  (the seed's us-east-1 40, eu-west-1 30, ap-southeast-1 30);
- latency-based: not expressible. Envoy balances on load (least requests), not on measured round trips
  between regions; put latency-based DNS in front of the regions' ingress gateways instead.
An active-passive region fails over to one other region (`localityLbSetting.failover`; beyond it Istio's
locality order applies). Weights apply to every call in the mesh from this region, agent to agent too: keep
the stores a request touches replicated across regions (the seed's 100 ms lag budget), or give global weights
to user traffic at DNS in front of the regions' gateways and route in-mesh calls geographically.
"""

from __future__ import annotations

from enum import Enum

from pydantic import Field

from .types import StrictModel

REGION_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class RoutingMode(str, Enum):
    GEOGRAPHIC = "geographic"
    WEIGHTED = "weighted"
    LATENCY_BASED = "latency-based"


class DeploymentMode(str, Enum):
    ACTIVE_ACTIVE = "active-active"
    ACTIVE_PASSIVE = "active-passive"


def _seed_weights() -> dict[str, int]:
    return {"us-east-1": 40, "eu-west-1": 30, "ap-southeast-1": 30}


class RegionConfig(StrictModel):
    """This stack's region."""

    name: str = Field(pattern=REGION_NAME, max_length=63, description="Region, as the nodes' "
                                                                      "topology.kubernetes.io/region label says it.")
    zones: list[str] = Field(min_length=1, description="Zones of the region the agents may run in (node affinity "
                                                       "on topology.kubernetes.io/zone; spread across them).")
    mode: DeploymentMode = Field(DeploymentMode.ACTIVE_ACTIVE, description="active-active: every region serves; "
                                                                           "active-passive: this one fails over.")
    routing: RoutingMode = Field(RoutingMode.GEOGRAPHIC, description="geographic, weighted or latency-based (not "
                                                                     "expressible in Istio: see docs).")
    weights: dict[str, int] = Field(default_factory=_seed_weights,
                                    description="weighted: percent of this region's traffic per region (the seed's "
                                                "us-east-1 40, eu-west-1 30, ap-southeast-1 30); must sum to 100.")
    failover_to: str | None = Field(None, pattern=REGION_NAME, description="active-passive: the region to fail "
                                                                           "over to (Istio's failover names one per "
                                                                           "region; beyond it, its locality order).")
    network: str | None = Field(None, pattern=REGION_NAME, description="Istio network of this cluster in a "
                                                                      "multi-network mesh (the namespaces' "
                                                                      "topology.istio.io/network label).")
    replication_lag_threshold_ms: int = Field(100, ge=1, description="The seed's cross-region replication lag "
                                                                     "budget (documented for the data layer).")
