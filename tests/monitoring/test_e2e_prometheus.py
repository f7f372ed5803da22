"""End to end with the real stack on loopback: simulated agents, the monitoring service,
Prometheus scraping it and Alertmanager receiving its alerts (Debian packages
`prometheus` and `prometheus-alertmanager`; `./run test` installs them when it can)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

pytestmark = pytest.mark.skipif(not (PROMETHEUS and ALERTMANAGER),
                                reason="needs the Debian packages prometheus and prometheus-alertmanager "
                                       "(apt-get install prometheus prometheus-alertmanager)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str, method: str = "GET", body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read() or b"null")


def eventually(check: Callable[[], Any], what: str, timeout: float = 40.0) -> Any:
    """Poll `check` until it returns something truthy (errors count as not yet)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (OSError, urllib.error.URLError, ValueError, KeyError) as error:
            last_error = error
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_error})")


class Processes:
    """Starts processes with logs in a folder; stops them all at the end."""

    def __init__(self, stack: ExitStack, logs: Path) -> None:
        self._stack = stack
        self.logs = logs

    def start(self, name: str, *command: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_DIR)
        self._stack.callback(log.close)
        self._stack.callback(lambda: (process.terminate(), process.wait(timeout=10)))
        return process

    def simulator(self, port: int, agents: int = 2) -> subprocess.Popen[bytes]:
        return self.start("simulator", sys.executable, "-m", "monitoring.simulate", "--agents", str(agents),
                          "--port", str(port))

    def service(self, config: Path, port: int) -> subprocess.Popen[bytes]:
        return self.start("monitoring", sys.executable, "-m", "monitoring", "--config", str(config),
                          "--port", str(port))

    def prometheus(self, config: Path, data: Path, port: int) -> subprocess.Popen[bytes]:
        return self.start("prometheus", PROMETHEUS or "", f"--config.file={config}", f"--storage.tsdb.path={data}",
                          f"--web.listen-address=127.0.0.1:{port}")

    def dump(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text()[-3000:]}" for path in sorted(self.logs.glob("*.log")))


