"""How the analysis reads the OpenTelemetry GenAI conventions: agent identity, tokens counted once,
one invocation per hop, older attribute names, per-model usage, exceptions and links."""

from __future__ import annotations

from typing import Any

from monitoring.tracing.analysis import analyze
from monitoring.tracing.genai import facts_of
from monitoring.tracing.model import Tracer
from monitoring.tracing.spans import Span, SpanEvent, SpanLink, Trace

TRACE = "0af7651916cd43dd8448eb211c80319c"


def span(span_id: str, start: float, end: float, parent: str | None = None, service: str = "crew",
         kind: str = "internal", name: str = "op", status: str = "unset", **attributes: Any) -> Span:
    return Span(TRACE, span_id, name, service, start, parent_id=parent, end=end, status=status,
                attributes=attributes, kind=kind, service=service)


def analysis_of(*spans: Span) -> dict[str, Any]:
    trace = Trace(TRACE)
    for item in spans:
        trace.add_span(item)
    return analyze(trace)


def chat(span_id: str, parent: str, start: float, model: str, input_tokens: Any, output_tokens: Any,
         service: str = "crew", **extra: Any) -> Span:
    return span(span_id, start, start + 1, parent, service, kind="client", name=f"chat {model}",
                **{"gen_ai.operation.name": "chat", "gen_ai.request.model": model,
                   "gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": input_tokens,
                   "gen_ai.usage.output_tokens": output_tokens, **extra})


def agent(span_id: str, parent: str | None, name: str, start: float, end: float, service: str = "crew",
          kind: str = "internal", **extra: Any) -> Span:
    return span(span_id, start, end, parent, service, kind=kind, name=f"invoke_agent {name}",
                **{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name, **extra})


def test_agents_in_one_process_are_told_apart_and_their_descendants_inherit_the_name() -> None:
    result = analysis_of(
        span("root", 0, 30, name="workflow"),
        agent("a", "root", "planner", 0, 10), chat("a1", "a", 1, "gpt-4o", 100, 10),
        agent("b", "root", "researcher", 10, 20), span("b-step", 11, 19, "b", name="step"),
        chat("b1", "b-step", 12, "gpt-4o", 200, 20),  # a grandchild: inherits through the plain step span
        agent("c", "root", "writer", 20, 30), chat("c1", "c", 21, "gpt-4o-mini", 300, 30))
    agents = result["agents"]
    assert set(agents) == {"crew", "planner", "researcher", "writer"}  # the workflow span keeps the service
    assert (agents["researcher"]["spans"], agents["researcher"]["input_tokens"]) == (3, 200)
    assert agents["writer"]["models"]["gpt-4o-mini"]["output_tokens"] == 30
    assert all(entry["services"] == ["crew"] for entry in agents.values())
    assert result["agent_participation"]["planner"]["span_count"] == 2


def test_names_are_not_inherited_across_services() -> None:
    result = analysis_of(agent("a", None, "planner", 0, 10, service="planner-svc"),
                         span("remote", 1, 9, "a", service="search-svc", kind="server"))
    assert set(result["agents"]) == {"planner", "search-svc"}


def test_usage_on_invoke_agent_counts_only_where_no_descendant_reports_it() -> None:
    result = analysis_of(
        agent("a", None, "planner", 0, 10, **{"gen_ai.usage.input_tokens": 300, "gen_ai.usage.output_tokens": 30}),
        chat("a1", "a", 1, "gpt-4o", 100, 10), chat("a2", "a", 3, "gpt-4o", 200, 20),
        agent("b", None, "solo", 10, 20, **{"gen_ai.usage.input_tokens": 50, "gen_ai.usage.output_tokens": 5}))
    assert (result["agents"]["planner"]["input_tokens"], result["agents"]["planner"]["output_tokens"]) == (300, 30)
    assert result["agents"]["solo"]["input_tokens"] == 50  # nothing below it: its own totals count
    assert result["tokens"]["input_tokens"] == 350
    assert result["models"]["gpt-4o"]["calls"] == 2 and result["models"]["unknown"]["input_tokens"] == 50


