"""Traffic and release settings of an agent: routes, load balancing, circuit breaking, canary, blue-green.

AgentMesh turns these into Istio objects; AgentDeployment reads the release settings to
run the extra Deployments (canary, colours).
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import re2
from pydantic import BeforeValidator, Field, field_validator, model_validator

from .types import Duration, ImageDigest, ImageTag, LoadBalancerAlgorithm, StrictModel

# Defaults for calls into an agent; LLM-backed agents are slow, so limits are generous
# and ejection is cautious (a slow agent is not a broken one).
DEFAULT_RETRY_ON = "5xx,reset,connect-failure,retriable-4xx"
# Istio raises Envoy's re2.max_program_size.error_level (100 by default) to this in every proxy's
# bootstrap; Envoy refuses a route whose regex compiles to a larger RE2 program.
ISTIO_MAX_REGEX_PROGRAM_SIZE = 32768


def envoy_regex(value: str) -> str:
    """`value` if Envoy's regex engine (RE2) accepts it: no backreferences, lookaround or possessive
    quantifiers, and a compiled program no larger than Istio lets Envoy build."""
    options = re2.Options()
    options.log_errors = False  # the message goes to the user through the config error instead
    try:
        size = re2.compile(value, options).programsize
    except re2.error as error:
        reason = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else str(error)
        raise ValueError(f"{value!r} is not an RE2 regular expression (Envoy's): {reason}; RE2 has no "
                         f"backreferences, lookahead/lookbehind or possessive quantifiers "
                         f"(https://github.com/google/re2/wiki/Syntax)") from None
    if size > ISTIO_MAX_REGEX_PROGRAM_SIZE:
        raise ValueError(f"compiles to an RE2 program of {size} instructions, above the "
                         f"{ISTIO_MAX_REGEX_PROGRAM_SIZE} Istio lets Envoy accept (re2.max_program_size); "
                         f"simplify it, e.g. with fewer or smaller counted repetitions")
    return value


class UriMatch(StrictModel):
    """Match on the request path (or a header value): set exactly one of prefix, exact, regex."""

    prefix: str | None = Field(None, description="Prefix, e.g. '/api/'.")
    exact: str | None = Field(None, description="Exact value.")
    regex: str | None = Field(None, description="RE2 regular expression (Envoy's syntax), matched against the "
                                                "whole value.")

    @field_validator("regex")
    @classmethod
    def _re2(cls, value: str | None) -> str | None:
        return None if value is None else envoy_regex(value)

    @model_validator(mode="after")
    def _one_kind(self) -> "UriMatch":
        if sum(value is not None for value in (self.prefix, self.exact, self.regex)) != 1:
            raise ValueError("set exactly one of prefix, exact, regex")
        return self


class RouteMatch(StrictModel):
    """Which requests a routing rule applies to (all of them when empty)."""

    uri: UriMatch | None = Field(None, description="Match on the request path.")
    headers: dict[str, UriMatch] = Field(default_factory=dict, description="Match on request headers.")


class Retries(StrictModel):
    """Retry policy of a route."""

    attempts: int = Field(3, ge=0, description="Retries after the first try (0 disables).")
    per_try_timeout: Duration = Field("10s", description="Timeout of each try.")
    retry_on: str = Field(DEFAULT_RETRY_ON, description="Envoy retry conditions.")


class Percentage(StrictModel):
    """Share of requests, in percent."""

    value: float = Field(ge=0, le=100, description="Percent of requests, 0-100.")


class FaultDelay(StrictModel):
    """Delay injected into a share of requests (chaos testing)."""

    fixed_delay: Duration = Field(description="Delay, e.g. '5s'.")
    percentage: float = Field(100.0, ge=0, le=100, description="Percent of requests delayed.")


class FaultAbort(StrictModel):
    """Errors injected into a share of requests (chaos testing)."""

    http_status: int = Field(503, ge=200, le=599, description="Status returned instead of calling the agent.")
    percentage: float = Field(100.0, ge=0, le=100, description="Percent of requests aborted.")


class Fault(StrictModel):
    """Fault injection on a route. Istio ignores the route's retries and timeout when a fault is set."""

    delay: FaultDelay | None = Field(None, description="Delay a share of requests.")
    abort: FaultAbort | None = Field(None, description="Fail a share of requests.")


class WeightedDestination(StrictModel):
    """Part of a route's traffic sent to one subset of the agent."""

    subset: str = Field(description="Subset name: 'stable', 'canary', 'blue' or 'green' (those the agent has).")
    weight: int = Field(ge=0, le=100, description="Percent of the route's traffic; weights add up to 100.")


