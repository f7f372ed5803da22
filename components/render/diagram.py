"""A picture of a rendered system: `system.svg`, with its Graphviz (`system.dot`) and Mermaid
(`system.mmd`) sources, written next to the manifests.

    python -m components.render.diagram --stack prod --out docs/system-prod.svg

What it shows, all read from the validated config (the same the program deploys):
- namespaces as groups, each agent with its role, release tracks and replicas, its autoscaling bounds;
- the `talks_to` call graph (also the mesh's authorization graph) and the entrypoints users reach
  through the ingress gateway;
- the external APIs agents may call (the mesh's egress);
- the Kafka cluster (who produces, who consumes) and the data stores (who uses which);
- the monitoring pod and Prometheus, and what scrapes what (and where the traces go).

The SVG is laid out here, in plain SVG (no Graphviz needed offline): a column per namespace, agents
ordered so callers come before callees, the monitoring row below. Every node and edge carries
`data-` attributes naming what it is, so tests (and tools) can read the picture back.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from ..config import CONFIG_KEY, PROJECT, SystemConfig, parse_system_config
from ..config.stack_keys import REGION_KEY, SYSTEM_FILE_KEY, combine
from ..pulumi_config import read_system_file
from ..config.lookups import agents_by_namespace
from ..config.releases import tracks
from .stack_files import read_stack_config

PROJECT_DIR = Path(__file__).resolve().parents[2]
# Nodes are keyed by kind and name ("agent:planner", "ns:agents"), so no agent id or namespace can collide with
# another node; the pictures and the data- attributes show the bare names.
USERS, INGRESS, MONITORING, PROMETHEUS = "sys:users", "sys:ingress-gateway", "sys:monitoring-pod", "sys:prometheus"


def agent_key(agent_id: str) -> str:
    return f"agent:{agent_id}"


def namespace_key(namespace: str) -> str:
    return f"ns:{namespace}"


def bare(key: str) -> str:
    return key.split(":", 1)[1]
# Layout, in SVG user units.
AGENT_W, AGENT_H, ROW, COLUMN_GAP, MARGIN, HEADER = 230, 62, 86, 90, 30, 40
SIDE_W = 190


@dataclass
class Node:
    """One box: an agent, the users, an external API, the monitoring pod or Prometheus."""

    id: str
    kind: str                 # agent | users | ingress | external | monitoring | prometheus
    lines: list[str]
    group: str | None = None  # the namespace it runs in (agents and the monitoring pod)
    x: float = 0
    y: float = 0
    w: float = AGENT_W
    h: float = AGENT_H


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str                 # call | entry | egress | scrape | traces
    label: str = ""


@dataclass
class Graph:
    title: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)  # namespace key -> node keys, in order

    def add(self, node: Node) -> None:
        self.nodes[node.id] = node
        if node.group is not None:
            self.groups.setdefault(namespace_key(node.group), []).append(node.id)


def _agent_lines(agent) -> list[str]:  # type: ignore[no-untyped-def]
    scaling = agent.scaling
    runs = " · ".join(f"{track.name} ×{track.replicas}" for track in tracks(agent))
    if scaling.event_driven is not None:
        low = 0 if scaling.event_driven.scale_to_zero else scaling.min_replicas
        scale = f"KEDA ({scaling.event_driven.trigger}) {low}–{scaling.max_replicas}"
    else:
        scale = f"HPA {scaling.min_replicas}–{scaling.max_replicas}" if scaling.autoscaling else "fixed replicas"
    return [agent.agent_id, f"{agent.role} · {scale}", runs]


def _call_levels(system: SystemConfig) -> dict[str, int]:
    """Each agent's distance in calls from where work enters (entrypoints and agents nobody calls), breadth
    first: callers are drawn above their callees. Agents only a cycle reaches come last."""
    called = {callee for agent in system.agents for callee in agent.talks_to}
    level = {agent.agent_id: 0 for agent in system.agents if agent.traffic.entrypoint or agent.agent_id not in called}
    queue = list(level)
    calls = {agent.agent_id: agent.talks_to for agent in system.agents}
    for agent_id in queue:  # grows while it is walked: a breadth-first walk
        for callee in calls.get(agent_id, ()):
            if callee not in level:
                level[callee] = level[agent_id] + 1
                queue.append(callee)
    deepest = max(level.values(), default=0)
    return {agent.agent_id: level.get(agent.agent_id, deepest + 1) for agent in system.agents}


def system_graph(system: SystemConfig) -> Graph:
    """The nodes and edges of the picture (no positions yet)."""
    graph = Graph(system.name)
    entrypoints = [agent for agent in system.agents if agent.traffic.entrypoint]
    if entrypoints:
        graph.add(Node(USERS, "users", ["users"], w=SIDE_W, h=44))
        if system.mesh.enabled:
            graph.add(Node(INGRESS, "ingress", ["ingress gateway", system.mesh.ingress_namespace], w=SIDE_W))
            graph.edges.append(Edge(USERS, INGRESS, "entry"))
    levels = _call_levels(system)
    by_namespace = agents_by_namespace(system)
    for namespace, agents in by_namespace.items():
        for agent in sorted(agents, key=lambda agent: (levels[agent.agent_id], agents.index(agent))):
            graph.add(Node(agent_key(agent.agent_id), "agent", _agent_lines(agent), group=namespace))
    for agent in system.agents:
        if agent.traffic.entrypoint:
            graph.edges.append(Edge(INGRESS if system.mesh.enabled else USERS, agent_key(agent.agent_id), "entry"))
        graph.edges += [Edge(agent_key(agent.agent_id), agent_key(callee), "call") for callee in agent.talks_to]
    if system.mesh.enabled:
        for api in system.mesh.external_apis:
            node_id = f"ext:{api.name}"
            graph.add(Node(node_id, "external", [api.name, ", ".join(api.hosts)[:40]], w=SIDE_W))
            graph.edges += [Edge(namespace_key(namespace), node_id, "egress") for namespace in by_namespace]
    kafka = system.messaging.kafka
    if kafka is not None and any(agent.consumes or agent.produces for agent in system.agents):
        graph.add(Node(f"kafka:{kafka.cluster}", "backbone",
                       [f"Kafka {kafka.cluster}", f"namespace {kafka.namespace} · {len(kafka.topics)} topics"],
                       w=SIDE_W))
        for agent in system.agents:
            if agent.produces:
                graph.edges.append(Edge(agent_key(agent.agent_id), f"kafka:{kafka.cluster}", "messages",
                                        "produces " + ", ".join(agent.produces)))
            if agent.consumes:
                graph.edges.append(Edge(f"kafka:{kafka.cluster}", agent_key(agent.agent_id), "messages",
                                        "consumes " + ", ".join(agent.consumes)))
    for store in system.data.stores:
        where = f"{store.kind.value} · {'CloudNativePG' if store.cloudnative_pg else store.address}"
        graph.add(Node(f"store:{store.name}", "store", [store.name, where[:30]], w=SIDE_W))
        graph.edges += [Edge(agent_key(agent.agent_id), f"store:{store.name}", "data")
                        for agent in system.agents if store.name in agent.uses]
    monitoring = system.monitoring
    if monitoring.enabled:
        # In the row below; when it shares an agent namespace, drawn outside that group with the name said.
        shared = monitoring.namespace in by_namespace
        graph.add(Node(MONITORING, "monitoring", ["monitoring pod", "collector · tracer · console",
                                                  *([f"namespace {monitoring.namespace}"] if shared else [])],
                       group=None if shared else monitoring.namespace, h=AGENT_H + (16 if shared else 0)))
        for namespace in by_namespace:
            graph.edges += [Edge(MONITORING, namespace_key(namespace), "scrape", "scrapes (discovery)"),
                            Edge(namespace_key(namespace), MONITORING, "traces", "OTLP traces")]
        if monitoring.prometheus_operator:
            graph.add(Node(PROMETHEUS, "prometheus", ["Prometheus", "ServiceMonitors · rules"], w=SIDE_W))
            graph.edges += [Edge(PROMETHEUS, namespace_key(namespace), "scrape", "ServiceMonitor")
                            for namespace in by_namespace]
            graph.edges.append(Edge(PROMETHEUS, MONITORING, "scrape", "ServiceMonitor"))
    return graph


# --- layout and SVG ---------------------------------------------------------------------------------

@dataclass
class Box:
    x: float
    y: float
    w: float
    h: float


def _layout(graph: Graph) -> tuple[dict[str, Box], float, float]:
    """Positions: users/ingress on the left, a column per agent namespace, external APIs on the right,
    the monitoring namespace and Prometheus in a row below. Returns the group boxes and the size."""
    x = MARGIN
    side = [graph.nodes[node] for node in (USERS, INGRESS) if node in graph.nodes]
    for index, node in enumerate(side):
        node.x, node.y = x, MARGIN + HEADER + index * ROW * 1.2
    if side:
        x += SIDE_W + COLUMN_GAP
    groups: dict[str, Box] = {}
    tallest = 0.0
    for namespace, members in graph.groups.items():
        if all(graph.nodes[member].kind == "monitoring" for member in members):
            continue  # the monitoring pod's own namespace: in the row below
        for row, member in enumerate(members):
            node = graph.nodes[member]
            node.x, node.y = x + 15, MARGIN + HEADER + 30 + row * ROW
        height = 30 + len(members) * ROW
        groups[namespace] = Box(x, MARGIN + HEADER, AGENT_W + 30, height)  # (keyed ns:<name>)
        tallest = max(tallest, height)
        x += AGENT_W + 30 + COLUMN_GAP
    externals = [node for node in graph.nodes.values() if node.kind in ("backbone", "store", "external")]
    for row, node in enumerate(externals):
        node.x, node.y = x, MARGIN + HEADER + 30 + row * ROW
    if externals:
        x += SIDE_W + COLUMN_GAP
    bottom = MARGIN + HEADER + max(tallest, len(externals) * ROW + 30, len(side) * ROW * 1.2) + 70
    below = [graph.nodes[node] for node in (MONITORING, PROMETHEUS) if node in graph.nodes]
    left = MARGIN + (SIDE_W + COLUMN_GAP if side else 0)
    for node in below:
        if node.kind == "monitoring" and node.group is not None:
            groups[namespace_key(node.group)] = Box(left, bottom, AGENT_W + 30, ROW + 30)
        node.x, node.y = left + 15, bottom + 30
        left += AGENT_W + 30 + COLUMN_GAP
    height = (bottom + ROW + 30 + MARGIN) if below else bottom
    # room on the right for curves that bulge out of a column, and for the legend
    right = max([node.x + node.w for node in graph.nodes.values()] + [box.x + box.w for box in groups.values()])
    return groups, max(right + MARGIN + 80, 600), height


def _anchor(graph: Graph, groups: dict[str, Box], name: str) -> Box:
    node = graph.nodes.get(name)
    if node is not None:
        return Box(node.x, node.y, node.w, node.h)
    return groups[name]


def _path(source: Box, target: Box) -> str:
    """A curve from the source's side facing the target to the target's facing side: sideways between
    columns, up or down between boxes of one column's width, bulging out to the right within a column."""
    overlap = min(source.x + source.w, target.x + target.w) - max(source.x, target.x)
    if abs(source.x - target.x) < 1 and (target.y < source.y + source.h and source.y < target.y + target.h
                                         or abs(source.w - target.w) < 1):
        x1, y1 = source.x + source.w, source.y + source.h / 2
        x2, y2 = target.x + target.w, target.y + target.h / 2
        bulge = 40 + abs(y2 - y1) / 6
        return f"M{x1:.0f},{y1:.0f} C{x1 + bulge:.0f},{y1:.0f} {x2 + bulge:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
    if overlap > 0 or abs(target.y - source.y) > 3 * ROW:  # one above the other (or rows apart): vertical
        downwards = target.y >= source.y
        x1, y1 = source.x + source.w / 2, source.y + (source.h if downwards else 0)
        x2, y2 = target.x + target.w / 2, target.y + (0 if downwards else target.h)
        middle = (y1 + y2) / 2
        return f"M{x1:.0f},{y1:.0f} C{x1:.0f},{middle:.0f} {x2:.0f},{middle:.0f} {x2:.0f},{y2:.0f}"
    rightwards = target.x > source.x
    x1 = source.x + source.w if rightwards else source.x
    x2 = target.x if rightwards else target.x + target.w
    y1, y2 = source.y + source.h / 2, target.y + target.h / 2
    middle = (x1 + x2) / 2
    return f"M{x1:.0f},{y1:.0f} C{middle:.0f},{y1:.0f} {middle:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"


