"""The fast text path gives exactly what prometheus_client's parser gives, on generated bodies: families,
types, counter renaming, values, timestamps; and falls back (None) on what it does not cover."""

from __future__ import annotations

import math
import random

import pytest

from monitoring.fast_text import MAX_SHAPED_LINES, parse_plain, parse_shaped
from monitoring.parsing import ParseError, ShapeCache, parse_prometheus_text
from monitoring.simulate import SimulatedAgent

NAMES = ["a", "b_total", "c", "d_bucket", "d_sum", "d_count", "e_sum", "e_count", "e", "agent_tasks_total", "f:g"]
TYPES = ["counter", "gauge", "summary", "histogram", "untyped"]
VALUES = ["1", "0", "-2.5", "3e2", "+Inf", "-Inf", "NaN", "1.0", ".5", "7", "1e-3"]
LABELS = ["", "{}", '{x="1"}', '{x="1",y="two words"}', '{ x = "1" , }', '{le="0.5"}', '{quantile="0.9",z=""}']


def generated_body(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(0, 25)):
        kind = rng.random()
        name = rng.choice(NAMES)
        if kind < 0.15:
            lines.append(f"# TYPE {name} {rng.choice(TYPES)}")
        elif kind < 0.25:
            lines.append(f"# HELP {name} some help text")
        elif kind < 0.3:
            lines.append(rng.choice(["", "# a comment", "#", "   "]))
        else:
            timestamp = f" {rng.randint(0, 2**40)}" if rng.random() < 0.2 else ""
            lines.append(f"{name}{rng.choice(LABELS)} {rng.choice(VALUES)}{timestamp}")
    return "\n".join(lines) + "\n"


def reference(text: str) -> list[tuple[object, ...]] | str:
    try:
        return [(s.name, dict(s.labels), s.value, s.timestamp, s.type)
                for s in parse_prometheus_text(text, "a", 0.0, 10_000, fast=False)]
    except ParseError:
        return "error"


def normalised(rows: list[tuple[object, ...]] | str) -> list[tuple[object, ...]] | str:
    if isinstance(rows, str):
        return rows
    return [tuple("nan" if isinstance(value, float) and math.isnan(value) else value for value in row)
            for row in rows]


@pytest.mark.parametrize("seed", range(400))
def test_the_fast_path_agrees_with_prometheus_client(seed: int) -> None:
    text = generated_body(random.Random(seed))
    fast = parse_plain(text)
    if fast is None:
        return  # outside the plain subset: the reference parser is used
    expected = reference(text)
    got = [(name, labels, value, 0.0 if timestamp is None else timestamp, kind)
           for name, labels, value, timestamp, kind in fast]
    assert normalised(got) == normalised(expected), text


def test_the_simulators_bodies_take_the_fast_path() -> None:
    text = SimulatedAgent("a").prometheus_text()
    assert parse_plain(text) is not None
    assert normalised([(n, l, v, 0.0 if t is None else t, k) for n, l, v, t, k in parse_plain(text) or []]) == \
        normalised(reference(text))


@pytest.mark.parametrize("text", ['a{x="a\\"b"} 1\n', 'a{x="}"} 1\n', "a 1 # {trace_id=\"x\"} 1\n", "a 1_000\n",
                                  '{__name__="a"} 1\n', "#TYPE a gauge\na 1\n", "a " + "9" * 50 + "\n"])
def test_what_the_fast_path_does_not_cover_goes_to_the_reference(text: str) -> None:
    assert parse_plain(text) is None


def revalued(text: str, rng: random.Random) -> str:
    """The same body with other values (and timestamps) on its sample lines, white space kept."""
    lines = []
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and " " in stripped:
            head, _, last = line.rpartition(" ")
            if last.isdigit() and len(last) > 3:  # a timestamp: change it and the value before it
                head = head.rpartition(" ")[0] + " " + rng.choice(VALUES)
                last = str(rng.randint(0, 2**40))
            else:
                last = rng.choice(VALUES)
            line = f"{head} {last}"
        lines.append(line)
    return "\n".join(lines)


def mutated(text: str, rng: random.Random) -> str:
    """The body with one random edit: a character changed, inserted or dropped, or a line dropped or doubled."""
    if not text:
        return "x 1\n"
    position = rng.randrange(len(text))
    edit = rng.randrange(5)
    if edit == 0:
        return text[:position] + rng.choice('a_{}"= \t\r,.1e#\n') + text[position + 1:]
    if edit == 1:
        return text[:position] + rng.choice('a_{}"= \t\r,.1e#\n') + text[position:]
    if edit == 2:
        return text[:position] + text[position + 1:]
    lines = text.split("\n")
    index = rng.randrange(len(lines))
    return "\n".join(lines[:index] + lines[index + 1:] if edit == 3 else lines[:index + 1] + lines[index:])


def cached(first: str, second: str) -> tuple[list[tuple[object, ...]] | str, bool]:
    """The second body parsed after the first with one ShapeCache, and whether its shape was used."""
    cache = ShapeCache()
    try:
        parse_prometheus_text(first, "a", 0.0, 10_000, cache=cache)
    except ParseError:
        pass
    used = cache.shape is not None and parse_shaped(cache.shape, second) is not None
    try:
        rows = [(s.name, dict(s.labels), s.value, s.timestamp, s.type)
                for s in parse_prometheus_text(second, "a", 0.0, 10_000, cache=cache)]
    except ParseError:
        return "error", used
    return rows, used


@pytest.mark.parametrize("seed", range(200))
def test_a_body_shaped_like_the_last_one_parses_as_the_reference_does(seed: int) -> None:
    rng = random.Random(seed)
    first = generated_body(rng)
    for second in (revalued(first, rng), mutated(first, rng), mutated(revalued(first, rng), rng)):
        got, _ = cached(first, second)
        assert normalised(got) == normalised(reference(second)), (first, second)


def test_the_shape_is_used_for_new_values_and_not_for_anything_else() -> None:
    rng = random.Random(7)
    uses = [cached(body, revalued(body, rng))[1] for body in (generated_body(rng) for _ in range(300))
            if parse_plain(body) is not None]
    assert sum(uses) == len(uses) > 100  # every plain body's revalued twin takes the shaped path
    agent = SimulatedAgent("a", extra_series=5)
    first, second = agent.prometheus_text(), agent.prometheus_text()
    assert cached(first, second)[1]
    assert not cached(first, second.replace('status="error"', 'status="failed"'))[1]
    assert not cached(first, second.replace("# TYPE agent_active_tasks gauge", "# TYPE agent_active_tasks counter"))[1]
    assert not cached(first, second + "extra 1\n")[1]


def test_no_shape_is_kept_for_a_body_over_the_sample_limit_or_too_many_lines() -> None:
    cache = ShapeCache()
    with pytest.raises(ParseError):
        parse_prometheus_text("a 1\nb 2\nc 3\n", "a", 0.0, 2, cache=cache)
    assert cache.shape is None
    parse_prometheus_text("a 1\n" * (MAX_SHAPED_LINES + 1), "a", 0.0, 10_000, cache=cache)
    assert cache.shape is None
    parse_prometheus_text("a 1\n" * MAX_SHAPED_LINES, "a", 0.0, 10_000, cache=cache)
    assert cache.shape is not None
