"""Parse what an agent's metrics endpoint returns into samples.

Two formats: Prometheus text exposition (parsed by prometheus_client's own parser) and
the seed's JSON shape `{"metrics": [{"name", "type", "value", "labels"}]}`. Both are
untrusted input: anything malformed raises ParseError, the sample count is capped
(SampleLimitError, raised where reading reaches the limit, not after the whole body), labels
are bounded per sample and per body (LabelLimitError), and numbers that overflow or are
non-finite where the format has no such values raise NumberError. A ParseError's message never quotes the body (the parser's own complaint,
which does, goes to the debug log), though callers should still not show it to API clients:
the collector records a fixed "not a metrics body" instead.
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_fd_to_metric_families

from .fast_text import BadTimestamp, BodyShape, TooManySamples, parse_plain, parse_shaped, shape_of
from .label_limits import LabelLimits

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


class LabelLimitError(ParseError):
    """A sample's labels break the label limits, or the body's labels together the label bytes per body."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"labels over the limits ({reason})")
        self.reason = reason  # a monitoring_bodies_refused_total reason


class NumberError(ParseError):
    """A value or timestamp is not a number the format allows (an overflow such as 1e400, a non-finite time,
    a non-finite value in JSON)."""


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """What one body may carry: samples, and labels (per sample, and their characters in all)."""

    samples: int
    labels: LabelLimits | None = None
    label_bytes: int | None = None  # label names and values of all samples together, in characters


Labels = tuple[tuple[str, str], ...]


def check_labels(series: Iterable[tuple[str, Labels]], limits: BodyLimits) -> None:
    """LabelLimitError (reason as LabelLimits.problem gives it, `name_length`, or `label_bytes`) unless every
    series' labels are within the limits, its name within the label value length (the name is the `__name__`
    label to Prometheus), and all names and labels together within the label bytes per body."""
    bounds, budget = limits.labels, limits.label_bytes
    if bounds is None and budget is None:
        return
    total = 0
    for name, labels in series:
        if bounds is not None:
            if len(name) > bounds.max_value_length:
                raise LabelLimitError("name_length")
            reason = bounds.problem(labels) if labels else None
            if reason is not None:
                raise LabelLimitError(reason)
        if budget is not None:
            total += len(name)
            for label, value in labels:
                total += len(label) + len(value)
            if total > budget:
                raise LabelLimitError("label_bytes")


