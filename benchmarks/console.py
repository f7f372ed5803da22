"""The web console's speed: pages with 1,000 agents (target < 200 ms) and a 10,000-span trace's waterfall in
headless Chromium (target < 2 s).

    .venv/bin/python benchmarks/console.py [--agents 1000] [--spans 10000]

Part 1 runs the service and 1,000 simulated agents (subprocesses), scraped every 15 s (the default) and
then every 2 s (a service busy scraping 500 agents a second on a shared core), with an alert rule firing on
every agent (the worst case for the alerts page), and times each page over HTTP from this process (the
server's time to answer, at that scrape load).
Part 2 sends traces of 10,000 spans over OTLP (a random GenAI tree across 20 agents, a 10,000-deep chain,
a 10,000-wide fan-out) and times, in Chromium, navigation start to the waterfall's rows painted
(the `waterfall-rendered` performance mark).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
READ, ADMIN = "bench-read-token-8d3f1b6e2a9c7045", "bench-admin-token-1f7a4c9e3b6d2058"
BATCH = 1_000  # spans per OTLP request (the service's body limit is 4 MiB)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(url: str, token: str | None = None, body: Any = None, method: str = "GET") -> bytes:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method, headers=headers),
                                timeout=30) as response:
        return response.read()


def wait_for(check: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def start_service(config: dict[str, Any], folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    (folder / "monitoring.json").write_text(json.dumps(config))
    process = subprocess.Popen([sys.executable, "-m", "monitoring", "--config", str(folder / "monitoring.json"),
                                "--port", str(port)], cwd=PROJECT_DIR, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: request(f"{base}/health/ready"), "the service")
    return process, base


def pages(agents: int, interval: float, folder: Path) -> None:
    service, base = start_service({"collection_interval": interval, "scrape_timeout": 2.0,
                                   "max_agents": agents + 10, "auth": {"read_token": READ, "admin_token": ADMIN}},
                                  folder)
    simulator = subprocess.Popen([sys.executable, "-m", "monitoring.simulate", "--agents", str(agents), "--port",
                                  str(free_port()), "--register", base, "--token", ADMIN], cwd=PROJECT_DIR,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def overview() -> dict[str, Any]:
            return json.loads(request(f"{base}/api/v1/overview", READ))["system_overview"]
        wait_for(lambda: overview()["agents"]["active_agents"] == agents, f"{agents} active agents", 300)
        request(f"{base}/api/v1/alert-rules", ADMIN, {"rule_id": "HighCpu", "metric": "agent_cpu_usage_percent",
                                                      "operator": ">", "threshold": 1, "severity": "warning"}, "POST")
        wait_for(lambda: overview()["alerts"]["active_alerts"] == agents, "an alert per agent", 120)
        time.sleep(max(30.0, 3 * interval))  # several readings per agent in every sparkline
        print(f"pages with {agents:,} agents ({agents:,} active alerts), scraped every {interval:g} s "
              f"(ms over 20 requests; target < 200)")
        print(f"  {'page':<24} {'p50':>7} {'p95':>7} {'max':>7} {'KiB':>7}")
        for name, path in (("overview /", "/"), ("alerts", "/ui/alerts"), ("agent", "/ui/agents/agent-0"),
                           ("traces", "/ui/traces")):
            times, size = [], 0
            for _ in range(20):
                started = time.perf_counter()
                size = len(request(base + path, READ))
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            print(f"  {name:<24} {statistics.median(times):>7.1f} {times[18]:>7.1f} {times[-1]:>7.1f} "
                  f"{size / 1024:>7.0f}")
    finally:
        simulator.terminate()
        service.terminate()


def span(trace_id: str, span_id: int, parent: int | None, name: str, start: float, end: float,
         attributes: dict[str, Any]) -> dict[str, Any]:
    return {"traceId": trace_id, "spanId": f"{span_id:016x}", **({"parentSpanId": f"{parent:016x}"} if parent else {}),
            "name": name, "startTimeUnixNano": str(int(start * 1e9)), "endTimeUnixNano": str(int(end * 1e9)),
            "attributes": [{"key": key, "value": {"stringValue": value} if isinstance(value, str)
                            else {"intValue": str(value)}} for key, value in attributes.items()]}


def shaped(shape: str, count: int) -> list[tuple[str, dict[str, Any]]]:
    """(service, OTLP span) for a trace of `count` spans of one shape."""
    rng = random.Random(7)
    trace_id = f"{rng.getrandbits(128):032x}"
    out: list[tuple[str, dict[str, Any]]] = []
    if shape == "chain":  # each span the only child of the previous one
        for index in range(1, count + 1):
            out.append((f"agent-{index % 20}", span(trace_id, index, index - 1 or None, f"step {index}",
                                                    index * 0.001, count * 0.001 + 1 - index * 0.0001, {})))
    elif shape == "fan-out":  # one root, every other span its child, overlapping
        out.append(("planner", span(trace_id, 1, None, "invoke_agent planner", 0, 10, {})))
        for index in range(2, count + 1):
            start = rng.uniform(0, 9)
            out.append((f"agent-{index % 20}", span(trace_id, index, 1, "execute_tool search", start,
                                                    start + rng.uniform(0.01, 1), {})))
    else:  # a random GenAI tree: agents invoking agents, model calls with tokens
        bounds = {1: (0.0, 60.0)}
        out.append(("planner", span(trace_id, 1, None, "invoke_agent planner", 0, 60, {})))
        for index in range(2, count + 1):
            parent = rng.randint(max(1, index - 200), index - 1)
            low, high = bounds[parent]
            start = rng.uniform(low, high)
            end = min(high, start + rng.uniform(0.001, (high - low) / 2 + 0.001))
            bounds[index] = (start, end)
            chat = rng.random() < 0.4
            attributes = ({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                           "gen_ai.usage.input_tokens": rng.randint(10, 2000),
                           "gen_ai.usage.output_tokens": rng.randint(5, 500)} if chat
                          else {"gen_ai.operation.name": "invoke_agent"})
            out.append((f"agent-{index % 20}", span(trace_id, index, parent, "chat gpt-4o" if chat else
                                                    f"invoke_agent agent-{index % 20}", start, end, attributes)))
    return out


def send(base: str, spans: list[tuple[str, dict[str, Any]]]) -> str:
    for first in range(0, len(spans), BATCH):
        by_service: dict[str, list[dict[str, Any]]] = {}
        for service, item in spans[first:first + BATCH]:
            by_service.setdefault(service, []).append(item)
        body = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name",
                                                                "value": {"stringValue": service}}]},
                                   "scopeSpans": [{"spans": items}]} for service, items in by_service.items()]}
        request(f"{base}/v1/traces", None, body, "POST")
    return spans[0][1]["traceId"]


def waterfalls(count: int, folder: Path) -> None:
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        print("waterfall: skipped (needs Debian chromium and chromium-driver)")
        return
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    service, base = start_service({"tracing": {"max_spans_per_trace": count + 10}}, folder)  # open: loopback
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--disable-background-networking", "--window-size=1440,900",
                     f"--user-data-dir={folder / 'chromium'}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        print(f"waterfall of {count:,} spans in Chromium: navigation start to rows painted (ms; target < 2,000)")
        for shape in ("genai-tree", "chain", "fan-out"):
            trace_id = send(base, shaped(shape, count))
            wait_for(lambda: json.loads(request(f"{base}/api/v1/traces/{trace_id}"))["span_count"] == count,
                     f"the {shape} trace")
            times = []
            for _ in range(3):
                driver.get(f"{base}/ui/traces/{trace_id}")
                deadline = time.monotonic() + 30
                while not driver.execute_script("return document.getElementById('waterfall').dataset.rendered"):
                    if time.monotonic() > deadline:
                        raise SystemExit(f"the {shape} waterfall did not render")
                    time.sleep(0.02)
                times.append(driver.execute_script(
                    "return performance.getEntriesByName('waterfall-rendered')[0].startTime"))
            rows = driver.execute_script("return document.querySelectorAll('#waterfall .wf-row').length")
            print(f"  {shape:<12} best {min(times):>7.0f}  worst {max(times):>7.0f}  ({rows:,} rows)")
    finally:
        driver.quit()
        service.terminate()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1_000)
    parser.add_argument("--spans", type=int, default=10_000)
    parser.add_argument("--intervals", type=float, nargs="+", default=[15.0, 2.0],
                        help="scrape intervals to measure the pages at (2 s: a busy service)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for interval in args.intervals:
            pages(args.agents, interval, Path(folder))
        waterfalls(args.spans, Path(folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
