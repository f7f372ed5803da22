"""Collector throughput for 100, 1,000 and 10,000 simulated agents (target: 10,000 every 15 s on one core).

    .venv/bin/python benchmarks/collector.py [--agents 100 1000 10000] [--interval 15]

The simulator runs in its own process on one core, the collector in this process pinned
to the other core (when the machine has two), talking over loopback. Every agent's windows
start full (`window_size` points of history, half an hour at 15 s: the steady state, not a
fresh store). After one interval of warm-up (every agent has started its schedule), one
interval is measured:
  scrapes/s, samples/s   sustained, successful scrapes only
  lag p99                how late scrapes start against their schedule
  cpu                    collector process CPU time / wall time (1.00 = one full core)
  rss                    collector process resident memory at the end
  /metrics ms            time to render the service's /metrics for that many agents, as the /metrics
                         handler does (median of 5, and max)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import psutil

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))


from monitoring.collector import Collector  # noqa: E402
from monitoring.exposition import Exposition, build_registry  # noqa: E402
from monitoring.notifiers import Dispatcher  # noqa: E402
from monitoring.parsing import Sample, parse_metrics  # noqa: E402
from monitoring.serving import tune_gc  # noqa: E402
from monitoring.settings import MonitoringSettings  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_until_up(url: str, timeout: float = 30.0, failure: str | None = None,
                        alive: Callable[[], bool] = lambda: True) -> None:
    """Wait until `url` answers 200; SystemExit(failure) when `timeout` passes or its process dies (`alive`)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline or not alive():
                raise SystemExit(failure or f"simulator did not come up at {url}")
            await asyncio.sleep(0.2)


async def fill_history(collector: Collector, agents: int, base: str, interval: float) -> None:
    """Fill every agent's windows with `window_size` points of the series the simulator sends, ending now."""
    async with aiohttp.ClientSession() as session, session.get(f"{base}/agents/agent-0/metrics") as response:
        body = await response.read()
    series = [(sample.name, sample.value, sample.labels)
              for sample in parse_metrics(body, response.content_type, "agent-0", 0.0, 1_000_000)]
    size, now, add = collector.settings.window_size, time.time(), collector.store.add
    for index in range(agents):
        agent_id = f"agent-{index}"
        for step in range(size, 0, -1):
            timestamp = now - step * interval
            for name, value, labels in series:
                add(Sample(agent_id, name, value, timestamp, labels))


async def measure(agents: int, interval: float, simulator_options: tuple[str, ...] = ()) -> dict[str, float]:
    port = free_port()
    simulator = subprocess.Popen([sys.executable, "-m", "monitoring.simulate", "--agents", str(agents),
                                  "--port", str(port), *simulator_options], cwd=PROJECT_DIR, stdout=subprocess.DEVNULL)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(simulator.pid, {1})
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_until_up(f"{base}/agents/agent-0/metrics")
        settings = MonitoringSettings(collection_interval=interval, scrape_timeout=10.0)
        connector = aiohttp.TCPConnector(limit=settings.max_concurrent_scrapes)
        async with aiohttp.ClientSession(connector=connector) as session:
            collector = Collector(settings, on_alert_change=lambda alert: None, session=session)
            for index in range(agents):
                collector.register(f"agent-{index}", f"{base}/agents/agent-{index}/metrics", source="static")
            await fill_history(collector, agents, base, interval)
            tune_gc()  # as the service does once its app is built
            collector.start()
            await asyncio.sleep(interval)  # warm-up: every schedule has started
            collector.stats.lags.clear()
            process = psutil.Process()
            cpu_before, wall_before = process.cpu_times(), time.perf_counter()
            scrapes_before, samples_before = collector.stats.scrapes_ok, collector.stats.samples
            await asyncio.sleep(interval)
            wall = time.perf_counter() - wall_before
            cpu_after = process.cpu_times()
            result = {
                "agents": agents,
                "scrapes_per_s": (collector.stats.scrapes_ok - scrapes_before) / wall,
                "samples_per_s": (collector.stats.samples - samples_before) / wall,
                "lag_p99_s": collector.stats.lag_quantile(0.99),
                "failed": collector.stats.scrapes_failed,
                "cpu": ((cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)) / wall,
                "rss_mib": process.memory_info().rss / 2**20,
                "target_per_s": agents / interval,
            }
            await collector.stop()
            # The handler's own entry point (the sliced rendering); max_age 0: Prometheus reads /metrics every
            # 15-30 s, so each render is a cold one.
            exposition = Exposition(build_registry(collector, Dispatcher([])), collector, max_age=0.0,
                                    write_timeout=settings.metrics_write_timeout, max_responses=1)
            renders = []
            for _ in range(5):
                started = time.perf_counter()
                body = await exposition.body()
                renders.append((time.perf_counter() - started) * 1000)
            result["metrics_ms"], result["metrics_max_ms"] = statistics.median(renders), max(renders)
            result["metrics_kib"] = len(body) / 1024
            return result
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--interval", type=float, default=15.0, help="collection interval in seconds (default 15)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {0})
    print(f"interval {args.interval:g} s; collector pinned to one core, simulator to another")
    print(f"{'agents':>6} {'target/s':>8} {'scrapes/s':>9} {'samples/s':>9} {'lag p99 s':>9} {'failed':>6} "
          f"{'cpu':>5} {'rss MiB':>7} {'/metrics ms':>11} {'max':>5}")
    for agents in args.agents:
        row = asyncio.run(measure(agents, args.interval))
        print(f"{row['agents']:>6} {row['target_per_s']:>8.1f} {row['scrapes_per_s']:>9.1f} "
              f"{row['samples_per_s']:>9.0f} {row['lag_p99_s']:>9.3f} {row['failed']:>6.0f} {row['cpu']:>5.2f} "
              f"{row['rss_mib']:>7.0f} {row['metrics_ms']:>11.0f} {row['metrics_max_ms']:>5.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
