"""Every Istio object the mesh builders produce matches its CRD schema, for each supported API version."""

from __future__ import annotations

import pytest

from components.istio import security, traffic

from ..crd import validate_custom_resource
from ..mesh_system import BASE, system_of


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_every_mesh_object_matches_its_crd(version: str) -> None:
    system = system_of(mesh={**BASE["mesh"], "api_version": version})
    objects = []
    for agent in system.agents:
        objects += [traffic.virtual_service(system, agent), traffic.destination_rule(system, agent)]
    for namespace in ("agents", "agents-tools"):
        agents = [agent for agent in system.agents if system.agent_namespace(agent) == namespace]
        objects += [*security.peer_authentications(system, namespace, agents),
                    *security.authorization_policies(system, namespace, agents),
                    security.sidecar(system, namespace, agents), *security.service_entries(system, namespace)]
    assert {obj["apiVersion"].split("/")[1] for obj in objects} == {version}
    for obj in objects:
        validate_custom_resource(obj)
