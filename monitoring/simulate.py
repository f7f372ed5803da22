"""Agent simulator: real metrics endpoints for N agents with controllable behaviour.

    python -m monitoring.simulate --agents 20 --port 9100 [--register http://127.0.0.1:8000]

All agents share one HTTP server: agent i serves `/agents/agent-i/metrics` (Prometheus
text, or the seed's JSON with `?format=json`) and `/agents/agent-i/health`. Behaviour is
changed at run time with `POST /control/agent-i` and a JSON body such as
`{"mode": "down"}`; modes: ok, down (connection closed), error (HTTP 500), hang (never
answers), garbage (invalid body), huge (an endless body). `cpu`, `memory` and
`error_rate` set the reported values.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

MODES = ("ok", "down", "error", "hang", "garbage", "huge")


@dataclass
class SimulatedAgent:
    """One agent's knobs and counters."""

    agent_id: str
    cpu: float = 35.0
    memory: float = 45.0                 # percent of memory_limit_bytes
    memory_limit_bytes: int = 2**30
    error_rate: float = 0.01
    mode: str = "ok"
    extra_series: int = 0
    tasks_processed: int = 0
    task_errors: int = 0
    started: float = field(default_factory=time.time)

    def tick(self) -> None:
        done = random.randint(0, 5)
        self.tasks_processed += done
        self.task_errors += sum(random.random() < self.error_rate for _ in range(done))

    def prometheus_text(self) -> str:
        """The seed's agent metrics (004) in the Prometheus text format."""
        self.tick()
        cpu = max(0.0, self.cpu + random.uniform(-2, 2))
        memory = max(0.0, self.memory + random.uniform(-1, 1)) / 100 * self.memory_limit_bytes
        succeeded = self.tasks_processed - self.task_errors
        lines = [
            "# HELP agent_cpu_usage_percent CPU usage percentage", "# TYPE agent_cpu_usage_percent gauge",
            f"agent_cpu_usage_percent {cpu:.2f}",
            "# HELP agent_memory_usage_bytes Memory usage in bytes", "# TYPE agent_memory_usage_bytes gauge",
            f"agent_memory_usage_bytes {memory:.0f}",
            "# HELP agent_active_tasks Currently active tasks", "# TYPE agent_active_tasks gauge",
            f"agent_active_tasks {random.randint(0, 10)}",
            "# HELP agent_tasks_total Total tasks processed", "# TYPE agent_tasks_total counter",
            f'agent_tasks_total{{agent_type="simulated",status="success"}} {succeeded}',
            f'agent_tasks_total{{agent_type="simulated",status="error"}} {self.task_errors}',
            "# HELP agent_response_time_ms Average response time", "# TYPE agent_response_time_ms gauge",
            f"agent_response_time_ms {random.uniform(20, 300):.1f}",
        ]
        if self.extra_series:
            lines.append("# TYPE agent_extra_gauge gauge")
            lines += [f'agent_extra_gauge{{series="{index}"}} {random.random():.4f}' for index in range(self.extra_series)]
        return "\n".join(lines) + "\n"

    def json_document(self) -> dict[str, object]:
        """The same readings in the seed's JSON (000)."""
        self.tick()
        return {"metrics": [
            {"name": "agent_cpu_usage_percent", "type": "gauge", "value": self.cpu, "labels": {}},
            {"name": "agent_memory_usage_bytes", "type": "gauge",
             "value": self.memory / 100 * self.memory_limit_bytes, "labels": {}},
            {"name": "agent_tasks_total", "type": "counter", "value": self.tasks_processed,
             "labels": {"agent_type": "simulated", "status": "all"}},
        ]}


