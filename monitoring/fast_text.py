"""A fast path through the Prometheus text format for the bodies agents usually send, giving exactly what
prometheus_client's parser gives (families, their types, its renaming of counter samples to `_total`,
values and timestamps). Anything outside that plain subset (escaped or quoted label values with braces,
quoted metric names, exemplars, odd numbers) returns None and the caller uses prometheus_client's parser,
so its semantics stay the reference. tests/monitoring/test_fast_text.py compares the two on generated bodies.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

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


def _families(text: str) -> Iterator[tuple[str, str, list[tuple[str, dict[str, str], float, float | None]]]]:
    """(family name, type, samples) in prometheus_client's grouping."""
    name, typ, samples, allowed = "", "untyped", [], []  # type: ignore[var-annotated]
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
        match = _SAMPLE.fullmatch(line)
        if match is None:
            raise _Unsupported
        sample_name, label_text, value_token, time_token = match.groups()
        sample = (sample_name, _labels(label_text), _number(value_token),
                  _number(time_token) / 1000 if time_token is not None else None)
        if sample_name not in allowed:
            if name:
                yield name, typ, samples
            name, typ, samples, allowed = "", "untyped", [], []
            yield sample_name, "untyped", [sample]
        else:
            samples.append(sample)
    if name:
        yield name, typ, samples


def parse_plain(text: str) -> list[Parsed] | None:
    """The body's samples as prometheus_client would give them, or None when it is outside the plain subset."""
    out: list[Parsed] = []
    try:
        for family, typ, samples in _families(text):
            if typ == "counter" and not family.endswith("_total"):
                samples = [(name + "_total", labels, value, timestamp) for name, labels, value, timestamp in samples]
            kind = "unknown" if typ == "untyped" else typ
            out += [(name, labels, value, timestamp, kind) for name, labels, value, timestamp in samples]
    except _Unsupported:
        return None
    return out