def parse_metrics(body: bytes, content_type: str, agent_id: str, now: float, limit: int | BodyLimits,
                  cache: ShapeCache | None = None) -> list[Sample]:
    """Samples from a metrics body; JSON when declared or when it looks like JSON, else Prometheus text.
    With a `cache`, a text body shaped like the last one has only its values read. `limit` bounds the samples
    (an int) or also their labels (BodyLimits): a body beyond them is refused whole (SampleLimitError,
    LabelLimitError), and reading stops at the sample limit."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("body is not UTF-8") from None
    limits = limit if isinstance(limit, BodyLimits) else BodyLimits(limit)
    if "json" in content_type or text.lstrip().startswith("{"):
        return parse_json(text, agent_id, now, limits)
    return parse_prometheus_text(text, agent_id, now, limits, cache=cache)


def parse_prometheus_text(text: str, agent_id: str, now: float, limit: int | BodyLimits, fast: bool = True,
                          cache: ShapeCache | None = None) -> list[Sample]:
    """Prometheus text exposition -> samples; a sample's own timestamp wins over `now`. Plain bodies take
    the fast path (fast_text.py: the same result, at a fraction of the cost), others prometheus_client's parser.

    Values may be NaN or +-Inf (the format has them); timestamps must be finite (NumberError)."""
    limits = limit if isinstance(limit, BodyLimits) else BodyLimits(limit)
    shaped = parse_shaped(cache.shape, text) if fast and cache is not None and cache.shape is not None else None
    try:
        if shaped is None:  # a shape's labels passed the limits when it was made: only new bodies are checked
            if cache is not None:
                cache.shape = None  # kept only for a body that passes
            plain = parse_plain(text, limits.samples) if fast else None
            if plain is not None:
                shaped = [(name, tuple(sorted(labels.items())) if labels else (), value, timestamp, kind)
                          for name, labels, value, timestamp, kind in plain]
                check_labels(((name, labels) for name, labels, _, _, _ in shaped), limits)
            if cache is not None:
                cache.shape = shape_of(text, shaped) if shaped is not None else None
    except TooManySamples:
        raise SampleLimitError(f"more than {limits.samples} samples") from None
    except BadTimestamp:
        raise NumberError("a timestamp is not a finite number") from None
    if shaped is not None:
        return [Sample(agent_id, name, value, now if timestamp is None else timestamp, labels, kind)
                for name, labels, value, timestamp, kind in shaped]
    samples = _parse_reference(text, agent_id, now, limits)
    check_labels(((sample.name, sample.labels) for sample in samples), limits)
    return samples


def _parse_reference(text: str, agent_id: str, now: float, limits: BodyLimits) -> list[Sample]:
    """prometheus_client's parser, fed line by line so that it stops at the (limit + 1)-th sample line:
    it gathers a family's samples before handing them over, so counting what it returns would read a
    200,000-line family whole."""
    samples: list[Sample] = []
    try:
        for family in text_string_to_metric_families_limited(text, limits.samples):
            for sample in family.samples:
                timestamp = float(sample.timestamp) if sample.timestamp is not None else now
                if not math.isfinite(timestamp):
                    raise NumberError("a timestamp is not a finite number")
                samples.append(Sample(agent_id, sample.name, float(sample.value), timestamp,
                                      tuple(sorted(sample.labels.items())), family.type))
    except ParseError:
        raise
    except Exception as error:  # the parser raises ValueError, IndexError, ... on garbage
        log.debug("invalid Prometheus text: %r", error)  # the parser's text quotes the offending line
        raise ParseError("invalid Prometheus text") from None
    return samples


def text_string_to_metric_families_limited(text: str, limit: int) -> Iterator[Metric]:
    """prometheus_client's text_string_to_metric_families, with SampleLimitError at the (limit + 1)-th
    sample line (a line neither blank nor a comment is one sample to its parser)."""
    return text_fd_to_metric_families(_sample_lines_within(text, limit))  # type: ignore[arg-type]


def _sample_lines_within(text: str, limit: int) -> Iterator[str]:
    left = limit
    for line in io.StringIO(text):
        stripped = line.strip()
        if stripped and stripped[0] != "#":
            if left == 0:
                raise SampleLimitError(f"more than {limit} samples")
            left -= 1
        yield line


def parse_json(text: str, agent_id: str, now: float, limit: int | BodyLimits) -> list[Sample]:
    """The seed's JSON shape -> samples. Values and timestamps must be finite numbers (JSON has no others;
    1e400 overflows, and Python's NaN / Infinity extensions are not JSON): NumberError otherwise."""
    limits = limit if isinstance(limit, BodyLimits) else BodyLimits(limit)
    try:
        document = json.loads(text, object_hook=_ObjectBudget(limits.samples))
    except json.JSONDecodeError as error:
        raise ParseError(f"invalid JSON at line {error.lineno} column {error.colno}") from None
    except ParseError:
        raise
    except (ValueError, RecursionError):  # integers over 4,300 digits; nesting deeper than the stack
        raise ParseError("invalid JSON") from None
    metrics = document.get("metrics") if isinstance(document, dict) else None
    if not isinstance(metrics, list):
        raise ParseError('JSON metrics must look like {"metrics": [{"name": ..., "value": ...}]}')
    if len(metrics) > limits.samples:
        raise SampleLimitError(f"more than {limits.samples} samples")
    samples = []
    for index, item in enumerate(metrics):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ParseError(f"metrics[{index}] needs a string `name`")
        value = _finite(item.get("value"), f"metrics[{index}].value")
        labels = item.get("labels") or {}
        if not isinstance(labels, dict):
            raise ParseError(f"metrics[{index}].labels must be an object")
        timestamp = item.get("timestamp")
        samples.append(Sample(agent_id, item["name"], value,
                              _finite(timestamp, f"metrics[{index}].timestamp")
                              if isinstance(timestamp, (int, float)) else now,
                              tuple(sorted((str(key), str(val)) for key, val in labels.items())),
                              _metric_type(item.get("type", "gauge"), index)))
    check_labels(((sample.name, sample.labels) for sample in samples), limits)
    return samples


# The metric types of the Prometheus and OpenMetrics text formats: a JSON body's `type` is one of them.
METRIC_TYPES = frozenset({"counter", "gauge", "histogram", "summary", "untyped", "unknown", "info", "stateset",
                          "gaugehistogram"})


def _metric_type(kind: object, index: int) -> str:
    """A JSON sample's type, lower-cased (the course's MetricType values, or its member names)."""
    if isinstance(kind, str) and len(kind) <= 16 and kind.lower() in METRIC_TYPES:
        return kind.lower()
    raise ParseError(f"metrics[{index}].type must be one of {', '.join(sorted(METRIC_TYPES))}")


def _finite(value: object, where: str) -> float:
    """`value` as a finite float; ParseError if it is no number, NumberError if it overflows or is not finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParseError(f"{where} must be a number")
    try:
        number = float(value)
    except OverflowError:  # an integer of over 308 digits
        raise NumberError(f"{where} is out of range") from None
    if not math.isfinite(number):
        raise NumberError(f"{where} must be a finite number")
    return number


class _ObjectBudget:
    """json.loads' object_hook counting the objects decoded: past two per allowed sample (an item and its
    labels) and the document, the body holds more samples than the limit, and decoding stops there instead
    of building the rest."""

    __slots__ = ("_left", "_limit")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._left = 2 * limit + 1

    def __call__(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._left -= 1
        if self._left < 0:
            raise SampleLimitError(f"more than {self._limit} samples")
        return obj
