"""Evaluation cost of the program for systems of 10, 100 and 500 agents, against the bare SDK floor.

    ./run bench                      # or: .venv/bin/python benchmarks/render.py [--agents 10 100 500]

For each size, two cases run under the same Pulumi mocks, each in a fresh process so peak
memory (max RSS) is its own:
  components  validate the config and let AgentDeployment build and register every object
  floor       register the very same objects (built beforehand, untimed) with the typed
              pulumi-kubernetes classes directly: no config model, builders or components
The ratio components/floor is the overhead this project adds on top of the Pulumi SDK.
Figures are wall-clock on a shared machine: compare runs on the same machine only.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))


def system_of(agents: int) -> dict[str, Any]:
    """A system of `agents` agents in four groups, each with HPA, PDB and a few env vars."""
    groups = ["orchestration", "research", "tools", "serving"]
    return {
        "namespace": "bench",
        "groups": {name: {"quota": {"requests_cpu": "1000", "requests_memory": "4000Gi", "limits_cpu": "2000",
                                    "limits_memory": "8000Gi", "pods": 10000}} for name in groups},
        "agents": [{"agent_id": f"agent-{index}", "role": "worker", "image": "registry.example.com/agents/worker",
                    "tag": "1.0.0", "group": groups[index % len(groups)],
                    "environment": {"LOG_LEVEL": "info", "SHARD": str(index)},
                    "scaling": {"initial_replicas": 2, "min_replicas": 2, "max_replicas": 10,
                                "custom_metrics": {"active_tasks_per_pod": 10}},
                    "talks_to": [f"agent-{(index + 1) % agents}"]}
                   for index in range(agents)],
    }


def run_case(case: str, agents: int) -> dict[str, Any]:
    """Run one case in this process; return wall seconds, object count and peak RSS."""
    import pulumi
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from components.agent_deployment import AgentDeployment, AgentDeploymentArgs, register_object
    from components.config import parse_system_config
    from components.mock_runtime import install_mocks

    raw = system_of(agents)
    prebuilt: list[tuple[str, dict[str, Any]]] = []
    if case == "floor":
        prebuilt = _objects_of(parse_system_config(raw))
    monitor = install_mocks("multi-agent-system", "bench")

    def program() -> None:
        if case == "components":
            AgentDeployment("agents", AgentDeploymentArgs(parse_system_config(raw)))
        else:
            for name, obj in prebuilt:
                register_object(name, obj, pulumi.ResourceOptions())

    started = time.perf_counter()
    _sync_await(run_pulumi_func(program))
    seconds = time.perf_counter() - started
    objects = sum(1 for registration in monitor.registrations if registration.type.startswith("kubernetes:"))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"case": case, "agents": agents, "objects": objects, "seconds": seconds, "peak_mib": peak_mib}


def _objects_of(system: Any) -> list[tuple[str, dict[str, Any]]]:
    """The same objects AgentDeployment registers, built up front for the floor case."""
    from components import namespaces, workload

    objects = []
    for group, settings in system.groups.items():
        ns = system.group_namespace(group)
        objects.append((f"{ns}-namespace", namespaces.namespace(system, ns, settings.labels)))
        objects.append((f"{ns}-quota", namespaces.resource_quota(system, ns, settings.quota)))
        objects.append((f"{ns}-limits", namespaces.limit_range(system, ns, settings.limit_range)))
    for agent in system.agents:
        for role, build in (("service-account", workload.service_account), ("deployment", workload.deployment),
                            ("service", workload.service), ("hpa", workload.horizontal_pod_autoscaler),
                            ("pdb", workload.pod_disruption_budget)):
            objects.append((f"{agent.agent_id}-{role}", build(system, agent)))
    return objects


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--case", choices=["components", "floor"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # child process: one measurement, as JSON
        print(json.dumps(run_case(args.case, args.agents[0])))
        return 0

    print(f"{'agents':>6} {'objects':>7} {'components s':>12} {'floor s':>8} {'ratio':>6} "
          f"{'components MiB':>14} {'floor MiB':>9}")
    for agents in args.agents:
        results = {}
        for case in ("components", "floor"):
            child = subprocess.run([sys.executable, __file__, "--case", case, "--agents", str(agents)],
                                   capture_output=True, text=True, check=True, cwd=PROJECT_DIR)
            results[case] = json.loads(child.stdout.strip().splitlines()[-1])
        comp, floor = results["components"], results["floor"]
        if comp["objects"] != floor["objects"]:
            raise SystemExit(f"object counts differ: {comp['objects']} vs {floor['objects']}")
        print(f"{agents:>6} {comp['objects']:>7} {comp['seconds']:>12.2f} {floor['seconds']:>8.2f} "
              f"{comp['seconds'] / floor['seconds']:>6.2f} {comp['peak_mib']:>14.0f} {floor['peak_mib']:>9.0f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
