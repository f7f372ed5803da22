"""The picture of each rendered system: valid SVG holding every agent and every edge of the config, the
Graphviz and Mermaid sources beside it, and the README's copies current."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest

from components.config import parse_system_config
from components.render.cli import main as render_main
from components.render.diagram import stack_system, system_graph, to_dot, to_mermaid, to_svg

from ..conftest import PROJECT_DIR, STACKS

SVG = "{http://www.w3.org/2000/svg}"


def read_svg(text: str) -> ElementTree.Element:
    return ElementTree.fromstring(text)


def edges_of(root: ElementTree.Element, kind: str) -> set[tuple[str, str]]:
    return {(group.get("data-from"), group.get("data-to")) for group in root.iter(f"{SVG}g")
            if group.get("class", "").split()[:2] == ["edge", kind] and group.get("data-from")}


@pytest.mark.parametrize("stack", STACKS)
def test_the_picture_holds_every_agent_and_call_of_the_config(stack: str) -> None:
    system = stack_system(stack)
    root = read_svg(to_svg(system_graph(system)))
    nodes = {group.get("data-id"): group for group in root.iter(f"{SVG}g") if group.get("data-id")}
    for agent in system.agents:
        assert agent.agent_id in nodes, agent.agent_id
        texts = [text.text for text in nodes[agent.agent_id].iter(f"{SVG}text")]
        assert texts[0] == agent.agent_id and f"{agent.role}" in texts[1]
    calls = {(agent.agent_id, callee) for agent in system.agents for callee in agent.talks_to}
    assert edges_of(root, "call") == calls
    kafka = system.messaging.kafka.cluster if system.messaging.kafka else None
    assert edges_of(root, "messages") == ({(agent.agent_id, kafka) for agent in system.agents if agent.produces}
                                          | {(kafka, agent.agent_id) for agent in system.agents if agent.consumes})
    assert edges_of(root, "data") == {(agent.agent_id, store) for agent in system.agents for store in agent.uses}
    namespaces = {group.get("data-namespace") for group in root.iter(f"{SVG}g") if group.get("data-namespace")}
    assert {system.agent_namespace(agent) for agent in system.agents} <= namespaces
    if system.monitoring.enabled:
        scraped = {target for source, target in edges_of(root, "scrape") if source == "monitoring-pod"}
        assert scraped == {system.agent_namespace(agent) for agent in system.agents}


def test_entrypoints_external_apis_tracks_and_prometheus_are_drawn() -> None:
    system = parse_system_config({
        "agents": [{"agent_id": "front", "image": "x/front", "talks_to": ["back"], "traffic": {"entrypoint": True},
                    "canary": {"tag": "2", "weight": 10}},
                   {"agent_id": "back", "image": "x/back", "group": "tools", "scaling": {"autoscaling": False}}],
        "groups": {"tools": {"namespace": "tools"}},
        "mesh": {"enabled": True, "external_apis": [{"name": "openai", "hosts": ["api.openai.com"]}]},
        "monitoring": {"prometheus_operator": True}})
    root = read_svg(to_svg(system_graph(system)))
    assert edges_of(root, "entry") == {("users", "ingress-gateway"), ("ingress-gateway", "front")}
    assert edges_of(root, "egress") == {("agents", "openai"), ("tools", "openai")}
    assert ("prometheus", "tools") in edges_of(root, "scrape")
    assert ("tools", "monitoring-pod") in edges_of(root, "traces")
    front = next(group for group in root.iter(f"{SVG}g") if group.get("data-id") == "front")
    assert "entrypoint" in front.get("class", "")
    assert "stable ×3 · canary ×1" in [text.text for text in front.iter(f"{SVG}text")]
    dot, mermaid = to_dot(system_graph(system)), to_mermaid(system_graph(system))
    assert '"agent:front" -> "agent:back"' in dot and "subgraph cluster_" in dot
    assert "n_agent_front --> n_agent_back" in mermaid and mermaid.startswith("flowchart LR")


def test_labels_are_escaped() -> None:
    graph = system_graph(parse_system_config({"name": "a-b", "agents": [{"agent_id": "a", "image": "x/a"}]}))
    graph.title = 'a <b> & "c"'
    assert read_svg(to_svg(graph)).find(f"{SVG}title").text.startswith('a <b> & "c"')
    assert '"a <b> & \\"c\\""' in to_dot(graph)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz (Debian graphviz) checks the DOT source when "
                                                        "installed")
def test_graphviz_reads_the_dot_source(tmp_path: Path) -> None:
    dot = to_dot(system_graph(stack_system("prod")))
    result = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_render_writes_the_picture_next_to_the_manifests(tmp_path: Path) -> None:
    out = tmp_path / "manifests"
    assert render_main(["--stack", "dev", "--out", str(out), "--quiet"]) == 0
    for name in ("system.svg", "system.dot", "system.mmd"):
        assert (out / name).stat().st_size > 0
    read_svg((out / "system.svg").read_text())


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_readme_pictures_are_current(stack: str) -> None:
    committed = PROJECT_DIR / "docs" / f"system-{stack}.svg"
    assert committed.read_text(encoding="utf-8") == to_svg(system_graph(stack_system(stack))), \
        f"{committed.name} is stale: run ./run schema"
    assert f"docs/system-{stack}.svg" in (PROJECT_DIR / "README.md").read_text()


@pytest.mark.parametrize("raw", [
    # agents named like the picture's own boxes, and a namespace named like an agent
    {"agents": [{"agent_id": "users", "image": "x/a", "traffic": {"entrypoint": True}, "talks_to": ["prometheus"]},
                {"agent_id": "prometheus", "image": "x/b", "group": "planner"},
                {"agent_id": "planner", "image": "x/c", "group": "planner", "talks_to": ["users"]}],
     "groups": {"planner": {"namespace": "planner"}}, "monitoring": {"prometheus_operator": True}},
    # one namespace with Prometheus (its box used to fall off the picture)
    {"agents": [{"agent_id": "a", "image": "x/a"}], "monitoring": {"prometheus_operator": True}},
    # a long chain listed callee first (deep call levels), no monitoring
    {"agents": [{"agent_id": f"a{index}", "image": "x/a", "talks_to": [f"a{index - 1}"] if index else []}
                for index in reversed(range(600))], "monitoring": {"enabled": False}},
])
def test_every_agent_edge_and_box_is_in_the_picture_whatever_the_names(raw: dict[str, Any]) -> None:
    system = parse_system_config(raw)
    root = read_svg(to_svg(system_graph(system)))
    ids = [group.get("data-id") for group in root.iter(f"{SVG}g") if "node" in group.get("class", "").split()
           and "agent" in group.get("class", "").split()]
    assert sorted(ids) == sorted(agent.agent_id for agent in system.agents)
    assert edges_of(root, "call") == {(agent.agent_id, callee) for agent in system.agents for callee in agent.talks_to}
    _, _, width, height = (float(value) for value in root.get("viewBox").split())
    for rect in root.iter(f"{SVG}rect"):
        x, y = float(rect.get("x", 0)), float(rect.get("y", 0))
        assert x + float(rect.get("width")) <= width and y + float(rect.get("height")) <= height
