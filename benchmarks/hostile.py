"""Hostile agents against the monitoring service: its RSS growth and /health/live latency while it scrapes them.

    .venv/bin/python benchmarks/hostile.py [--cycles 20] [--interval 0.5] [--good 50] [--skip-remote-write|--skip-scrape]

The service runs as a subprocess on loopback (`python -m monitoring`), so its RSS is its own. This process
serves the scraped agents (in a child process) and probes `/health/live` without pause (one keep-alive connection, one probe at a
time, from a thread of its own) while the service works.

Scrape phase (`source: scrape`): well-behaved agents (six samples each) and hostile ones, registered through
the API once the service's start-up RSS is read, then `--cycles` scrape cycles at `--interval`:
  huge-label     one label value of 3 MiB                   many-labels   JSON, one sample with 150,000 labels
  many-series    20,000 new series every scrape             fat-series    1,000 samples, 2,000-character labels,
  non-finite     NaN, +Inf, -Inf values (valid text)                      new values every scrape
  huge-values    JSON 1e400 and a 400-digit integer         long-body     200,000 lines
  slow           a byte every 0.2 s (times out)             endless       a body that never ends (size limit)

Remote-write phase (`source: remote_write`, a new service): `--cycles` rounds, each a well-behaved batch and
hostile ones: 100,000 new series, timestamps from 1e14 ms ago and 1e12 ms ahead, a 3 MiB label, 20,000 agent
ids, an agent of another namespace, and batches at the per-request limits that are new every round (10,000
series, 5,000 agent ids), which the per-namespace quotas stop.

Printed per phase: RSS at start and end (and growth), /health/live p50/p99/max over the probes, and the
service's refusal counters from /metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import cramjam
import psutil
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from benchmarks.collector import free_port, wait_until_up  # noqa: E402
from monitoring.remote_write import WRITE_REQUEST  # noqa: E402

MiB = 2**20
COUNTERS = ("monitoring_bodies_refused_total", "monitoring_scrapes_total", "monitoring_series_dropped_total",
            "monitoring_remote_write_rejected_total", "monitoring_remote_write_samples_total",
            "monitoring_recent_samples_bytes", "monitoring_series_bytes")


# --- the scraped agents -------------------------------------------------------------------------------


def good_body(index: int, cycle: int) -> bytes:
    return (f"# TYPE agent_cpu_usage_percent gauge\nagent_cpu_usage_percent {20 + index % 50 + cycle % 7}\n"
            f"# TYPE agent_memory_usage_bytes gauge\nagent_memory_usage_bytes {2**28 + cycle}\n"
            f"# TYPE agent_tasks_total counter\n"
            f'agent_tasks_total{{agent_type="worker",status="success"}} {cycle * 10}\n'
            f'agent_tasks_total{{agent_type="worker",status="error"}} {cycle}\n'
            f"# TYPE agent_active_tasks gauge\nagent_active_tasks {cycle % 5}\n"
            f"# TYPE agent_error_rate gauge\nagent_error_rate 0.01\n").encode()


class Agents:
    """The scraped agents: GET /<name> answers what `name` stands for (its n-th scrape's body)."""

    HOSTILE = ("huge-label", "many-labels", "many-series", "fat-series", "non-finite", "huge-values", "long-body",
               "slow", "endless")

    def __init__(self, good: int) -> None:
        self.good = [f"good-{index}" for index in range(good)]
        self.scrapes: dict[str, int] = {}
        self._huge_label = b'agent_cpu_usage_percent{pod="' + b"x" * (3 * MiB) + b'"} 1\n'
        self._many_labels = json.dumps({"metrics": [{"name": "agent_cpu_usage_percent", "value": 1, "labels": {
            f"l{index}": "v" for index in range(150_000)}}]}).encode()
        self._long_body = b"".join(b'm{i="%d"} 1\n' % index for index in range(200_000))

    def body(self, name: str, cycle: int) -> tuple[bytes, str]:
        text = "text/plain; version=0.0.4"
        if name.startswith("good-"):
            return good_body(int(name.split("-")[1]), cycle), text
        if name == "huge-label":
            return self._huge_label, text
        if name == "many-labels":
            return self._many_labels, "application/json"
        if name == "many-series":
            return b"".join(b'm{c="%d",i="%d"} 1\n' % (cycle, index) for index in range(20_000)), text
        if name == "fat-series":
            return b"".join(b'm{c="%d",i="%d",v="' % (cycle, index) + b"y" * 2_000 + b'"} 1\n'
                            for index in range(1_000)), text
        if name == "non-finite":
            return b"agent_cpu_usage_percent NaN\nagent_memory_usage_bytes +Inf\nagent_error_rate -Inf\n", text
        if name == "huge-values":
            return (b'{"metrics": [{"name": "agent_cpu_usage_percent", "value": 1e400}, '
                    b'{"name": "m", "value": 1' + b"0" * 400 + b"}]}"), "application/json"
        if name == "long-body":
            return self._long_body, text
        raise KeyError(name)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        cycle = self.scrapes[name] = self.scrapes.get(name, 0) + 1
        if name in ("slow", "endless"):
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await response.prepare(request)
            try:
                while True:  # until the service hangs up (its timeout, or its size limit)
                    if name == "slow":
                        await response.write(b"m")
                        await asyncio.sleep(0.2)
                    else:
                        await response.write(b"endless 1\n" * 6_554)  # 64 KiB
                        await asyncio.sleep(0)
            except (ConnectionError, asyncio.CancelledError):
                return response
        body, content_type = self.body(name, cycle)
        return web.Response(body=body, headers={"Content-Type": content_type})


def serve_agents(good: int, port: int) -> None:
    """Serve the agents until killed (in a process of their own: building their bodies takes tens of ms, which
    must not delay this process's probes)."""

    async def run() -> None:
        agents = Agents(good)
        app = web.Application()
        app.router.add_get("/{name}", agents.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    asyncio.run(run())


@asynccontextmanager
async def agents_process(good: int, port: int) -> AsyncIterator[None]:
    process = multiprocessing.Process(target=serve_agents, args=(good, port), daemon=True)
    process.start()
    try:
        await wait_until_up(f"http://127.0.0.1:{port}/non-finite", failure="the agents did not start",
                            alive=process.is_alive)
        yield
    finally:
        process.terminate()
        process.join(timeout=10)


# --- the service ---------------------------------------------------------------------------------------


@asynccontextmanager
async def service(settings: dict[str, Any]) -> AsyncIterator[tuple[str, psutil.Process]]:
    """The monitoring service as a subprocess with these settings; (base URL, its process)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "settings.json"
        config.write_text(json.dumps(settings))
        process = subprocess.Popen([sys.executable, "-m", "monitoring", "--config", str(config), "--port", str(port),
                                    "--log-level", "ERROR"], cwd=PROJECT_DIR)
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_until_up(f"{base}/health/ready", failure="the monitoring service did not start",
                                alive=lambda: process.poll() is None)
            yield base, psutil.Process(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=10)


class Prober:
    """GET /health/live one after the other while the phase runs; the latencies in ms. It runs in a thread with
    its own event loop, so that this process building large requests never counts as the service's delay."""

    def __init__(self, base: str) -> None:
        self._url = f"{base}/health/live"
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="prober", daemon=True)

    async def _run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    async with session.get(self._url) as response:
                        await response.read()
                        if response.status != 200:
                            self.failures += 1
                except (aiohttp.ClientError, TimeoutError):
                    self.failures += 1
                self.latencies.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.005)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        ordered = sorted(self.latencies) or [0.0]
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        return (f"/health/live p50 {statistics.median(ordered):.1f} ms, p99 {p99:.1f} ms, max {ordered[-1]:.1f} ms "
                f"over {len(self.latencies)} probes ({self.failures} failed)")


