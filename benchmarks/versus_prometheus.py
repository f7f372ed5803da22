"""The collector against the real Prometheus, side by side in one run, on the same simulated agents.

    .venv/bin/python benchmarks/versus_prometheus.py [--agents 10000] [--interval 15] [--shapes ...]

For each shape of agents (SHAPES: kept-alive connections, a new connection per scrape, 56 samples per
scrape) the simulator runs on one core. Then, each in turn on the other core, for one interval after one
interval of warm-up: the collector (in this process), Prometheus (Debian's `prometheus`, scraping the same
agents, writing its TSDB), and, for the first shape, the service in `source: remote_write` receiving
Prometheus' remote-write (the service measured). Printed: CPU per scrape and per sample for each, their
ratio, RSS, /metrics render time, and for remote-write in the service's CPU per received sample. CPU is
process user+system time over the window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import psutil

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from benchmarks.collector import measure as measure_collector  # noqa: E402
from benchmarks.console import free_port, start_service  # noqa: E402
from benchmarks.console import wait_for as wait  # noqa: E402
from monitoring.credentials import PROMETHEUS_SCOPE, ingest_token  # noqa: E402

SIMULATOR_CORE, MEASURED_CORE = 1, 0
KEY = "bench-ingest-key-5a2e8c1f7d3b9064"


def pin(pid: int, core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(pid, {core})


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def own_counter(base: str, name: str) -> float:
    """The sum of a counter on a process's own /metrics (Prometheus does not scrape itself here)."""
    text = urllib.request.urlopen(f"{base}/metrics", timeout=30).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#"))


