"""The service against real GenAI instrumentation: agents in subprocesses, instrumented with the
OpenTelemetry contrib OpenAI instrumentation and GenAI util (or OpenLLMetry), calling a fake
OpenAI-compatible server on loopback and exporting traces, metrics and logs to the service over
OTLP/HTTP with the generic endpoint setting. Token counts are exact (fake_llm.MODELS)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from monitoring.app import init_app

from .conftest import make_settings
from .fake_llm import FakeLLM
from .genai_agents import AgentRun, expected_tokens, run_agent_process, run_two_agents

Server = tuple[Any, str]  # (aiohttp test client, OTLP base URL)


@pytest.fixture
async def service(aiohttp_server: Callable[..., Any], aiohttp_client: Callable[..., Any]) -> Server:
    server = await aiohttp_server(init_app(make_settings()))
    return await aiohttp_client(server), str(server.make_url("")).rstrip("/")


def exported_cleanly(run: AgentRun) -> None:
    assert run.returncode == 0, run.stderr
    assert "Failed to export" not in run.stderr and "404" not in run.stderr, run.stderr


async def only_trace(client: Any) -> dict[str, Any]:
    listing = (await (await client.get("/api/v1/traces")).json())["traces"]
    assert len(listing) == 1, listing
    return await (await client.get(f"/api/v1/traces/{listing[0]['trace_id']}")).json()


async def test_three_agents_in_one_process_with_their_own_totals(service: Server) -> None:
    """CrewAI/LangGraph style: three agents under one workflow in one process, each reporting its own
    totals on its invoke_agent span (as the conventions allow) over its chat spans. Metrics and
    logs go to the same endpoint."""
    client, endpoint = service
    async with FakeLLM() as llm:
        run = await run_agent_process(endpoint, llm.base_url, "crew", "crew-service", agent_usage=True,
                                      metrics=True, logs=True, capture_content=True)
    exported_cleanly(run)
    analysis = await only_trace(client)
    expected = expected_tokens("crew")
    for name in ("researcher", "writer", "reviewer"):
        agent = analysis["agents"][name]
        assert (agent["input_tokens"], agent["output_tokens"]) == (expected.per_agent[name].input,
                                                                     expected.per_agent[name].output), name
        assert agent["agent_invocations"] == 1 and agent["services"] == ["crew-service"]
    for model, tokens in expected.per_response_model.items():
        assert (analysis["models"][model]["input_tokens"], analysis["models"][model]["output_tokens"]) == (
            tokens.input, tokens.output), model
    assert analysis["models"]["gpt-4o-mini-2024-07-18"]["calls"] == 2
    assert analysis["models"]["gpt-4o-mini-2024-07-18"]["providers"] == ["openai"]

    usage = (await (await client.get("/api/v1/genai/usage")).json())["agents"]["crew-service"]
    for model, tokens in expected.per_response_model.items():
        assert usage[model]["tokens"] == {"input": tokens.input, "output": tokens.output}, model
        assert sum(usage[model]["calls"].values()) == (2 if model.startswith("gpt-4o-mini") else 1)
    metrics = await (await client.get("/metrics")).text()
    assert 'monitoring_genai_client_tokens_total{agent_id="crew-service",model="o3-mini-2025-01-31",' \
           'namespace="",token_type="output"} 90.0' in metrics
    assert "monitoring_otlp_log_records_total 4.0" in metrics  # one per chat call


async def test_an_agent_calling_another_over_http_counts_one_invocation(service: Server) -> None:
    """Two processes: the planner's CLIENT invoke_agent span and the researcher's own invoke_agent span
    are one hop; every invoke_agent span also carries totals that include the calls below it."""
    client, endpoint = service
    async with FakeLLM() as llm:
        planner, researcher = await run_two_agents(endpoint, llm.base_url, agent_usage=True, http_server_span=True)
    exported_cleanly(planner)
    exported_cleanly(researcher)
    analysis = await only_trace(client)
    expected = expected_tokens("planner", "researcher")
    agents = analysis["agents"]
    assert agents["planner"]["agent_invocations"] == agents["researcher"]["agent_invocations"] == 1
    for name in ("planner", "researcher"):
        assert (agents[name]["input_tokens"], agents[name]["output_tokens"]) == (
            expected.per_agent[name].input, expected.per_agent[name].output), name
    assert sorted(agents["researcher"]["services"]) == ["planner", "researcher"]  # its CLIENT span is the planner's
    assert analysis["tokens"]["input_tokens"] == sum(tokens.input for tokens in expected.per_agent.values())
    assert analysis["complete"] and analysis["critical_path_duration_seconds"] == analysis["total_duration_seconds"]


async def test_openllmetry_names_cache_and_reasoning_tokens(service: Server) -> None:
    client, endpoint = service
    async with FakeLLM() as llm:
        run = await run_agent_process(endpoint, llm.base_url, "crew", "crew-service", instrumentation="traceloop")
    exported_cleanly(run)
    analysis = await only_trace(client)
    reviewer = analysis["agents"]["reviewer"]["models"]["o3-mini-2025-01-31"]
    expected = expected_tokens("crew").per_agent["reviewer"]
    assert (reviewer["input_tokens"], reviewer["output_tokens"], reviewer["cache_read_input_tokens"],
            reviewer["reasoning_output_tokens"], reviewer["calls"]) == (
        expected.input, expected.output, expected.cache_read, expected.reasoning, 1)
    assert analysis["tokens"]["cache_read_input_tokens"] == sum(
        tokens.cache_read for tokens in expected_tokens("crew").per_agent.values())


async def test_a_failed_model_call_is_named_by_its_error_type(service: Server) -> None:
    client, endpoint = service
    async with FakeLLM() as llm:
        run = await run_agent_process(endpoint, llm.base_url, "flaky", "flaky-service")
    exported_cleanly(run)
    analysis = await only_trace(client)
    bot = analysis["agents"]["flaky-bot"]
    assert bot["models"]["error-429"]["errors"] == 1
    assert bot["models"]["error-429"]["error_types"] == {"openai.RateLimitError": 1}
    assert {error["error_type"] for error in analysis["errors"]} == {"openai.RateLimitError"}
    assert bot["models"]["text-embedding-3-small"]["input_tokens"] == 8