async def counters(session: aiohttp.ClientSession, base: str) -> list[str]:
    async with session.get(f"{base}/metrics") as response:
        text = await response.text()
    lines = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in COUNTERS:
                labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
                lines.append(f"{sample.name}{{{labels}}} {sample.value:,.0f}")
    return sorted(lines)


def report(title: str, rss: tuple[int, int], prober: Prober, budgets: str, figures: list[str], seconds: float) -> None:
    start, end = rss
    print(f"\n{title} ({seconds:.1f} s)")
    print(f"  rss {start / MiB:.0f} MiB -> {end / MiB:.0f} MiB (growth {(end - start) / MiB:+.0f} MiB; {budgets})")
    print(f"  {prober.summary()}")
    for line in figures:
        print(f"  {line}")


BASE_SETTINGS: dict[str, Any] = {"scrape_timeout": 2.0, "collection_jitter": 0.0, "system_metrics_interval": 1.0}


def budgets(settings: dict[str, Any]) -> str:
    from monitoring.settings import MonitoringSettings
    parsed = MonitoringSettings(**settings)
    text = (f"budgets: recent samples {parsed.recent_metrics_bytes / MiB:.0f} MiB, series "
            f"{parsed.max_series_bytes / MiB:.0f} MiB")
    if parsed.source == "remote_write":
        quotas = parsed.remote_write
        text += (f"; per namespace {quotas.max_agents_per_namespace:,} agents, {quotas.max_series_per_namespace:,} "
                 f"series, {quotas.max_bytes_per_namespace / MiB:.0f} MiB")
    return text