def query(base: str, expr: str) -> float:
    result = get(f"{base}/api/v1/query?query={urllib.parse.quote(expr)}")["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:  # Prometheus flushing its remote-write queue to a service already gone
        process.kill()
        process.wait(timeout=10)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def prometheus_config(agents: int, simulator: int, interval: float, remote_write: str | None) -> dict[str, Any]:
    targets = [{"targets": [f"127.0.0.1:{simulator}"],
                "labels": {"agent_id": f"agent-{index}", "__metrics_path__": f"/agents/agent-{index}/metrics"}}
               for index in range(agents)]
    config: dict[str, Any] = {"global": {"scrape_interval": f"{interval:g}s",
                                         "scrape_timeout": f"{min(interval, 10.0):g}s"},
                              "scrape_configs": [{"job_name": "agents", "static_configs": targets}]}
    if remote_write:
        config["remote_write"] = [{"url": remote_write,
                                   "authorization": {"credentials": ingest_token(KEY, PROMETHEUS_SCOPE)}}]
    return config


def run_prometheus(agents: int, simulator: int, interval: float, folder: Path,
                   remote_write: str | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    (folder / "prometheus.yml").write_text(json.dumps(prometheus_config(agents, simulator, interval, remote_write)))
    data = folder / f"data-{port}"
    process = subprocess.Popen([shutil.which("prometheus") or "prometheus", f"--config.file={folder / 'prometheus.yml'}",
                                f"--storage.tsdb.path={data}", f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pin(process.pid, MEASURED_CORE)
    base = f"http://127.0.0.1:{port}"
    wait(lambda: get(f"{base}/api/v1/status/buildinfo"), "Prometheus")
    return process, base


def measure_prometheus(agents: int, simulator: int, interval: float, folder: Path) -> dict[str, float]:
    process, base = run_prometheus(agents, simulator, interval, folder)
    try:
        time.sleep(interval * 2)  # warm-up: every target scraped
        handle = psutil.Process(process.pid)
        scrapes_before = own_counter(base, "prometheus_target_interval_length_seconds_count")
        cpu_before, wall_before = cpu_seconds(handle), time.perf_counter()
        time.sleep(interval)
        cpu, wall = cpu_seconds(handle) - cpu_before, time.perf_counter() - wall_before
        scrapes = own_counter(base, "prometheus_target_interval_length_seconds_count") - scrapes_before
        samples_per_scrape = query(base, "avg(scrape_samples_scraped)")
        return {"cpu_per_scrape_ms": cpu / max(scrapes, 1) * 1000, "cores": cpu / wall,
                "samples_per_scrape": samples_per_scrape, "rss_mib": handle.memory_info().rss / 2**20,
                "scrapes": scrapes}
    finally:
        stop(process)


def measure_remote_write(agents: int, simulator: int, interval: float, folder: Path) -> dict[str, float]:
    service, base = start_service({"source": "remote_write", "max_agents": agents + 10, "auth": {"ingest_key": KEY}},
                                  folder)
    pin(service.pid, MEASURED_CORE)
    prometheus, _ = run_prometheus(agents, simulator, interval, folder, f"{base}/api/v1/write")

    def received() -> float:
        text = urllib.request.urlopen(f"{base}/metrics", timeout=30).read().decode()
        return next(float(line.split()[-1]) for line in text.splitlines()
                    if line.startswith("monitoring_remote_write_samples_total"))
    try:
        time.sleep(interval * 2)
        handle = psutil.Process(service.pid)
        samples_before, cpu_before, wall_before = received(), cpu_seconds(handle), time.perf_counter()
        time.sleep(interval)
        cpu, wall = cpu_seconds(handle) - cpu_before, time.perf_counter() - wall_before
        samples = received() - samples_before
        return {"cpu_per_sample_us": cpu / max(samples, 1) * 1e6, "cores": cpu / wall, "samples": samples,
                "rss_mib": handle.memory_info().rss / 2**20}
    finally:
        stop(prometheus)
        stop(service)


# Shapes of agents: the friendly one, and the two that cost a Python scraper most against Go.
SHAPES = {
    "keep-alive": ((), "6 samples, connections kept alive"),
    "no-keep-alive": (("--close",), "6 samples, a new connection per scrape (prometheus_client's own server)"),
    "wide": (("--extra-series", "50"), "56 samples per scrape, kept alive"),
}


def measure_collector_alone(agents: int, interval: float, options: tuple[str, ...]) -> dict[str, float]:
    pin(0, MEASURED_CORE)
    return asyncio.run(measure_collector(agents, interval, options))


def measure_shape(agents: int, interval: float, options: tuple[str, ...],
                  remote_write: bool) -> tuple[dict[str, float], dict[str, float], dict[str, float] | None]:
    # Its own process: the RSS of one shape's collector is not carried into the next one's.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        collector = pool.apply(measure_collector_alone, (agents, interval, options))
    simulator_port = free_port()
    simulator = subprocess.Popen([sys.executable, "-m", "monitoring.simulate", "--agents", str(agents),
                                  "--port", str(simulator_port), *options], cwd=PROJECT_DIR, stdout=subprocess.DEVNULL)
    pin(simulator.pid, SIMULATOR_CORE)
    try:
        wait(lambda: urllib.request.urlopen(f"http://127.0.0.1:{simulator_port}/agents/agent-0/metrics", timeout=5),
             "the simulator")
        with tempfile.TemporaryDirectory() as folder:
            prometheus = measure_prometheus(agents, simulator_port, interval, Path(folder))
            remote = measure_remote_write(agents, simulator_port, interval, Path(folder)) if remote_write else None
    finally:
        stop(simulator)
    return collector, prometheus, remote


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    args = parser.parse_args()
    if not shutil.which("prometheus"):
        raise SystemExit("needs Debian's prometheus (./run test installs it)")
    pin(0, MEASURED_CORE)
    print(f"{args.agents:,} agents every {args.interval:g} s, each scraper alone on one core in turn", flush=True)
    print(f"  {'shape':<14} {'scraper':<24} {'cpu/scrape ms':>13} {'cpu/sample us':>13} {'cores':>6} {'rss MiB':>8} "
          f"{'scrapes':>8}", flush=True)
    for number, shape in enumerate(args.shapes):
        options, description = SHAPES[shape]
        collector, prometheus, remote = measure_shape(args.agents, args.interval, options, remote_write=number == 0)
        collector_per_scrape = collector["cpu"] / max(collector["scrapes_per_s"], 1e-9) * 1000
        collector_per_sample = collector["cpu"] / max(collector["samples_per_s"], 1e-9) * 1e6
        prometheus_per_sample = prometheus["cpu_per_scrape_ms"] * 1000 / max(prometheus["samples_per_scrape"], 1)
        print(f"  {shape:<14} {'collector':<24} {collector_per_scrape:>13.3f} {collector_per_sample:>13.1f} "
              f"{collector['cpu']:>6.2f} {collector['rss_mib']:>8.0f} "
              f"{collector['scrapes_per_s'] * args.interval:>8,.0f}")
        print(f"  {'':<14} {'prometheus (+ its TSDB)':<24} {prometheus['cpu_per_scrape_ms']:>13.3f} "
              f"{prometheus_per_sample:>13.1f} {prometheus['cores']:>6.2f} {prometheus['rss_mib']:>8.0f} "
              f"{prometheus['scrapes']:>8,.0f}")
        print(f"  {'':<14} ratio collector/prometheus: {collector_per_scrape / prometheus['cpu_per_scrape_ms']:.2f} "
              f"per scrape ({description})")
        print(f"  {'':<14} /metrics for {args.agents:,} agents: {collector['metrics_ms']:.0f} ms "
              f"(median of 5; max {collector['metrics_max_ms']:.0f})", flush=True)
        if remote is not None:
            print(f"  {'':<14} remote-write in: {remote['cpu_per_sample_us']:.1f} us of service CPU per received "
                  f"sample ({remote['samples']:,.0f} samples in {args.interval:g} s, {remote['cores']:.2f} cores, "
                  f"{remote['rss_mib']:.0f} MiB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