STYLE = """
svg { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; }
.bg { fill: #ffffff; }
.title { font-size: 18px; font-weight: 600; fill: #1b1f24; }
.group rect { fill: #f6f8fa; stroke: #8c959f; stroke-dasharray: 5 4; rx: 10; }
.group text { font-size: 13px; fill: #57606a; font-weight: 600; }
.node rect { stroke-width: 1.5; rx: 8; }
.node text { font-size: 12px; fill: #1b1f24; }
.node text.name { font-size: 14px; font-weight: 600; }
.agent rect { fill: #ddf4ff; stroke: #0969da; }
.entrypoint rect { stroke-width: 3; }
.users rect, .ingress rect { fill: #fff8c5; stroke: #9a6700; }
.external rect { fill: #fbefff; stroke: #8250df; }
.backbone rect, .store rect { fill: #fff1e5; stroke: #bc4c00; }
.monitoring rect, .prometheus rect { fill: #dafbe1; stroke: #1a7f37; }
.edge path { fill: none; stroke-width: 1.6; }
.call path { stroke: #0969da; }
.entry path { stroke: #9a6700; stroke-width: 2.2; }
.egress path { stroke: #8250df; stroke-dasharray: 6 4; }
.messages path { stroke: #bc4c00; }
.data path { stroke: #bc4c00; stroke-dasharray: 4 3; }
.scrape path { stroke: #1a7f37; stroke-dasharray: 2 4; }
.traces path { stroke: #bf3989; stroke-dasharray: 8 3 2 3; }
.legend text { font-size: 12px; fill: #57606a; }
@media (prefers-color-scheme: dark) {
  .bg { fill: #0d1117; } .title { fill: #e6edf3; } .group rect { fill: #161b22; } .group text { fill: #9198a1; }
  .node text { fill: #e6edf3; } .agent rect { fill: #0c2d6b; } .users rect, .ingress rect { fill: #3b2300; }
  .external rect { fill: #271052; } .backbone rect, .store rect { fill: #3d1d00; } .monitoring rect, .prometheus rect { fill: #04260f; } .legend text { fill: #9198a1; }
}
"""
MARKERS = {"call": "#0969da", "entry": "#9a6700", "egress": "#8250df", "scrape": "#1a7f37", "traces": "#bf3989",
           "messages": "#bc4c00", "data": "#bc4c00"}
