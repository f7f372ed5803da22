"""A fake OpenAI-compatible server on loopback with deterministic token usage, for GenAI tracing tests.

Usage is chosen by the request's model (see `MODELS`), so a test can predict every token count:

    async with FakeLLM() as llm:          # llm.base_url == "http://127.0.0.1:<port>/v1"
        ...                               # point an openai client (or a subprocess) at llm.base_url
        assert llm.requests[0]["model"] == "gpt-4o"

Special request models: `error-429` / `error-500` answer with an OpenAI-style error of that status.
A chat request that offers `tools` and whose last message is the user's is answered with one tool call
(finish_reason `tool_calls`) to the first tool; otherwise the answer is text (finish_reason `stop`).
Streaming (`stream: true`) is answered as SSE; usage comes in a last chunk only when the request asks
for it with `stream_options.include_usage`, as OpenAI does.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Usage:
    """The token usage a model reports for one call."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # usage.prompt_tokens_details.cached_tokens (part of prompt_tokens)
    reasoning_tokens: int = 0  # usage.completion_tokens_details.reasoning_tokens (part of completion_tokens)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


# request model -> (response model, usage of every call to it)
MODELS: dict[str, tuple[str, Usage]] = {
    "gpt-4o": ("gpt-4o-2024-08-06", Usage(120, 30, cached_tokens=40)),
    "gpt-4o-mini": ("gpt-4o-mini-2024-07-18", Usage(80, 20)),
    "o3-mini": ("o3-mini-2025-01-31", Usage(200, 90, cached_tokens=64, reasoning_tokens=50)),
    "text-embedding-3-small": ("text-embedding-3-small", Usage(8, 0)),
}
EMBEDDING_DIMENSIONS = 4


def _words(messages: Any) -> int:
    if isinstance(messages, str):
        return len(messages.split())
    if isinstance(messages, list):
        return sum(_words(m) for m in messages)
    if isinstance(messages, dict):
        return _words(messages.get("content") or "")
    return 0


def usage_for(model: str, messages: Any = None) -> tuple[str, Usage]:
    """(response model, usage) for a request: from `MODELS`, else 10 + the words of the input and 5 out."""
    if model in MODELS:
        return MODELS[model]
    return model, Usage(10 + _words(messages), 5)


def _usage_json(usage: Usage, *, embeddings: bool = False) -> dict[str, Any]:
    if embeddings:
        return {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.prompt_tokens}
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


class FakeLLM:
    """The server: `async with FakeLLM() as llm`, or `await llm.start()` / `await llm.close()`.

    `requests` keeps every request body (JSON) and `headers` the matching request headers."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._runner: web.AppRunner | None = None
        self._counter = 0

    @property
    def base_url(self) -> str:
        """The OpenAI `base_url` (ends in /v1)."""
        return f"http://{self.host}:{self.port}/v1"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        return app

    async def start(self) -> FakeLLM:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeLLM:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def _record(self, request: web.Request) -> dict[str, Any]:
        body: dict[str, Any] = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        self._counter += 1
        return body

    @staticmethod
    def _error(model: str) -> web.Response | None:
        if not model.startswith("error-"):
            return None
        status = int(model.removeprefix("error-") or 500)
        kind = "rate_limit_exceeded" if status == 429 else "server_error"
        return web.json_response({"error": {"message": f"fake {status}", "type": kind, "param": None,
                                            "code": kind}}, status=status)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        model = str(body.get("model", ""))
        if (error := self._error(model)) is not None:
            return error
        messages = body.get("messages") or []
        response_model, usage = usage_for(model, messages)
        tools = body.get("tools") or []
        call_tool = bool(tools) and bool(messages) and messages[-1].get("role") == "user"
        message: dict[str, Any] = {"role": "assistant", "content": None if call_tool else f"answer {self._counter}",
                                   "refusal": None}
        if call_tool:
            name = tools[0]["function"]["name"]
            message["tool_calls"] = [{"id": f"call_{self._counter}", "type": "function",
                                      "function": {"name": name, "arguments": json.dumps({"city": "Paris"})}}]
        finish = "tool_calls" if call_tool else "stop"
        ident, created = f"chatcmpl-fake{self._counter}", 1_700_000_000 + self._counter
        common = {"id": ident, "created": created, "model": response_model, "system_fingerprint": "fp_fake"}
        if not body.get("stream"):
            return web.json_response({**common, "object": "chat.completion", "service_tier": "default",
                                      "choices": [{"index": 0, "message": message, "logprobs": None,
                                                   "finish_reason": finish}],
                                      "usage": _usage_json(usage)})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunk = {**common, "object": "chat.completion.chunk"}
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        if call_tool:
            deltas.append({"tool_calls": [{"index": 0, **message["tool_calls"][0]}]})
        else:
            deltas += [{"content": word} for word in ("answer", " ", str(self._counter))]
        for i, delta in enumerate(deltas):
            last = i == len(deltas) - 1
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish if last else None}
            await response.write(f"data: {json.dumps({**chunk, 'choices': [choice]})}\n\n".encode())
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(f"data: {json.dumps({**chunk, 'choices': [], 'usage': _usage_json(usage)})}\n\n"
                                 .encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        model = str(body.get("model", ""))
        if (error := self._error(model)) is not None:
            return error
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else [inputs]
        response_model, usage = usage_for(model, items)
        vector = [0.5] * EMBEDDING_DIMENSIONS
        data = []
        for i, _ in enumerate(items):
            embedding: Any = vector
            if body.get("encoding_format") == "base64":
                embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        return web.json_response({"object": "list", "data": data, "model": response_model,
                                  "usage": _usage_json(usage, embeddings=True)})