class Simulator:
    """A set of simulated agents behind one aiohttp application."""

    def __init__(self, count: int, prefix: str = "agent", extra_series: int = 0, close: bool = False) -> None:
        self.agents = {f"{prefix}-{index}": SimulatedAgent(f"{prefix}-{index}", extra_series=extra_series)
                       for index in range(count)}
        self.requests = 0
        # Close the connection after each answer, as prometheus_client's own HTTP server (HTTP/1.0) does.
        self.close = close

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/agents/{agent_id}/metrics", self._metrics)
        app.router.add_get("/agents/{agent_id}/health", self._health)
        app.router.add_post("/control/{agent_id}", self._control)
        return app

    def _agent(self, request: web.Request) -> SimulatedAgent:
        agent = self.agents.get(request.match_info["agent_id"])
        if agent is None:
            raise web.HTTPNotFound(text="no such simulated agent")
        return agent

    async def _misbehave(self, agent: SimulatedAgent, request: web.Request) -> web.StreamResponse | None:
        if agent.mode == "down":
            assert request.transport is not None
            request.transport.close()  # like a crashed process: the connection just drops
            raise web.HTTPServiceUnavailable()
        if agent.mode == "error":
            raise web.HTTPInternalServerError(text="simulated failure")
        if agent.mode == "hang":
            await asyncio.sleep(3600)
        if agent.mode == "garbage":
            return web.Response(text="this is {not: metrics\x00", content_type="text/plain")
        if agent.mode == "huge":
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await response.prepare(request)
            chunk = b"# " + b"x" * 65_534 + b"\n"
            for _ in range(16_384):  # up to 1 GiB unless the client hangs up first
                await response.write(chunk)
            return response
        return None

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        agent = self._agent(request)
        misbehaved = await self._misbehave(agent, request)
        if misbehaved is not None:
            return misbehaved
        if request.query.get("format") == "json":
            response = web.json_response(agent.json_document())
        else:
            response = web.Response(text=agent.prometheus_text(), content_type="text/plain")
        if self.close:
            response.force_close()
        return response

    async def _health(self, request: web.Request) -> web.StreamResponse:
        agent = self._agent(request)
        misbehaved = await self._misbehave(agent, request)
        return misbehaved or web.json_response({"status": "ok", "agent_id": agent.agent_id})

    async def _control(self, request: web.Request) -> web.Response:
        agent = self._agent(request)
        body = await request.json()
        if "mode" in body:
            if body["mode"] not in MODES:
                raise web.HTTPBadRequest(text=f"mode must be one of {', '.join(MODES)}")
            agent.mode = body["mode"]
        for knob in ("cpu", "memory", "error_rate"):
            if knob in body:
                setattr(agent, knob, float(body[knob]))
        return web.json_response({"agent_id": agent.agent_id, "mode": agent.mode, "cpu": agent.cpu,
                                  "memory": agent.memory, "error_rate": agent.error_rate})


async def register_all(simulator: Simulator, base_url: str, monitoring_url: str, token: str | None) -> None:
    """Register every simulated agent with a running monitoring service."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(headers=headers) as session:
        for agent_id, agent in simulator.agents.items():
            body = {"agent_id": agent_id, "metrics_endpoint": f"{base_url}/agents/{agent_id}/metrics",
                    "health_endpoint": f"{base_url}/agents/{agent_id}/health", "info": {"simulated": "true",
                                                                       "memory_limit_bytes": str(agent.memory_limit_bytes)}}
            async with session.post(f"{monitoring_url.rstrip('/')}/api/v1/agents", json=body) as response:
                if response.status >= 300:
                    raise SystemExit(f"registering {agent_id} failed: {response.status} {await response.text()}")


async def _serve(args: argparse.Namespace) -> None:
    simulator = Simulator(args.agents, extra_series=args.extra_series, close=args.close)
    runner = web.AppRunner(simulator.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    base_url = f"http://{args.host}:{args.port}"
    print(f"simulating {args.agents} agents at {base_url}/agents/<agent-N>/metrics", flush=True)
    if args.register:
        await register_all(simulator, base_url, args.register, args.token)
        print(f"registered them with {args.register}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitoring.simulate", description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=5, help="number of agents (default 5)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--extra-series", type=int, default=0, help="extra gauge series per agent")
    parser.add_argument("--close", action="store_true", help="close each connection after its answer (no keep-alive)")
    parser.add_argument("--register", metavar="URL", help="register the agents with this monitoring service")
    parser.add_argument("--token", help="bearer token for --register (or none for a loopback service)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
