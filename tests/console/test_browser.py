"""The web console in a real browser: headless Debian Chromium driven by Selenium, against the monitoring
service (a subprocess on loopback) with simulated agents and a real OTLP trace from the OpenTelemetry SDK.

Screenshots of every page (light and dark) land in build/console/. Skips, saying why, when Chromium or
its driver is missing (`./run test` installs the Debian packages chromium and chromium-driver).
"""

from __future__ import annotations

import base64
import json
import shutil
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from monitoring.credentials import ingest_token

from ..monitoring.test_e2e_prometheus import Processes, eventually, free_port

PROJECT_DIR = Path(__file__).resolve().parents[2]
SHOTS = PROJECT_DIR / "build" / "console"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
READ, ADMIN, INGEST_KEY = ("console-read-token-6b1e9d3f7a2c5048", "console-admin-token-e05a8c3f1d7b9264",
                            "console-ingest-key-93f7c1a5e8b2d406")
HOSTILE = '<img src=x onerror="window.__xss=1">'
AGENTS = 3

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Chromium and its driver (Debian packages chromium and chromium-driver; "
                                       "./run test installs them when it can)")


def call(url: str, token: str, body: Any = None, method: str = "GET") -> Any:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read() or b"null")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The service with three simulated agents registered, an alert rule firing on them, and a trace."""
    tmp = tmp_path_factory.mktemp("console")
    ports = {name: free_port() for name in ("simulator", "monitoring")}
    base = f"http://127.0.0.1:{ports['monitoring']}"
    (tmp / "monitoring.json").write_text(json.dumps({
        "collection_interval": 0.5, "collection_jitter": 0.0, "scrape_timeout": 1.0,
        "auth": {"read_token": READ, "admin_token": ADMIN, "ingest_key": INGEST_KEY}}))
    logs = tmp / "logs"
    logs.mkdir()
    with ExitStack() as stack:
        processes = Processes(stack, logs)
        processes.service(tmp / "monitoring.json", ports["monitoring"])
        try:
            eventually(lambda: urllib.request.urlopen(f"{base}/health/ready", timeout=2).status == 200,
                       "the service is ready")
            processes.start("simulator", sys.executable, "-m", "monitoring.simulate", "--agents", str(AGENTS),
                            "--port", str(ports["simulator"]), "--register", base, "--token", ADMIN)
            eventually(lambda: call(f"{base}/api/v1/overview", READ)["system_overview"]["agents"]["active_agents"]
                       == AGENTS, "the simulated agents are active")
            call(f"{base}/api/v1/alert-rules", ADMIN, {"rule_id": "HighCpu", "metric": "agent_cpu_usage_percent",
                                                       "operator": ">", "threshold": 30, "severity": "warning"}, "POST")
            eventually(lambda: len(call(f"{base}/api/v1/alerts", READ)["active"]) == AGENTS, "the alerts fire")
            trace_id = send_trace(base)
            eventually(lambda: call(f"{base}/api/v1/traces/{trace_id}", READ)["span_count"] == 6, "the trace arrives")
            yield {"base": base, "trace_id": trace_id}
        except AssertionError as error:
            raise AssertionError(f"{error}\n{processes.dump()}") from None


def send_trace(base: str) -> str:
    """A planner calls a model (looking something up beside it) and two researchers in turn (one fails, named
    with markup): six spans, two services; all but the lookup on the critical path."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    def tracer(service: str) -> tuple[TracerProvider, trace.Tracer]:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        exporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces",
                                    headers={"Authorization": f"Bearer {ingest_token(INGEST_KEY, 'agents')}"})
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider, provider.get_tracer("console-test")

    planner_provider, planner = tracer("planner")
    researcher_provider, researcher = tracer("researcher")
    with planner.start_as_current_span("invoke_agent planner", attributes={"gen_ai.operation.name": "invoke_agent",
                                                                           "gen_ai.agent.name": "planner"}) as root:
        with planner.start_as_current_span("chat gpt-4o", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.provider.name": "openai",
                "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 30}) as chat:
            # a lookup beside the model call, done before it: off the critical path
            beside = planner.start_span("search memory", context=trace.set_span_in_context(root),
                                        start_time=chat.start_time)
            time.sleep(0.02)
            beside.end(end_time=chat.start_time + 5_000_000)
        for index in range(2):
            with researcher.start_as_current_span(f"invoke_agent researcher-{index}") as call_span:
                time.sleep(0.01 * (index + 1))
                if index == 1:
                    with researcher.start_as_current_span(HOSTILE) as failing:
                        failing.set_status(trace.Status(trace.StatusCode.ERROR, HOSTILE))
                        failing.set_attribute("error.type", "TimeoutError")
                call_span.set_attribute("gen_ai.operation.name", "invoke_agent")
        trace_id = format(root.get_span_context().trace_id, "032x")
    for provider in (planner_provider, researcher_provider):
        provider.force_flush()
        provider.shutdown()
    return trace_id


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1440,900", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER or ""), options=options)
    driver.set_page_load_timeout(30)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: Any, script: str, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = driver.execute_script(script)
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (at {driver.current_url}: "
                         f"{driver.find_element('tag name', 'body').text[:500]!r}; {problems_in_console(driver)})")


def shoot(driver: Any, name: str) -> None:
    """A screenshot of the whole page (up to 4,000 px), light and dark."""
    for scheme in ("light", "dark"):
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                               {"features": [{"name": "prefers-color-scheme", "value": scheme}]})
        size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 4000), "scale": 1}
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                                 "clip": clip})
        (SHOTS / f"{name}-{scheme}.png").write_bytes(base64.b64decode(shot["data"]))
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def problems_in_console(driver: Any) -> list[str]:
    """Errors the page logged: script errors and Content Security Policy violations among them."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def sign_in(driver: Any, base: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/ui/login")
    driver.delete_all_cookies()
    driver.get(base + "/")
    assert "/ui/login" in driver.current_url
    driver.find_element(By.ID, "token").send_keys(READ)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    wait(driver, "return location.pathname === '/' && document.querySelector('table.agents')", "the overview")


def test_every_page_in_a_real_browser(service: dict[str, str], browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base = service["base"]
    sign_in(browser, base)
    # Overview: every agent with status, health and sparklines; the active alerts; system health.
    rows = browser.find_elements(By.CSS_SELECTOR, "table.agents tbody tr")
    assert len(rows) == AGENTS
    assert all("active" in row.text for row in rows)
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.agents svg.spark polyline")) == 2 * AGENTS
    assert "HighCpu" in browser.find_element(By.TAG_NAME, "main").text
    assert browser.find_element(By.CSS_SELECTOR, "nav a[aria-current='page']").text == "Overview"
    # Keyboard: the first Tab lands on the skip link, which moves focus to the content.
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.execute_script("return document.activeElement.textContent") == "Skip to content"
    shoot(browser, "overview")

    # Agent page: its series, alerts and the traces it took part in.
    browser.find_element(By.LINK_TEXT, "agent-0").click()
    wait(browser, "return document.querySelector('h1') && document.querySelector('h1').textContent.includes('agent-0')",
         "the agent page")
    main = browser.find_element(By.TAG_NAME, "main").text
    assert "agent_cpu_usage_percent" in main and "HighCpu" in main
    shoot(browser, "agent")

    browser.get(base + "/ui/alerts")
    assert browser.find_element(By.CSS_SELECTOR, "main table caption").text.startswith("Warning (3)")
    shoot(browser, "alerts")

    # Traces, filtered by an agent, then the trace: its waterfall grouped by agent, the critical path marked.
    browser.get(base + "/ui/traces?agent=researcher")
    links = browser.find_elements(By.CSS_SELECTOR, "main table a[href^='/ui/traces/']")
    assert len(links) == 1
    shoot(browser, "traces")
    links[0].click()
    rendered = wait(browser, "return document.getElementById('waterfall').dataset.rendered", "the waterfall")
    assert rendered == "6"
    groups = [group.text for group in browser.find_elements(By.CSS_SELECTOR, "#waterfall .wf-group")]
    assert groups == ["planner", "researcher"]
    critical = browser.find_elements(By.CSS_SELECTOR, "#waterfall .wf-row.critical")
    assert len(critical) == 5 == int(browser.find_element(By.ID, "waterfall").get_attribute("data-critical"))
    [off_path] = browser.find_elements(By.CSS_SELECTOR, "#waterfall .wf-row:not(.critical)")
    assert "search memory" in off_path.text
    assert all("on the critical path" in row.get_attribute("aria-label") for row in critical)
    assert browser.find_elements(By.CSS_SELECTOR, "#waterfall .wf-row.error")
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "gpt-4o" in page and "120" in page and "TimeoutError" in page  # tokens, model, error type per agent
    # What spans say is text, never markup: the hostile span name shows as written and runs nothing.
    assert HOSTILE in page
    assert browser.execute_script("return window.__xss") is None
    shoot(browser, "trace")
    assert problems_in_console(browser) == []


def test_signing_out_ends_the_session(service: dict[str, str], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, service["base"])
    browser.find_element(By.CSS_SELECTOR, "form.signout button").click()
    wait(browser, "return location.pathname === '/ui/login'", "the sign-in page")
    browser.get(service["base"] + "/ui/alerts")
    assert "/ui/login" in browser.current_url