@contextmanager
def running(tmp_path: Path, ports: dict[str, int]) -> Iterator[Processes]:
    """The simulator, the service (tmp_path/monitoring.yaml) and Prometheus (tmp_path/prometheus.yml), all
    stopped at the end; an assertion failing inside gets their logs."""
    logs = tmp_path / "logs"
    logs.mkdir()
    with ExitStack() as exit_stack:
        processes = Processes(exit_stack, logs)
        processes.simulator(ports["simulator"])
        processes.service(tmp_path / "monitoring.yaml", ports["monitoring"])
        processes.prometheus(tmp_path / "prometheus.yml", tmp_path / "prom-data", ports["prometheus"])
        try:
            yield processes
        except AssertionError as error:
            raise AssertionError(f"{error}\n{processes.dump()}") from None


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    ports = {name: free_port() for name in ("simulator", "monitoring", "alertmanager", "prometheus")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    (tmp_path / "alertmanager.yml").write_text(
        "route: {receiver: sink, group_wait: 1s, group_interval: 1s, repeat_interval: 1h}\n"
        "receivers: [{name: sink}]\n")
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs: [{{job_name: monitoring, static_configs: [{{targets: ['127.0.0.1:{ports['monitoring']}']}}]}}]\n")
    (tmp_path / "monitoring.yaml").write_text(json.dumps({
        "collection_interval": 0.5, "collection_jitter": 0.0, "scrape_timeout": 1.0,
        "health": {"failures_before_alert": 2},
        "alertmanager": {"url": urls["alertmanager"], "resend_interval": 2},
        "agents": [{"agent_id": f"agent-{index}",
                    "metrics_endpoint": f"{urls['simulator']}/agents/agent-{index}/metrics"} for index in range(2)],
    }))
    with running(tmp_path, ports) as processes:
        processes.start("alertmanager", ALERTMANAGER or "", f"--config.file={tmp_path / 'alertmanager.yml'}",
                        f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
                        "--cluster.listen-address=")
        yield {"urls": urls, "processes": processes}


def prometheus_value(url: str, query: str) -> float | None:
    answer = get_json(f"{url}/api/v1/query?query={urllib.parse.quote(query)}")
    results = answer["data"]["result"]
    return float(results[0]["value"][1]) if results else None


def alertmanager_alerts(url: str) -> list[dict[str, Any]]:
    return get_json(f"{url}/api/v2/alerts?active=true&silenced=false&inhibited=false")


def test_agent_down_raises_and_resolves_through_prometheus_and_alertmanager(stack: dict[str, Any]) -> None:
    urls = stack["urls"]
    monitoring, prometheus, alertmanager = urls["monitoring"], urls["prometheus"], urls["alertmanager"]

    eventually(lambda: get_json(f"{monitoring}/api/v1/overview")["system_overview"]["agents"]["active_agents"] == 2, "both agents active")
    eventually(lambda: prometheus_value(prometheus, 'monitoring_agent_up{agent_id="agent-1"}') == 1.0,
               "Prometheus scraping the service")

    # agent-1 starts failing: the collector alerts, Alertmanager gets it, Prometheus sees it.
    get_json(f"{urls['simulator']}/control/agent-1", "POST", {"mode": "error"})
    eventually(lambda: any(alert["rule_id"] == "AgentUnreachable" and alert["agent_id"] == "agent-1"
                           for alert in get_json(f"{monitoring}/api/v1/alerts")["active"]), "collector alert")
    received = eventually(lambda: [alert for alert in alertmanager_alerts(alertmanager)
                                   if alert["labels"].get("agent_id") == "agent-1"], "Alertmanager alert")
    assert received[0]["labels"]["alertname"] == "AgentUnreachable"
    assert received[0]["labels"]["severity"] == "critical"
    eventually(lambda: prometheus_value(prometheus, 'monitoring_agent_up{agent_id="agent-1"}') == 0.0,
               "Prometheus seeing agent-1 down")
    eventually(lambda: prometheus_value(prometheus, 'monitoring_alerts_active{severity="critical"}') == 1.0,
               "Prometheus seeing the critical alert")
    assert prometheus_value(prometheus, 'monitoring_agent_health_score{agent_id="agent-1"}') < 50

    # agent-1 recovers: the collector resolves, Alertmanager drops it, Prometheus sees it up.
    get_json(f"{urls['simulator']}/control/agent-1", "POST", {"mode": "ok"})
    resolved = eventually(lambda: [alert for alert in get_json(f"{monitoring}/api/v1/alerts")["resolved"]
                                   if alert["agent_id"] == "agent-1"], "collector resolving")
    assert resolved[-1]["resolved_at"] is not None
    eventually(lambda: not [alert for alert in alertmanager_alerts(alertmanager)
                            if alert["labels"].get("agent_id") == "agent-1"], "Alertmanager resolving")
    eventually(lambda: prometheus_value(prometheus, 'monitoring_agent_up{agent_id="agent-1"}') == 1.0,
               "Prometheus seeing agent-1 up again")


def get_authorized(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_prometheus_remote_writes_to_the_service_which_scrapes_nothing(tmp_path: Path) -> None:
    """The real Prometheus scrapes two simulated agents (agent_id as a target label, as the ServiceMonitor's
    relabeling sets it) and remote-writes to the service: the agents appear, their rule fires, the health
    score and the overview are the seed's, and an agent going down goes unhealthy through `up`."""
    from monitoring.credentials import ingest_token
    from monitoring.credentials import PROMETHEUS_SCOPE

    admin, key = "e2e-admin-token-4c8e1a7f3b9d2605", "e2e-ingest-key-d27b5f9a3e1c8046"
    ports = {name: free_port() for name in ("simulator", "monitoring", "prometheus")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    targets = [{"targets": [f"127.0.0.1:{ports['simulator']}"],
                "labels": {"agent_id": f"agent-{index}", "__metrics_path__": f"/agents/agent-{index}/metrics"}}
               for index in range(2)]
    (tmp_path / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "agents", "static_configs": targets}],
        "remote_write": [{"url": f"{urls['monitoring']}/api/v1/write",
                          "authorization": {"credentials": ingest_token(key, PROMETHEUS_SCOPE)},
                          "queue_config": {"batch_send_deadline": "1s", "min_backoff": "100ms", "max_backoff": "1s"}}],
    }))
    (tmp_path / "monitoring.yaml").write_text(json.dumps({
        "source": "remote_write", "auth": {"admin_token": admin, "ingest_key": key},
        "health": {"failures_before_alert": 2},
        "alert_rules": [{"rule_id": "HighCpu", "metric": "agent_cpu_usage_percent", "threshold": 30,
                         "severity": "warning"}],
    }))
    with running(tmp_path, ports):
        def overview() -> dict[str, Any]:
            return get_authorized(f"{urls['monitoring']}/api/v1/overview", admin)["system_overview"]
        eventually(lambda: overview()["agents"]["active_agents"] == 2, "both agents active through remote-write")
        agents = get_authorized(f"{urls['monitoring']}/api/v1/agents", admin)["agents"]
        assert {agent["source"] for agent in agents} == {"remote_write"}
        eventually(lambda: {alert["agent_id"] for alert in get_authorized(f"{urls['monitoring']}/api/v1/alerts",
                                                                          admin)["active"]
                            if alert["rule_id"] == "HighCpu"} == {"agent-0", "agent-1"}, "the rule firing")
        detail = overview()["agents"]["agents_detail"]["agent-0"]
        # the simulator's 35 % CPU (> 30: -0 by the seed's bands; memory needs the pod's limit) and one alert
        assert 30 < detail["cpu_usage"] < 40 and detail["health_score"] == 90
        get_json(f"{urls['simulator']}/control/agent-1", "POST", {"mode": "down"})
        eventually(lambda: overview()["agents"]["agents_detail"]["agent-1"]["status"] == "unhealthy",
                   "agent-1 unhealthy through Prometheus' up")
        assert any(alert["rule_id"] == "AgentUnreachable" and alert["agent_id"] == "agent-1"
                   for alert in get_authorized(f"{urls['monitoring']}/api/v1/alerts", admin)["active"])
        assert overview()["agents"]["agents_detail"]["agent-0"]["status"] == "active"
