"""Parse what an agent's metrics endpoint returns into samples.

Two formats: Prometheus text exposition (parsed by prometheus_client's own parser) and
the seed's JSON shape `{"metrics": [{"name", "type", "value", "labels"}]}`. Both are
untrusted input: anything malformed raises ParseError, and the sample count is capped
(SampleLimitError). A ParseError's message never quotes the body (the parser's own complaint,
which does, goes to the debug log), though callers should still not show it to API clients:
the collector records a fixed "not a metrics body" instead.
"""

from __future__ import annotations

import json
import logging
import math
from typing import NamedTuple

from prometheus_client.parser import text_string_to_metric_families

from .fast_text import BodyShape, parse_plain, parse_shaped, shape_of

log = logging.getLogger(__name__)


class ParseError(ValueError):
    """The body is not valid metrics in either format."""


class SampleLimitError(ParseError):
    """The body holds more samples than the limit."""


class Sample(NamedTuple):
    """One value of one series of one agent at one time (seconds since the epoch). A named tuple: every
    scrape makes one per sample, and a tuple is made three times faster than a frozen dataclass."""

    agent_id: str
    name: str
    value: float
    timestamp: float
    labels: tuple[tuple[str, str], ...] = ()
    type: str = "gauge"

    def as_dict(self) -> dict[str, object]:
        return {"agent_id": self.agent_id, "name": self.name, "value": self.value, "timestamp": self.timestamp,
                "labels": dict(self.labels), "type": self.type}


class ShapeCache:
    """The shape of an agent's last plain text body (fast_text.BodyShape), kept between its scrapes."""

    __slots__ = ("shape",)

    def __init__(self) -> None:
        self.shape: BodyShape | None = None


def parse_metrics(body: bytes, content_type: str, agent_id: str, now: float, limit: int,
                  cache: ShapeCache | None = None) -> list[Sample]:
    """Samples from a metrics body; JSON when declared or when it looks like JSON, else Prometheus text.
    With a `cache`, a text body shaped like the last one has only its values read."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("body is not UTF-8") from None
    if "json" in content_type or text.lstrip().startswith("{"):
        return parse_json(text, agent_id, now, limit)
    return parse_prometheus_text(text, agent_id, now, limit, cache=cache)


def parse_prometheus_text(text: str, agent_id: str, now: float, limit: int, fast: bool = True,
                          cache: ShapeCache | None = None) -> list[Sample]:
    """Prometheus text exposition -> samples; a sample's own timestamp wins over `now`. Plain bodies take
    the fast path (fast_text.py: the same result, at a fraction of the cost), others prometheus_client's parser."""
    shaped = parse_shaped(cache.shape, text) if fast and cache is not None and cache.shape is not None else None
    if shaped is None:
        plain = parse_plain(text) if fast else None
        if plain is not None:
            shaped = [(name, tuple(sorted(labels.items())) if labels else (), value, timestamp, kind)
                      for name, labels, value, timestamp, kind in plain]
        if cache is not None:
            cache.shape = shape_of(text, shaped) if shaped is not None and len(shaped) <= limit else None
    if shaped is not None:
        if len(shaped) > limit:
            raise SampleLimitError(f"more than {limit} samples")
        return [Sample(agent_id, name, value, now if timestamp is None else timestamp, labels, kind)
                for name, labels, value, timestamp, kind in shaped]
    samples: list[Sample] = []
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if len(samples) >= limit:
                    raise SampleLimitError(f"more than {limit} samples")
                timestamp = float(sample.timestamp) if sample.timestamp is not None else now
                samples.append(Sample(agent_id, sample.name, float(sample.value), timestamp,
                                      tuple(sorted(sample.labels.items())), family.type))
    except ParseError:
        raise
    except Exception as error:  # the parser raises ValueError, IndexError, ... on garbage
        log.debug("invalid Prometheus text: %r", error)  # the parser's text quotes the offending line
        raise ParseError("invalid Prometheus text") from None
    return samples


def parse_json(text: str, agent_id: str, now: float, limit: int) -> list[Sample]:
    """The seed's JSON shape -> samples."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ParseError(f"invalid JSON at line {error.lineno} column {error.colno}") from None
    metrics = document.get("metrics") if isinstance(document, dict) else None
    if not isinstance(metrics, list):
        raise ParseError('JSON metrics must look like {"metrics": [{"name": ..., "value": ...}]}')
    if len(metrics) > limit:
        raise SampleLimitError(f"more than {limit} samples")
    samples = []
    for index, item in enumerate(metrics):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ParseError(f"metrics[{index}] needs a string `name`")
        value = item.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(float(value)):
            raise ParseError(f"metrics[{index}].value must be a number")
        labels = item.get("labels") or {}
        if not isinstance(labels, dict):
            raise ParseError(f"metrics[{index}].labels must be an object")
        timestamp = item.get("timestamp")
        samples.append(Sample(agent_id, item["name"], float(value),
                              float(timestamp) if isinstance(timestamp, (int, float)) else now,
                              tuple(sorted((str(key), str(val)) for key, val in labels.items())),
                              str(item.get("type", "gauge"))))
    return samples
