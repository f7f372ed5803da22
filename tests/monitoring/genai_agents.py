"""Real OpenTelemetry-instrumented OpenAI agents, run in subprocesses, for GenAI tracing tests.

The test process imports nothing of OpenTelemetry from here: each scenario runs this file as a script in a
fresh interpreter, which sets up its own tracer (and optionally meter/logger) providers exporting OTLP/HTTP
protobuf to `otlp_endpoint` (as `OTEL_EXPORTER_OTLP_ENDPOINT`, so signals go to /v1/traces, /v1/metrics,
/v1/logs), instruments the `openai` client (OTel contrib `openai-v2` or OpenLLMetry's `traceloop`), makes
agent/tool/workflow spans with `opentelemetry-util-genai`, talks to a `FakeLLM` at `llm_base_url`, and
flushes everything before it exits.

Scenarios (agent -> request models of its chat calls, in order; see `PLANS` and `expected_tokens`):
  single   invoke_agent support-bot (INTERNAL, root): chat gpt-4o (answers a tool call), execute_tool
           get_weather, chat gpt-4o-mini.
  crew     invoke_workflow research-crew (INTERNAL, root) over three invoke_agent spans: researcher
           (gpt-4o), writer (gpt-4o-mini x2), reviewer (o3-mini).
  flaky    invoke_agent flaky-bot: a streamed chat gpt-4o-mini, an embeddings call, then chat error-429,
           which fails (RateLimitError) and fails the agent span too; the script swallows the error.
  planner + researcher (two processes, `run_two_agents`): invoke_agent planner (INTERNAL, root) with chat
           gpt-4o-mini, then invoke_agent researcher (CLIENT, provider "a2a") around an HTTP POST carrying
           W3C traceparent to the researcher process, which records invoke_agent researcher (INTERNAL,
           remote parent; under a SERVER span `POST /invoke` if http_server_span) with chat gpt-4o x2.
With agent_usage=True every invoke_agent span also carries gen_ai.usage.input_tokens/output_tokens: the
totals of all chat calls beneath it, across the hop (so planner's include the researcher's).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

try:
    from .fake_llm import MODELS, usage_for
except ImportError:  # run as a script: this file's folder is on sys.path
    from fake_llm import MODELS, usage_for  # type: ignore[no-redef]

Scenario = Literal["single", "crew", "flaky", "planner", "researcher"]
Instrumentation = Literal["openai-v2", "traceloop"]

PLANS: dict[str, dict[str, list[str]]] = {
    "single": {"support-bot": ["gpt-4o", "gpt-4o-mini"]},
    "crew": {"researcher": ["gpt-4o"], "writer": ["gpt-4o-mini", "gpt-4o-mini"], "reviewer": ["o3-mini"]},
    "flaky": {"flaky-bot": ["gpt-4o-mini", "error-429"]},
    "planner": {"planner": ["gpt-4o-mini"]},
    "researcher": {"researcher": ["gpt-4o", "gpt-4o"]},
}
AGENT_IDS = {"support-bot": "agent-001", "researcher": "agent-researcher", "writer": "agent-writer",
             "reviewer": "agent-reviewer", "flaky-bot": "agent-flaky", "planner": "agent-planner"}
EMBEDDING_MODEL = "text-embedding-3-small"
REMOTE_PROVIDER = "a2a"


@dataclass(frozen=True)
class Tokens:
    """Token totals: input/output as reported by the LLM, cache_read and reasoning as parts of them."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    reasoning: int = 0

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(self.input + other.input, self.output + other.output,
                      self.cache_read + other.cache_read, self.reasoning + other.reasoning)


def _tokens(model: str) -> Tokens:
    if model.startswith("error-"):
        return Tokens()
    usage = usage_for(model)[1]
    return Tokens(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, usage.reasoning_tokens)


@dataclass(frozen=True)
class Expected:
    """Chat token totals of a scenario per agent name, per request model and per response model
    (embeddings are left out; the flaky scenario's embeddings call adds 8 input tokens)."""

    per_agent: dict[str, Tokens]
    per_request_model: dict[str, Tokens]
    per_response_model: dict[str, Tokens]


