"""What a span says in the OpenTelemetry GenAI semantic conventions, read once per span.

`facts_of(attributes)` turns a span's attributes into `GenAIFacts`: the operation, the agent
it names, the model and provider, and token usage. Current names come first; the older and
neighbouring names agents still send are accepted (`gen_ai.usage.prompt_tokens`, `gen_ai.system`,
OpenLLMetry's `llm.request.type`, ...). Counts sent as strings are coerced; non-finite, negative
or unparseable counts are ignored and counted in `invalid_values`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

OPERATION = "gen_ai.operation.name"
INVOKE_AGENT = "invoke_agent"
CREATE_AGENT = "create_agent"
EXECUTE_TOOL = "execute_tool"
# Operations that call a model: the source of token usage.
MODEL_CALLS = frozenset({"chat", "text_completion", "generate_content", "embeddings", "completion", "embedding"})
ERROR_TYPE = "error.type"

# First name present wins: the current convention, then older or neighbouring ones.
AGENT_NAMES = ("gen_ai.agent.name", "gen_ai.agent.id")
RESPONSE_MODELS = ("gen_ai.response.model",)
REQUEST_MODELS = ("gen_ai.request.model",)
PROVIDERS = ("gen_ai.provider.name", "gen_ai.system")
LEGACY_OPERATIONS = ("llm.request.type",)  # OpenLLMetry before it wrote gen_ai.operation.name
USAGE = {
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.usage.prompt_tokens"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                      "llm.usage.completion_tokens"),
    "cache_read_input_tokens": ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
                                "gen_ai.usage.input_tokens.cached"),
    "cache_creation_input_tokens": ("gen_ai.usage.cache_creation.input_tokens",
                                    "gen_ai.usage.cache_creation_input_tokens",
                                    "gen_ai.usage.input_tokens.cache_write"),
    "reasoning_output_tokens": ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.output_tokens.reasoning",
                                "gen_ai.usage.reasoning_tokens"),
}
TOKEN_KINDS = tuple(USAGE)
_PREFIXES = ("gen_ai.", "llm.")
_CLASS_REPR = re.compile(r"^<class '([^']+)'>$")  # some instrumentations send repr(type) as error.type


@dataclass(slots=True, frozen=True)
class GenAIFacts:
    """The GenAI facts of one span; `usage` is None when the span reports no token counts."""

    operation: str = ""
    agent_name: str | None = None
    model: str | None = None             # the response's model, else the request's
    request_model: str | None = None
    provider: str | None = None
    usage: tuple[int, ...] | None = None  # in TOKEN_KINDS order
    invalid_values: int = 0               # token counts ignored (non-finite, negative, not a number)
    error_type: str | None = None

    @property
    def calls_model(self) -> bool:
        return self.operation in MODEL_CALLS or (not self.operation and self.model is not None)


NO_FACTS = GenAIFacts()


def facts_of(attributes: dict[str, Any]) -> GenAIFacts:
    """The span's GenAI facts; `NO_FACTS` (shared) for the many spans that have none."""
    if not attributes:
        return NO_FACTS
    if not any(key.startswith(_PREFIXES) for key in attributes):
        error_type = attributes.get(ERROR_TYPE)
        return NO_FACTS if error_type is None else GenAIFacts(error_type=_error_type(error_type))
    usage: list[int] = []
    reported, invalid = False, 0
    for names in USAGE.values():
        value = _first(attributes, names)
        count, bad = _count(value)
        usage.append(count)
        invalid += bad
        reported = reported or (value is not None and not bad)
    request_model = _text(_first(attributes, REQUEST_MODELS))
    operation = _text(attributes.get(OPERATION)) or _text(_first(attributes, LEGACY_OPERATIONS)) or ""
    return GenAIFacts(
        operation=operation,
        agent_name=_text(_first(attributes, AGENT_NAMES)),
        model=_text(_first(attributes, RESPONSE_MODELS)) or request_model,
        request_model=request_model,
        provider=_text(_first(attributes, PROVIDERS)),
        usage=tuple(usage) if reported else None,
        invalid_values=invalid,
        error_type=_error_type(attributes.get(ERROR_TYPE)),
    )


def _first(attributes: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = attributes.get(name)
        if value is not None:
            return value
    return None


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _error_type(value: Any) -> str | None:
    text = _text(value)
    match = _CLASS_REPR.match(text) if text is not None else None
    return match.group(1) if match else text


def _count(value: Any) -> tuple[int, int]:
    """(token count, 1 when the value was present but unusable); strings are coerced."""
    if value is None:
        return 0, 0
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return 0, 1
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0, 1
    if isinstance(value, float) and not math.isfinite(value) or value < 0:
        return 0, 1
    return int(value), 0