async def scrape_phase(cycles: int, interval: float, good: int) -> None:
    port = free_port()
    settings = {**BASE_SETTINGS, "collection_interval": interval}
    good_ids = [f"good-{index}" for index in range(good)]
    async with agents_process(good, port), service(settings) as (base, process), \
            aiohttp.ClientSession() as session:
        start_rss = process.memory_info().rss
        started = time.perf_counter()
        with Prober(base) as prober:
            for name in [*good_ids, *Agents.HOSTILE]:
                async with session.post(f"{base}/api/v1/agents", json={
                        "agent_id": name, "metrics_endpoint": f"http://127.0.0.1:{port}/{name}"}) as response:
                    if response.status != 201:
                        raise SystemExit(f"registering {name}: {response.status} {await response.text()}")
            deadline = time.monotonic() + cycles * interval * 4 + 30
            while await fewest_scrapes(session, base, good_ids) < cycles:
                if time.monotonic() > deadline:
                    raise SystemExit("the phase did not reach its cycles in time")
                await asyncio.sleep(interval / 2)
            end_rss = process.memory_info().rss
            figures = await counters(session, base)
        report(f"scrape: {good} well-behaved and {len(Agents.HOSTILE)} hostile agents, {cycles} cycles every "
               f"{interval:g} s", (start_rss, end_rss), prober, budgets(settings), figures,
               time.perf_counter() - started)


async def fewest_scrapes(session: aiohttp.ClientSession, base: str, agent_ids: list[str]) -> int:
    """The fewest scrapes the service made of any of these agents (from GET /api/v1/agents)."""
    async with session.get(f"{base}/api/v1/agents", params={"limit": "1000"}) as response:
        agents = {agent["agent_id"]: agent["scrapes"] for agent in (await response.json())["agents"]}
    return min(agents.get(agent_id, 0) for agent_id in agent_ids)


# --- remote-write --------------------------------------------------------------------------------------


def write_request(series: list[tuple[dict[str, str], list[tuple[float, int]]]]) -> bytes:
    request = WRITE_REQUEST()
    for labels, samples in series:
        entry = request.timeseries.add()
        for name, value in sorted(labels.items()):
            entry.labels.add(name=name, value=value)
        for value, timestamp_ms in samples:
            entry.samples.add(value=value, timestamp=timestamp_ms)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def agent_labels(name: str, agent_id: str, namespace: str = "agents", **extra: str) -> dict[str, str]:
    return {"__name__": name, "agent_id": agent_id, "namespace": namespace, "pod": f"{agent_id}-0", "job": "agents",
            **extra}


