"""A fast path through the Prometheus text format for the bodies agents usually send, giving exactly what
prometheus_client's parser gives (families, their types, its renaming of counter samples to `_total`,
values and timestamps). Anything outside that plain subset (escaped or quoted label values with braces,
quoted metric names, exemplars, odd numbers) returns None and the caller uses prometheus_client's parser,
so its semantics stay the reference. tests/monitoring/test_fast_text.py compares the two on generated bodies.

An agent sends the same body every scrape but for its values. Like Prometheus' per-target scrape cache, a
BodyShape remembers the last body with its values cut out and what the full parse made of each line; the
next body that matches it line for line only has its values read (parse_shaped).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"({NAME})(?:\{{([^{{}}\"\\\\]*(?:\"[^\"\\\\{{}}]*\"[^{{}}\"\\\\]*)*)\}})?[ \t]+([^ \t_]+)"
                     r"(?:[ \t]+([^ \t_]+))?")
_LABEL = re.compile(r"[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*\"([^\"\\]*)\"[ \t]*(?:,|$)")
_NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?|"
                     r"[Nn][Aa][Nn]|[Ii][Nn][Ff](?:[Ii][Nn][Ii][Tt][Yy])?)")
_NAME = re.compile(NAME)
_SUFFIXES = {"counter": ("",), "gauge": ("",), "summary": ("_count", "_sum", ""),
             "histogram": ("_count", "_sum", "_bucket")}
_TYPES = {"counter", "gauge", "summary", "histogram", "untyped"}
MAX_NUMBER_LENGTH = 40  # longer digits: prometheus_client's int() path may overflow where float() would not

Parsed = tuple[str, dict[str, str], float, float | None, str]  # name, labels, value, timestamp (s), family type


class _Unsupported(Exception):
    """Outside the plain subset: let prometheus_client parse the whole body."""


class TooManySamples(Exception):
    """The body holds more sample lines than the limit: reading stopped there (the rest is never parsed)."""


class BadTimestamp(Exception):
    """A sample's timestamp is not a finite number (1e400 overflows; NaN and Inf are no times)."""


