"""Canary and blue-green releases: the Deployment per track, and which one the Service and routes serve."""

from __future__ import annotations

import copy

from components.config import parse_system_config, releases
from components.istio import traffic
from components.kubernetes import workload

from ..mesh_system import BASE, agent_of, system_of


def test_canary_runs_a_second_deployment_built_by_the_same_code() -> None:
    system = system_of()
    researcher = agent_of(system, "researcher")
    stable, canary = releases.tracks(researcher)
    assert (canary.name, canary.replicas, canary.autoscaled) == ("canary", 1, False)
    deployment = workload.deployment(system, canary.agent, canary.name, canary.replicas)
    assert deployment["metadata"]["name"] == "researcher-canary"
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": "researcher", "track": "canary"}
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/version"] == "3.2.0"  # labelled with the canary version
    assert pod["metadata"]["labels"]["version"] == "canary"  # what the DestinationRule subset selects
    assert pod["spec"]["containers"][0]["image"] == "x/researcher:3.2.0"
    stable_pod = workload.deployment(system, stable.agent, stable.name)["spec"]["template"]
    # Same hardening as the stable one: only the image and track differ.
    assert pod["spec"]["securityContext"] == stable_pod["spec"]["securityContext"]
    assert workload.service(system, researcher)["spec"]["selector"] == {"app": "researcher"}


def test_blue_green_switch_is_one_field() -> None:
    system = system_of()
    executor = agent_of(system, "executor")
    blue, green = sorted(releases.tracks(executor), key=lambda track: track.name)
    assert green.serving and green.autoscaled and not blue.serving and blue.replicas == 3
    assert workload.service(system, executor)["spec"]["selector"] == {"app": "executor", "track": "green"}
    [route] = traffic.virtual_service(system, executor)["spec"]["http"]
    assert route["route"][0]["destination"]["subset"] == "green"
    assert workload.horizontal_pod_autoscaler(system, green.agent, green.name)["spec"]["scaleTargetRef"][
        "name"] == "executor-green"

    raw = copy.deepcopy(BASE)
    raw["agents"][2]["blue_green"].update(active="blue", scale_down_inactive=True)
    switched = agent_of(parse_system_config(raw), "executor")
    tracks = {track.name: track for track in releases.tracks(switched)}
    assert tracks["blue"].serving and tracks["green"].replicas == 0
    assert workload.service(system, switched)["spec"]["selector"]["track"] == "blue"
