"""Evaluation cost of the program for systems of 10, 100 and 500 agents, against the bare SDK floor.

    ./run bench                      # or: .venv/bin/python benchmarks/render.py [--agents 10 100 500]

For each size, two cases run under the same Pulumi mocks, each in a fresh process so peak
memory (max RSS) is its own:
  components  validate the config and let AgentDeployment build and register every object
  floor       register the very objects the components case registered (recorded by it,
              loaded untimed) with the typed pulumi-kubernetes classes directly: no config
              model, builders or components
The ratio components/floor is the overhead this project adds on top of the Pulumi SDK.
Figures are wall-clock on a shared machine: compare runs on the same machine only.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
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


def run_case(case: str, agents: int, objects_file: Path) -> dict[str, Any]:
    """Run one case in this process; return wall seconds, object count and peak RSS.

    `components` writes the objects it registered to `objects_file`; `floor` registers
    exactly those, so both cases send the engine the same objects.
    """
    import pulumi
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from components.agent_deployment import AgentDeployment, AgentDeploymentArgs
    from components.registration import register_object
    from components.config import parse_system_config
    from components.render.manifests import from_wire
    from components.render.mock_runtime import install_mocks

    raw = system_of(agents)
    recorded: list[list[Any]] = json.loads(objects_file.read_text()) if case == "floor" else []
    monitor = install_mocks("multi-agent-system", "bench")

    def program() -> None:
        if case == "components":
            AgentDeployment("agents", AgentDeploymentArgs(parse_system_config(raw)))
        else:
            for name, obj in recorded:
                register_object(name, obj, pulumi.ResourceOptions())

    started = time.perf_counter()
    _sync_await(run_pulumi_func(program))
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    registered = [[r.name, from_wire(r.inputs)] for r in monitor.registrations if r.type.startswith("kubernetes:")]
    if case == "components":
        objects_file.write_text(json.dumps(registered))
    return {"case": case, "agents": agents, "objects": len(registered), "seconds": seconds, "peak_mib": peak_mib}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--case", choices=["components", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--objects-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # child process: one measurement, as JSON
        print(json.dumps(run_case(args.case, args.agents[0], args.objects_file)))
        return 0

    print(f"{'agents':>6} {'objects':>7} {'components s':>12} {'floor s':>8} {'ratio':>6} "
          f"{'components MiB':>14} {'floor MiB':>9}")
    for agents in args.agents:
        results = {}
        with tempfile.TemporaryDirectory() as scratch:
            objects_file = Path(scratch) / "objects.json"
            for case in ("components", "floor"):  # components first: it records the objects
                child = subprocess.run([sys.executable, __file__, "--case", case, "--agents", str(agents),
                                        "--objects-file", str(objects_file)],
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