def expected_tokens(*scenarios: str) -> Expected:
    """What the chat spans of the given scenarios report, e.g. expected_tokens("planner", "researcher")."""
    agents: dict[str, Tokens] = {}
    requested: dict[str, Tokens] = {}
    responded: dict[str, Tokens] = {}
    for scenario in scenarios:
        for agent, models in PLANS[scenario].items():
            for model in models:
                if model.startswith("error-"):
                    continue
                tokens = _tokens(model)
                response_model = MODELS[model][0] if model in MODELS else model
                agents[agent] = agents.get(agent, Tokens()) + tokens
                requested[model] = requested.get(model, Tokens()) + tokens
                responded[response_model] = responded.get(response_model, Tokens()) + tokens
    return Expected(agents, requested, responded)


@dataclass(frozen=True)
class AgentRun:
    """A finished agent subprocess."""

    returncode: int
    stdout: str
    stderr: str


def _child_env(otlp_endpoint: str, llm_base_url: str, service_name: str, *, instrumentation: Instrumentation,
               agent_usage: bool, metrics: bool, logs: bool, capture_content: bool,
               env: Mapping[str, str] | None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACELOOP_"))}
    child = {
        **base,
        "OTEL_SERVICE_NAME": service_name,
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint.rstrip("/"),
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp" if metrics else "none",
        "OTEL_LOGS_EXPORTER": "otlp" if logs else "none",
        "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",  # util-genai >= 1.0 ignores it: always latest
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT" if capture_content else "",
        "OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT": "true" if capture_content else "false",
        "TRACELOOP_TRACE_CONTENT": "true" if capture_content else "false",
        "TRACELOOP_METRICS_ENABLED": "true" if metrics else "false",
        "GENAI_LLM_BASE_URL": llm_base_url,
        "GENAI_INSTRUMENTATION": instrumentation,
        "GENAI_AGENT_USAGE": "1" if agent_usage else "",
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }
    child.update(env or {})
    return child


async def _spawn(scenario: Scenario, child_env: dict[str, str], *, stdin: bool = False) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, os.path.abspath(__file__), scenario, env=child_env,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def _finish(proc: asyncio.subprocess.Process, timeout: float, stdout_head: str = "") -> AgentRun:
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
    return AgentRun(proc.returncode if proc.returncode is not None else -1, stdout_head + out.decode(), err.decode())


async def run_agent_process(otlp_endpoint: str, llm_base_url: str, scenario: Scenario, service_name: str, *,
                            instrumentation: Instrumentation = "openai-v2", agent_usage: bool = False,
                            metrics: bool = False, logs: bool = False, capture_content: bool = False,
                            env: Mapping[str, str] | None = None,
                            timeout: float = 60.0) -> AgentRun:
    """Run one scenario ("single", "crew", "flaky", or "planner" with env GENAI_RESEARCHER_URL) to the end.

    `otlp_endpoint` is the OTLP/HTTP base URL (no /v1/traces); `llm_base_url` a FakeLLM's `base_url`.
    `metrics`/`logs` turn on the OTLP metric/log exporters; `capture_content` message content (span
    attributes, plus log events where the instrumentation emits them); `env` adds or overrides variables."""
    child_env = _child_env(otlp_endpoint, llm_base_url, service_name, instrumentation=instrumentation,
                           agent_usage=agent_usage, metrics=metrics, logs=logs,
                           capture_content=capture_content, env=env)
    return await _finish(await _spawn(scenario, child_env), timeout)


async def run_two_agents(otlp_endpoint: str, llm_base_url: str, *, planner_service: str = "planner",
                         researcher_service: str = "researcher", http_server_span: bool = False,
                         timeout: float = 60.0, **options: Any) -> tuple[AgentRun, AgentRun]:
    """Start the researcher's HTTP server process, run the planner against it, then stop the researcher
    (closing its stdin makes it flush and exit). Returns (planner run, researcher run).
    `options` are run_agent_process's keyword options (instrumentation, agent_usage, metrics, ...)."""
    extra = dict(options.pop("env", None) or {})
    researcher_env = _child_env(otlp_endpoint, llm_base_url, researcher_service,
                                env={**extra, "GENAI_HTTP_SERVER_SPAN": "1" if http_server_span else ""},
                                **_defaults(options))
    researcher = await _spawn("researcher", researcher_env, stdin=True)
    assert researcher.stdout is not None and researcher.stdin is not None
    try:
        line = (await asyncio.wait_for(researcher.stdout.readline(), timeout)).decode()
        if not line.startswith("PORT "):
            raise RuntimeError(f"researcher did not start: {line!r}")
        url = f"http://127.0.0.1:{int(line.split()[1])}/invoke"
        planner = await run_agent_process(otlp_endpoint, llm_base_url, "planner", planner_service,
                                          env={**extra, "GENAI_RESEARCHER_URL": url}, timeout=timeout, **options)
    except BaseException:
        researcher.kill()
        await researcher.wait()
        raise
    finally:
        researcher.stdin.close()
    return planner, await _finish(researcher, timeout, line)


def _defaults(options: Mapping[str, Any]) -> dict[str, Any]:
    known = {"instrumentation": "openai-v2", "agent_usage": False, "metrics": False, "logs": False,
             "capture_content": False}
    unknown = set(options) - set(known)
    if unknown:
        raise TypeError(f"unknown options {sorted(unknown)}")
    return {**known, **options}


# ---- the subprocess side: nothing below runs in the test process ----

def _main(scenario: str) -> None:  # pragma: no cover - runs in the subprocess
    import openai
    from opentelemetry import _logs, metrics, trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.util.genai.handler import TelemetryHandler

    resource = Resource.create()  # service.name from OTEL_SERVICE_NAME
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(tracer_provider)
    providers: list[Any] = [tracer_provider]
    if os.environ.get("OTEL_METRICS_EXPORTER") == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        meter_provider = MeterProvider(resource=resource, metric_readers=[
            PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=60_000)])
        metrics.set_meter_provider(meter_provider)
        providers.append(meter_provider)
    if os.environ.get("OTEL_LOGS_EXPORTER") == "otlp":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
        _logs.set_logger_provider(logger_provider)
        providers.append(logger_provider)

    if os.environ["GENAI_INSTRUMENTATION"] == "traceloop":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as Instrumentor
    else:
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as Instrumentor  # type: ignore[no-redef]
    Instrumentor().instrument()
    handler = TelemetryHandler()
    client = openai.OpenAI(base_url=os.environ["GENAI_LLM_BASE_URL"], api_key="test-key", max_retries=0)
    agent_usage = bool(os.environ.get("GENAI_AGENT_USAGE"))
    try:
        if scenario == "researcher":
            _serve_researcher(handler, client, agent_usage)
        else:
            _SCENARIOS[scenario](handler, client, agent_usage)
    finally:
        for provider in providers:
            provider.shutdown()  # flushes