LEGEND = [("call", "calls (talks_to: the mesh allows exactly these)"), ("entry", "entrypoint (ingress)"),
          ("messages", "produces to / consumes from Kafka"), ("data", "uses a data store"),
          ("egress", "egress to external APIs"), ("scrape", "scrapes metrics"), ("traces", "sends traces")]


def to_svg(graph: Graph) -> str:
    """The picture as a standalone SVG document."""
    groups, width, height = _layout(graph)
    height += 30 + 18 * len(LEGEND)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
           f'width="{width:.0f}" height="{height:.0f}" role="img" aria-labelledby="title">',
           f'<title id="title">{escape(graph.title)}: namespaces, agents, calls and monitoring</title>',
           f"<style>{STYLE}</style>", "<defs>"]
    out += [f'<marker id="arrow-{kind}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
            for kind, colour in MARKERS.items()]
    out += ["</defs>", f'<rect class="bg" width="{width:.0f}" height="{height:.0f}"/>',
            f'<text class="title" x="{MARGIN}" y="{MARGIN + 14}">{escape(graph.title)}</text>']
    for namespace, box in groups.items():
        out.append(f'<g class="group" data-namespace={quoteattr(bare(namespace))}>'
                   f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{box.w:.0f}" height="{box.h:.0f}"/>'
                   f'<text x="{box.x + 12:.0f}" y="{box.y + 20:.0f}">namespace {escape(bare(namespace))}</text></g>')
    pairs = {(edge.source, edge.target) for edge in graph.edges}
    for edge in graph.edges:
        source, target = _anchor(graph, groups, edge.source), _anchor(graph, groups, edge.target)
        title = f"{bare(edge.source)} → {bare(edge.target)}" + (f" ({edge.label})" if edge.label else "")
        # an edge with one the other way (scrapes one way, traces back) is drawn beside it, not on it
        shift = (6 if edge.source < edge.target else -6) if (edge.target, edge.source) in pairs else 0
        moved = f' transform="translate({shift},{shift})"' if shift else ""
        out.append(f'<g class="edge {edge.kind}" data-from={quoteattr(bare(edge.source))} '
                   f'data-to={quoteattr(bare(edge.target))}{moved}><title>{escape(title)}</title>'
                   f'<path d="{_path(source, target)}" marker-end="url(#arrow-{edge.kind})"/></g>')
    entrypoints = {edge.target for edge in graph.edges if edge.kind == "entry" and graph.nodes[edge.target].kind
                   == "agent"}
    for node in graph.nodes.values():
        classes = f"node {node.kind}" + (" entrypoint" if node.id in entrypoints else "")
        out.append(f'<g class="{classes}" data-id={quoteattr(bare(node.id))}>'
                   f'<rect x="{node.x:.0f}" y="{node.y:.0f}" width="{node.w:.0f}" height="{node.h:.0f}"/>')
        for index, line in enumerate(node.lines):
            css = ' class="name"' if index == 0 else ""
            out.append(f'<text{css} x="{node.x + 10:.0f}" y="{node.y + 19 + index * 16:.0f}">{escape(line)}</text>')
        out.append("</g>")
    legend_y = height - 18 * len(LEGEND) - 10
    out.append('<g class="legend">')
    for index, (kind, text) in enumerate(LEGEND):
        y = legend_y + index * 18
        out.append(f'<g class="edge {kind}"><path d="M{MARGIN},{y} L{MARGIN + 40},{y}" '
                   f'marker-end="url(#arrow-{kind})"/></g><text x="{MARGIN + 50}" y="{y + 4}">{escape(text)}</text>')
    out += ["</g>", "</svg>"]
    return "\n".join(out) + "\n"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: Graph) -> str:
    """The same graph as Graphviz source (`dot -Tsvg system.dot`)."""
    lines = [f"digraph {_quoted(graph.title)} {{", "  rankdir=LR; compound=true; node [shape=box, style=rounded];"]
    for index, (namespace, members) in enumerate(graph.groups.items()):
        lines.append(f"  subgraph cluster_{index} {{ label={_quoted('namespace ' + bare(namespace))}; "
                     f"id={_quoted(namespace)}; style=dashed;")
        lines += [f"    {_quoted(member)} [label={_quoted(chr(10).join(graph.nodes[member].lines))}];"
                  for member in members]
        lines.append("  }")
    lines += [f"  {_quoted(node.id)} [label={_quoted(chr(10).join(node.lines))}];"
              for node in graph.nodes.values() if node.group is None]
    styles = {"call": "", "entry": "penwidth=2", "egress": "style=dashed", "scrape": "style=dotted",
              "traces": "style=dashed, color=maroon", "messages": "color=darkorange3",
              "data": "style=dashed, color=darkorange3"}
    for edge in graph.edges:
        source = _quoted(edge.source if edge.source in graph.nodes else graph.groups[edge.source][0])
        target = _quoted(edge.target if edge.target in graph.nodes else graph.groups[edge.target][0])
        attributes = [styles[edge.kind]] if styles[edge.kind] else []
        if edge.source not in graph.nodes:
            attributes.append(f"ltail=cluster_{list(graph.groups).index(edge.source)}")
        if edge.target not in graph.nodes:
            attributes.append(f"lhead=cluster_{list(graph.groups).index(edge.target)}")
        if edge.label:
            attributes.append(f"label={_quoted(edge.label)}")
        lines.append(f"  {source} -> {target}" + (f" [{', '.join(attributes)}]" if attributes else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_id(name: str) -> str:
    return "n_" + "".join(char if char.isalnum() else "_" for char in name)


def _mermaid_label(text: str) -> str:
    return '"' + text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;") + '"'


def to_mermaid(graph: Graph) -> str:
    """The same graph as a Mermaid flowchart (GitHub renders it in Markdown)."""
    lines = ["flowchart LR"]
    for namespace, members in graph.groups.items():
        lines.append(f"  subgraph {_mermaid_id(namespace)}[{_mermaid_label('namespace ' + bare(namespace))}]")
        lines += [f"    {_mermaid_id(member)}[{_mermaid_label(' · '.join(graph.nodes[member].lines))}]"
                  for member in members]
        lines.append("  end")
    lines += [f"  {_mermaid_id(node.id)}[{_mermaid_label(' · '.join(node.lines))}]"
              for node in graph.nodes.values() if node.group is None]
    arrows = {"call": "-->", "entry": "==>", "egress": "-.->", "scrape": "-.->", "traces": "-.->", "messages": "-->",
              "data": "-.->"}
    for edge in graph.edges:
        source, target = _mermaid_id(edge.source), _mermaid_id(edge.target)
        label = f"|{_mermaid_label(edge.label)}|" if edge.label else ""
        lines.append(f"  {source} {arrows[edge.kind]}{label} {target}")
    return "\n".join(lines) + "\n"


def write_diagrams(system: SystemConfig, out_dir: Path, stem: str = "system") -> list[Path]:
    """system.svg, system.dot and system.mmd in `out_dir`."""
    graph = system_graph(system)
    written = []
    for suffix, text in ((".svg", to_svg(graph)), (".dot", to_dot(graph)), (".mmd", to_mermaid(graph))):
        path = out_dir / f"{stem}{suffix}"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stack_system(stack: str, project_dir: Path = PROJECT_DIR) -> SystemConfig:
    """The validated system config of a stack file (as the program reads it)."""
    return system_of_values(read_stack_config(project_dir, stack).values, project_dir)


def system_of_values(values: dict[str, str], project_dir: Path) -> SystemConfig:
    """The system a stack's config values make up (config/stack_keys.py), as load_config reads it."""
    def value(key: str) -> Any:
        text = values.get(f"{PROJECT}:{key}")
        return json.loads(text) if text and text[0] in "{[" else (text or None)
    file_name = value(SYSTEM_FILE_KEY)
    from_file = read_system_file(project_dir, file_name) if file_name else None
    return parse_system_config(combine(value(CONFIG_KEY), from_file, value(REGION_KEY), file_name))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.render.diagram", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--out", type=Path, required=True, help="the .svg to write (.dot and .mmd beside it)")
    args = parser.parse_args(argv)
    written = write_diagrams(stack_system(args.stack), args.out.parent, args.out.stem)
    print("wrote " + ", ".join(str(path) for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