def test_one_invocation_per_hop_and_kind_is_kept() -> None:
    result = analysis_of(
        agent("a", None, "planner", 0, 10, service="planner"),
        agent("call", "a", "researcher", 1, 9, service="planner", kind="client"),   # the caller's side
        span("http", 1.5, 8.5, "call", service="planner", kind="client", name="POST"),
        span("server", 2, 8, "http", service="researcher", kind="server", name="POST /invoke"),
        agent("b", "server", "researcher", 2, 8, service="researcher"),             # the callee's side
        agent("lonely", "a", "archive", 9, 9.5, service="planner", kind="client"),  # callee sent nothing
        span("tool", 3, 4, "b", service="researcher", name="execute_tool search",
             **{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}))
    agents = result["agents"]
    assert agents["researcher"]["agent_invocations"] == 1 and agents["researcher"]["tool_calls"] == 1
    assert agents["planner"]["agent_invocations"] == 1 and agents["archive"]["agent_invocations"] == 1


def test_older_names_strings_cache_and_reasoning_tokens() -> None:
    result = analysis_of(span("old", 0, 1, name="openai.chat", **{
        "llm.request.type": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4",
        "gen_ai.response.model": "gpt-4-0613", "gen_ai.usage.prompt_tokens": "120",
        "gen_ai.usage.completion_tokens": 7.0, "gen_ai.usage.cache_read.input_tokens": 100,
        "gen_ai.usage.reasoning.output_tokens": "3"}))
    model = result["models"]["gpt-4-0613"]
    assert (model["input_tokens"], model["output_tokens"], model["cache_read_input_tokens"],
            model["reasoning_output_tokens"], model["calls"], model["providers"]) == (120, 7, 100, 3, 1, ["openai"])


def test_invalid_token_values_are_ignored_and_counted() -> None:
    facts = facts_of({"gen_ai.usage.input_tokens": float("inf"), "gen_ai.usage.output_tokens": "lots",
                      "gen_ai.usage.cache_read.input_tokens": -4, "gen_ai.usage.reasoning.output_tokens": 2})
    assert facts.usage == (0, 0, 0, 0, 2) and facts.invalid_values == 3
    tracer = Tracer()
    tracer.add(span("x", 0, 1, **{"gen_ai.usage.input_tokens": float("nan")}), "otlp")
    assert tracer.stats.invalid_token_values == 1
    assert tracer.get_trace_analysis(TRACE)["tokens"]["input_tokens"] == 0  # type: ignore[index]


def test_model_errors_by_error_type_and_exception_events() -> None:
    failed = chat("c", "a", 1, "gpt-4o", 0, 0, **{"error.type": "RateLimitError"})
    failed.status = "error"
    crashed = span("t", 2, 3, "a", name="execute_tool search", status="error",
                   **{"gen_ai.operation.name": "execute_tool"})
    crashed.events = (SpanEvent("exception", 2.5, {"exception.type": "TimeoutError",
                                                   "exception.message": "search took too long"}),)
    crashed.links = (SpanLink("1" * 32, "2" * 16),)
    result = analysis_of(agent("a", None, "planner", 0, 5), failed, crashed)
    model = result["agents"]["planner"]["models"]["gpt-4o"]
    assert (model["calls"], model["errors"], model["error_types"]) == (1, 1, {"RateLimitError": 1})
    errors = {item["span_id"]: item for item in result["errors"]}
    assert errors["t"]["error_type"] == "TimeoutError" and errors["t"]["message"] == "search took too long"
    assert result["links"] == [{"span_id": "t", "linked_trace_id": "1" * 32, "linked_span_id": "2" * 16}]


def test_a_chain_of_client_calls_counts_every_hop() -> None:
    """X calls Y, whose only span is its own CLIENT call to Z: Y's invocation is not taken for an answer."""
    result = analysis_of(agent("x", None, "x-agent", 0, 10, service="x"),
                         agent("to-y", "x", "y-agent", 1, 9, service="x", kind="client"),
                         agent("to-z", "to-y", "z-agent", 2, 8, service="y", kind="client"),
                         agent("z", "to-z", "z-agent", 3, 7, service="z"))
    assert {name: entry["agent_invocations"] for name, entry in result["agents"].items()} == {
        "x-agent": 1, "y-agent": 1, "z-agent": 1}