def _chat(client: Any, model: str, content: str, **kwargs: Any) -> Any:
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}], **kwargs)


def _used(response: Any) -> Tokens:
    usage = response.usage
    return Tokens(usage.prompt_tokens, usage.completion_tokens)


def _set_usage(agent: Any, tokens: Tokens, agent_usage: bool) -> None:
    if agent_usage:
        agent.input_tokens, agent.output_tokens = tokens.input, tokens.output


def _simple_agent(handler: Any, client: Any, name: str, models: list[str], agent_usage: bool,
                  context: Any = None) -> Tokens:
    """invoke_agent <name> with one chat call per model."""
    from opentelemetry.context import attach, detach

    total = Tokens()
    token = attach(context) if context is not None else None
    try:
        with handler.invoke_local_agent(agent_name=name, request_model=models[0]) as agent:
            agent.attributes["gen_ai.agent.id"] = AGENT_IDS[name]
            for i, model in enumerate(models):
                total += _used(_chat(client, model, f"{name} step {i + 1}"))
            _set_usage(agent, total, agent_usage)
    finally:
        if token is not None:
            detach(token)
    return total


def _single(handler: Any, client: Any, agent_usage: bool) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                               "parameters": {"type": "object",
                                                              "properties": {"city": {"type": "string"}}}}}]
    with handler.invoke_local_agent(agent_name="support-bot", request_model="gpt-4o") as agent:
        agent.attributes["gen_ai.agent.id"] = AGENT_IDS["support-bot"]
        messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a support bot."},
                                          {"role": "user", "content": "Weather in Paris?"}]
        first = client.chat.completions.create(model="gpt-4o", messages=messages, tools=tools)
        call = first.choices[0].message.tool_calls[0]
        with handler.tool(call.function.name, tool_type="function") as tool:
            tool.tool_call_id = call.id
            tool.arguments = json.loads(call.function.arguments)
            result = {"city": "Paris", "temp_c": 21}
            tool.tool_result = result
        messages += [{"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                     {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)}]
        second = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        _set_usage(agent, _used(first) + _used(second), agent_usage)


def _crew(handler: Any, client: Any, agent_usage: bool) -> None:
    with handler.workflow("research-crew"):
        for name, models in PLANS["crew"].items():
            _simple_agent(handler, client, name, models, agent_usage)


def _flaky(handler: Any, client: Any, agent_usage: bool) -> None:
    import openai

    try:
        with handler.invoke_local_agent(agent_name="flaky-bot", request_model="gpt-4o-mini") as agent:
            agent.attributes["gen_ai.agent.id"] = AGENT_IDS["flaky-bot"]
            stream = _chat(client, "gpt-4o-mini", "stream please", stream=True,
                           stream_options={"include_usage": True})
            total = Tokens()
            for chunk in stream:
                if chunk.usage is not None:
                    total += _used(chunk)
            client.embeddings.create(model=EMBEDDING_MODEL, input="embed me")
            _set_usage(agent, total, agent_usage)
            _chat(client, "error-429", "this fails")
    except openai.RateLimitError as exc:
        print(f"flaky-bot failed as planned: {type(exc).__name__}")


def _planner(handler: Any, client: Any, agent_usage: bool) -> None:
    import urllib.parse
    import urllib.request
    from opentelemetry.propagate import inject

    url = os.environ["GENAI_RESEARCHER_URL"]
    parts = urllib.parse.urlsplit(url)
    with handler.invoke_local_agent(agent_name="planner", request_model="gpt-4o-mini") as agent:
        agent.attributes["gen_ai.agent.id"] = AGENT_IDS["planner"]
        total = _used(_chat(client, "gpt-4o-mini", "plan the research"))
        with handler.invoke_remote_agent(REMOTE_PROVIDER, agent_name="researcher", server_address=parts.hostname,
                                         server_port=parts.port) as remote:
            remote.attributes["gen_ai.agent.id"] = AGENT_IDS["researcher"]
            headers = {"Content-Type": "application/json"}
            inject(headers)  # traceparent of the CLIENT invoke_agent span
            request = urllib.request.Request(url, data=b'{"task": "research"}', headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = json.loads(response.read())
            used = Tokens(answer["usage"]["input_tokens"], answer["usage"]["output_tokens"])
            _set_usage(remote, used, agent_usage)
        _set_usage(agent, total + used, agent_usage)


def _serve_researcher(handler: Any, client: Any, agent_usage: bool) -> None:
    """Serve POST /invoke until stdin closes; print `PORT <n>` once listening."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry import trace
    from opentelemetry.propagate import extract

    server_span = bool(os.environ.get("GENAI_HTTP_SERVER_SPAN"))
    models = PLANS["researcher"]["researcher"]
    tracer = trace.get_tracer("tests.genai_agents.http")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            context = extract({k.lower(): v for k, v in self.headers.items()})
            if server_span:
                with tracer.start_as_current_span(
                        "POST /invoke", context=context, kind=trace.SpanKind.SERVER,
                        attributes={"http.request.method": "POST", "url.path": "/invoke", "http.route": "/invoke",
                                    "http.response.status_code": 200}):
                    used = _simple_agent(handler, client, "researcher", models, agent_usage)
            else:
                used = _simple_agent(handler, client, "researcher", models, agent_usage, context=context)
            body = json.dumps({"answer": "done", "usage": {"input_tokens": used.input,
                                                            "output_tokens": used.output}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(f"PORT {server.server_address[1]}", flush=True)
    sys.stdin.read()
    server.shutdown()
    thread.join()


_SCENARIOS = {"single": _single, "crew": _crew, "flaky": _flaky, "planner": _planner}

if __name__ == "__main__":
    _main(sys.argv[1])
