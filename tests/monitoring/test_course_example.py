"""The README's course example runs as written against the simulator and prints what it promises."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

from monitoring.simulate import Simulator

from ..conftest import PROJECT_DIR


async def test_the_course_example_runs_against_the_simulator(aiohttp_server: Callable[..., Any]) -> None:
    server = await aiohttp_server(Simulator(3).app())
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "examples.course_monitoring", "--simulator", str(server.make_url("")).rstrip("/"),
        "--seconds", "2", cwd=PROJECT_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    output = stdout.decode()
    assert process.returncode == 0, stderr.decode()
    # The simulated agents report 35 % CPU: the rule (> 30) fires once per agent.
    alerts = [line for line in output.splitlines() if line.startswith("ALERT [warning] high_cpu:")]
    assert sorted(line.split()[2] for line in alerts) == [
        f"high_cpu:agent-{index}:agent_cpu_usage_percent:" for index in range(3)]
    assert 'overview: {"total_agents": 3, "active_agents": 3, "unhealthy_agents": 0}' in output
    assert sum(line.startswith("report: agent-") for line in output.splitlines()) == 3
    assert 'trace: {"total_spans": 2, "completed_spans": 2, "critical_path": ["agent-0:plan", "agent-1:search"]}' \
        in output