class RoutingRule(StrictModel):
    """A traffic rule for calls into this agent (an Istio VirtualService http route)."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63,
                      description="Rule name, shown in Istio metrics.")
    match: RouteMatch = Field(default_factory=RouteMatch, description="Requests the rule applies to.")
    rewrite_uri: str | None = Field(None, description="Rewrite the matched path to this.")
    route: list[WeightedDestination] = Field(default_factory=list,
                                             description="Weighted split between subsets; empty = the release "
                                                         "default (stable, canary split or active colour).")
    timeout: Duration | None = Field(None, description="Route timeout, e.g. '30s' (LLM calls are slow).")
    retries: Retries | None = Field(None, description="Retry policy; null uses `traffic.retries`.")
    idempotent: bool = Field(True, description="False sets retries to 0 explicitly (Istio retries twice by "
                                               "default, which repeats side effects).")
    fault: Fault | None = Field(None, description="Fault injection for chaos testing.")


class LoadBalancer(StrictModel):
    """Client-side load balancing of calls into this agent (Istio DestinationRule)."""

    algorithm: LoadBalancerAlgorithm = Field(LoadBalancerAlgorithm.LEAST_REQUEST, description="Simple algorithm.")
    consistent_hash_header: str | None = Field(None, description="Hash on this header (session affinity) "
                                                                 "instead of `algorithm`.")


def load_balancer_input(value: Any) -> Any:
    """Accept the seed's shorthand `load_balancer: ROUND_ROBIN`."""
    return {"algorithm": value} if isinstance(value, str) else value


LoadBalancerField = Annotated[LoadBalancer, BeforeValidator(load_balancer_input,
                                                            json_schema_input_type=LoadBalancer | LoadBalancerAlgorithm)]


class ConnectionPool(StrictModel):
    """Connection limits towards the agent (Istio connectionPool)."""

    max_connections: int = Field(100, ge=1, description="TCP connections to the agent at most.")
    connect_timeout: Duration = Field("5s", description="TCP connect timeout.")
    http1_max_pending_requests: int = Field(50, ge=1, description="Requests queued waiting for a connection "
                                                                   "(the seed's 50).")
    http2_max_requests: int = Field(100, ge=1, description="Concurrent requests to the agent at most (the seed's "
                                                           "100).")
    max_requests_per_connection: int = Field(10, ge=0, description="Requests per connection, 0 = unlimited (the "
                                                                   "seed's 10: connections are recycled, so load "
                                                                   "spreads over new replicas).")
    max_retries: int = Field(3, ge=0, description="Concurrent retries to the agent at most.")


class OutlierDetection(StrictModel):
    """Circuit breaking: eject replicas that keep failing (Istio outlierDetection)."""

    consecutive_5xx_errors: int = Field(5, ge=1, description="5xx answers in a row that eject a replica.")
    interval: Duration = Field("30s", description="How often replicas are checked.")
    base_ejection_time: Duration = Field("30s", description="Ejection time (grows with repeated ejections).")
    max_ejection_percent: int = Field(50, ge=0, le=100, description="Share of replicas that may be ejected.")
    min_health_percent: int = Field(30, ge=0, le=100, description="Below this share of healthy replicas, "
                                                                   "ejection stops (panic mode).")


class ReleaseController(str, Enum):
    """Who drives a progressive release."""
    PULUMI = "pulumi"                # weights come from this config
    FLAGGER = "flagger"              # a Flagger Canary owns weights and replicas
    ARGO_ROLLOUTS = "argo-rollouts"  # Argo Rollouts rewrites the route weights


class HeaderMatch(StrictModel):
    """A request header that forces the canary (for testers)."""

    name: str = Field("canary-test", description="Header name.")
    value: str = Field("enabled", description="Exact header value.")


class Canary(StrictModel):
    """A canary release: a second Deployment with the new version and a weighted split."""

    tag: ImageTag = Field(description="Image tag of the canary.")
    digest: ImageDigest | None = Field(None, description="Pin the canary's image by digest ('sha256:...'); wins "
                                                         "over `tag`; required in production.")
    weight: int = Field(5, ge=0, le=100, description="Percent of traffic to the canary (the rest to stable).")
    header: HeaderMatch | None = Field(default_factory=HeaderMatch,
                                       description="Requests with this header always go to the canary; null for none.")
    replicas: int = Field(1, ge=1, description="Canary replicas (not autoscaled).")
    controller: ReleaseController = Field(ReleaseController.PULUMI,
                                          description="pulumi: weights from here. flagger / argo-rollouts: hand-off, "
                                                      "the controller owns weights and replicas.")


class Colour(str, Enum):
    """Blue-green colour."""
    BLUE = "blue"
    GREEN = "green"


class BlueGreen(StrictModel):
    """Blue-green release: two colours, one active; switch by changing `active` and running `pulumi up`."""

    blue_tag: ImageTag = Field(description="Image tag run by the blue Deployment.")
    green_tag: ImageTag = Field(description="Image tag run by the green Deployment.")
    blue_digest: ImageDigest | None = Field(None, description="Pin blue's image by digest; required in production.")
    green_digest: ImageDigest | None = Field(None, description="Pin green's image by digest; required in "
                                                               "production.")
    active: Colour = Field(Colour.BLUE, description="Colour that receives all traffic.")
    scale_down_inactive: bool = Field(False, description="Scale the inactive colour to 0 replicas.")


class Traffic(StrictModel):
    """Mesh traffic policy for calls into this agent."""

    connection_pool: ConnectionPool = Field(default_factory=ConnectionPool, description="Connection limits.")
    outlier_detection: OutlierDetection | None = Field(default_factory=OutlierDetection,
                                                       description="Circuit breaking; null for none (locality load "
                                                                   "balancing across regions needs it).")
    timeout: Duration = Field("60s", description="Timeout of the default route (LLM calls are slow).")
    retries: Retries = Field(default_factory=Retries, description="Retries of routes that don't set their own.")
    entrypoint: bool = Field(False, description="Callable from the ingress gateway (users), not only from agents.")