def _labels(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    labels: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _LABEL.match(text, position)
        if match is None:
            if text[position:].strip(" \t,"):
                raise _Unsupported
            break
        if match.group(1) in labels or match.group(1) == "__name__":
            raise _Unsupported
        labels[match.group(1)] = match.group(2)
        position = match.end()
    return labels


def _number(token: str) -> float:
    if len(token) > MAX_NUMBER_LENGTH or not _NUMBER.fullmatch(token):
        raise _Unsupported
    return float(token)


def _timestamp(token: str) -> float:
    """Seconds from a millisecond timestamp token; BadTimestamp unless finite."""
    seconds = _number(token) / 1000
    if not math.isfinite(seconds):
        raise BadTimestamp
    return seconds


def _families(text: str, limit: int | None = None
              ) -> Iterator[tuple[str, str, list[tuple[str, dict[str, str], float, float | None]]]]:
    """(family name, type, samples) in prometheus_client's grouping; TooManySamples at the (limit + 1)-th
    sample line, so a long body is not read past its limit."""
    name, typ, samples, allowed = "", "untyped", [], []  # type: ignore[var-annotated]
    left = limit if limit is not None else -1
    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            continue
        if line[0] == "#":
            parts = line.split(None, 3)
            if len(parts) < 2 or parts[0] != "#":
                if len(parts) >= 2 and parts[0] != "#":
                    raise _Unsupported  # "#TYPE": let the reference parser decide
                continue
            if len(parts) > 2 and parts[1] not in ("TYPE", "HELP"):
                continue
            if len(parts) == 2:
                continue
            candidate = parts[2]
            if not _NAME.fullmatch(candidate):
                raise _Unsupported
            if parts[1] == "HELP":
                if candidate != name:
                    if name:
                        yield name, typ, samples
                    name, typ, samples, allowed = candidate, "untyped", [], [candidate]
            else:
                if len(parts) < 4 or parts[3] not in _TYPES:
                    raise _Unsupported
                if candidate != name:
                    if name:
                        yield name, typ, samples
                    name, samples = candidate, []
                typ = parts[3]
                allowed = [name + suffix for suffix in _SUFFIXES.get(typ, ("",))]
            continue
        if left == 0:
            raise TooManySamples
        left -= 1
        match = _SAMPLE.fullmatch(line)
        if match is None:
            raise _Unsupported
        sample_name, label_text, value_token, time_token = match.groups()
        sample = (sample_name, _labels(label_text), _number(value_token),
                  _timestamp(time_token) if time_token is not None else None)
        if sample_name not in allowed:
            if name:
                yield name, typ, samples
            name, typ, samples, allowed = "", "untyped", [], []
            yield sample_name, "untyped", [sample]
        else:
            samples.append(sample)
    if name:
        yield name, typ, samples


def parse_plain(text: str, limit: int | None = None) -> list[Parsed] | None:
    """The body's samples as prometheus_client would give them, or None when it is outside the plain subset.
    TooManySamples when it holds more than `limit` samples, BadTimestamp for a timestamp that is no time."""
    out: list[Parsed] = []
    try:
        for family, typ, samples in _families(text, limit):
            if typ == "counter" and not family.endswith("_total"):
                samples = [(name + "_total", labels, value, timestamp) for name, labels, value, timestamp in samples]
            kind = "unknown" if typ == "untyped" else typ
            out += [(name, labels, value, timestamp, kind) for name, labels, value, timestamp in samples]
    except _Unsupported:
        return None
    return out


Labels = tuple[tuple[str, str], ...]
Shaped = tuple[str, Labels, float, float | None, str]  # name, sorted labels, value, timestamp (s), family type
# A value and an optional timestamp, each as _number accepts it (one match instead of three per line).
_VALUES = re.compile(rf"({_NUMBER.pattern})(?:[ \t]+({_NUMBER.pattern}))?")
# Larger bodies are parsed in full each time: a shape costs about 70 bytes a line (most lines' text is
# shared between agents), so an agent's shape stays under a tenth of what its windows may hold.
MAX_SHAPED_BYTES = 64 * 1024
MAX_SHAPED_LINES = 1_000


@dataclass(slots=True)
class BodyShape:
    """A parsed body's lines: other lines verbatim, sample lines as (text before the value, name, labels, type)."""

    lines: list[str | tuple[str, str, Labels, str]]


def shape_of(text: str, samples: list[Shaped]) -> BodyShape | None:
    """The shape of a body parse_plain parsed into `samples` (its lines' samples in order), or None if too big."""
    if len(text) > MAX_SHAPED_BYTES or text.count("\n") > MAX_SHAPED_LINES:
        return None
    lines: list[str | tuple[str, str, Labels, str]] = []
    pending = iter(samples)
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or line[0] == "#":
            lines.append(sys.intern(raw))  # agents share their HELP and TYPE lines
            continue
        match = _SAMPLE.fullmatch(line)
        sample = next(pending, None)
        if match is None or sample is None:
            return None  # not what parse_plain parsed: no shape rather than a wrong one
        name, labels, _, _, kind = sample
        prefix = raw[:len(raw) - len(raw.lstrip()) + match.start(3)]
        lines.append((sys.intern(prefix), name, labels, kind))
    return BodyShape(lines) if next(pending, None) is None else None


def parse_shaped(shape: BodyShape, text: str) -> list[Shaped] | None:
    """What parse_plain (labels sorted) would give for `text`, if it has `shape` but for its values; else None.

    Every line but the values must be the same as the shape's, so the full parse would group, type and name
    each sample as before; the values are read as parse_plain reads them."""
    raws = text.split("\n")
    if len(raws) != len(shape.lines):
        return None
    out: list[Shaped] = []
    for raw, expected in zip(raws, shape.lines):
        if expected.__class__ is str:
            if raw != expected:
                return None
            continue
        prefix, name, labels, kind = expected  # type: ignore[misc]
        if not raw.startswith(prefix):
            return None
        match = _VALUES.match(raw, len(prefix))
        if match is None or (match.end() < len(raw) and not raw[match.end():].isspace()):
            return None
        value_token, time_token = match.groups()
        if len(value_token) > MAX_NUMBER_LENGTH:
            return None
        if time_token is None:
            out.append((name, labels, float(value_token), None, kind))
        elif len(time_token) > MAX_NUMBER_LENGTH:
            return None
        else:
            seconds = float(time_token) / 1000
            if not math.isfinite(seconds):
                raise BadTimestamp
            out.append((name, labels, float(value_token), seconds, kind))
    return out