def remote_write_batches(cycle: int, good: int) -> list[tuple[str, bytes]]:
    now = int(time.time() * 1000)
    well = [(agent_labels("up", f"rw-good-{index}"), [(1.0, now)]) for index in range(good)] + \
        [(agent_labels("agent_cpu_usage_percent", f"rw-good-{index}"), [(30.0, now)]) for index in range(good)]
    return [
        ("well-behaved", write_request(well)),
        ("100,000 new series", write_request([(agent_labels("m", f"rw-wide-{index % 10}", series=f"{cycle}-{index}"),
                                               [(1.0, now)]) for index in range(100_000)])),
        ("ancient and future timestamps", write_request([(agent_labels("up", "rw-ancient"), [(1.0, -10**14)]),
                                                         (agent_labels("up", "rw-future"), [(1.0, now + 10**12)])])),
        ("a 3 MiB label", write_request([(agent_labels("m", "rw-huge", pod_template="x" * (3 * MiB)),
                                          [(1.0, now)])])),
        ("20,000 agent ids", write_request([(agent_labels("up", f"rw-id-{cycle}-{index}"), [(1.0, now)])
                                            for index in range(20_000)])),
        # At the per-request limits, new every round: what the namespace quotas (agents, series, bytes) stop.
        ("10,000 new series", write_request([(agent_labels("m", f"rw-fill-{index % 10}", series=f"{cycle}-{index}"),
                                              [(1.0, now)]) for index in range(10_000)])),
        ("5,000 new agent ids", write_request([(agent_labels("up", f"rw-new-{cycle}-{index}"), [(1.0, now)])
                                               for index in range(5_000)])),
        ("another namespace's agent", write_request([(agent_labels("up", "rw-good-0", namespace="payments"),
                                                      [(0.0, now)])])),
    ]


async def remote_write_phase(cycles: int, interval: float, good: int) -> None:
    settings = {**BASE_SETTINGS, "source": "remote_write", "collection_interval": interval}
    headers = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
               "X-Prometheus-Remote-Write-Version": "0.1.0"}
    statuses: dict[str, dict[int, int]] = {}
    async with service(settings) as (base, process), aiohttp.ClientSession() as session:
        start_rss = process.memory_info().rss
        started = time.perf_counter()
        with Prober(base) as prober:
            for cycle in range(cycles):
                for name, body in remote_write_batches(cycle, good):
                    async with session.post(f"{base}/api/v1/write", data=body, headers=headers) as response:
                        await response.read()
                        counts = statuses.setdefault(name, {})
                        counts[response.status] = counts.get(response.status, 0) + 1
                await asyncio.sleep(interval)
            end_rss = process.memory_info().rss
            figures = await counters(session, base)
        answers = [f"{name}: " + ", ".join(f"{count} x HTTP {status}" for status, count in sorted(counts.items()))
                   for name, counts in statuses.items()]
        report(f"remote-write: {len(statuses)} kinds of batch, {cycles} rounds every {interval:g} s",
               (start_rss, end_rss), prober, budgets(settings), answers + figures, time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20, help="scrape cycles / remote-write rounds (default 20)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between them (default 0.5)")
    parser.add_argument("--good", type=int, default=50, help="well-behaved agents (default 50)")
    parser.add_argument("--skip-remote-write", action="store_true", help="run the scrape phase only")
    parser.add_argument("--skip-scrape", action="store_true", help="run the remote-write phase only")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; the service and this process (agents, probes) share them")
    if not args.skip_scrape:
        asyncio.run(scrape_phase(args.cycles, args.interval, args.good))
    if not args.skip_remote_write:
        asyncio.run(remote_write_phase(args.cycles, args.interval, args.good))
    return 0


if __name__ == "__main__":
    sys.exit(main())
