"""Release tracks of an agent: which Deployments run, which take traffic, who owns their replicas.

  plain        one track, `stable`
  canary       `stable` plus `canary` (the canary tag, fixed replicas); traffic split by weight
  blue-green   `blue` and `green`, each with its tag; only the active colour takes traffic
  hand-off     (canary.controller flagger / argo-rollouts) only `stable` is ours; the
               controller runs the new version and owns weights and replicas

AgentDeployment runs one Deployment per track; AgentMesh makes one subset per track.
"""

from __future__ import annotations

from dataclasses import dataclass

from .agent import AgentConfig
from .traffic import ReleaseController

STABLE_TRACK = "stable"
CANARY_TRACK = "canary"


@dataclass(frozen=True)
class Track:
    """One Deployment of an agent."""

    name: str
    agent: AgentConfig   # the agent's config as this track runs it (its own image tag)
    replicas: int        # replicas at creation (and afterwards unless `autoscaled`)
    autoscaled: bool     # an HPA (ours or KEDA's) owns the replica count
    serving: bool        # receives traffic by default (the Service's selector, the default route)


def controller(agent: AgentConfig) -> ReleaseController:
    """Who drives the agent's progressive release (pulumi when there is none)."""
    return agent.canary.controller if agent.canary is not None else ReleaseController.PULUMI


def tracks(agent: AgentConfig) -> list[Track]:
    """The Deployments the program runs for an agent, serving ones first."""
    scaling = agent.scaling
    if agent.blue_green is not None:
        release = agent.blue_green
        out = []
        for colour, tag, digest in (("blue", release.blue_tag, release.blue_digest),
                                    ("green", release.green_tag, release.green_digest)):
            active = release.active.value == colour
            replicas = scaling.initial_replicas if active or not release.scale_down_inactive else 0
            out.append(Track(colour, _with_image(agent, tag, digest), replicas, active and scaling.scaled,
                             active))
        return sorted(out, key=lambda track: not track.serving)
    stable = Track(STABLE_TRACK, agent, scaling.initial_replicas, scaling.scaled, True)
    if agent.canary is None or controller(agent) is not ReleaseController.PULUMI:
        return [stable]
    canary = Track(CANARY_TRACK, _with_image(agent, agent.canary.tag, agent.canary.digest), agent.canary.replicas,
                   False, True)
    return [stable, canary]


def subsets(agent: AgentConfig) -> list[str]:
    """Names of the agent's mesh subsets (one per track; Argo Rollouts' canary is a subset too)."""
    names = [track.name for track in tracks(agent)]
    if controller(agent) is ReleaseController.ARGO_ROLLOUTS:
        names.append(CANARY_TRACK)
    return names


def serving_track(agent: AgentConfig) -> str | None:
    """The only track the Service selects (the active colour), or None for all tracks."""
    if agent.blue_green is not None:
        return agent.blue_green.active.value
    return None


def _with_image(agent: AgentConfig, tag: str, digest: str | None) -> AgentConfig:
    return agent.model_copy(update={"tag": tag, "digest": digest})
