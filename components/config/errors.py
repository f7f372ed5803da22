"""Config problems as users read them: one line per problem, naming the field path and the fix.

Pydantic reports locations as tuples (`('agents', 1, 'scaling', 'max_replicas')`) and
messages written for programmers; this module turns them into
`agents[1].scaling.max_replicas: must be >= min_replicas (2)` and, for misspelt field
names, suggests the field the user probably meant.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from pydantic import BaseModel, ValidationError


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with the config: where (a field path) and what to do about it."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    """The config is invalid; `problems` lists every problem found, one message each."""

    def __init__(self, problems: Sequence[ConfigProblem], source: str = "config") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(self.report())

    def report(self) -> str:
        """A human-readable report: a heading and one indented line per problem."""
        count = len(self.problems)
        heading = f"{self.source} is invalid ({count} problem{'s' if count != 1 else ''}):"
        return "\n".join([heading, *(f"  - {problem}" for problem in self.problems)])


def closest_match(name: str, known: Iterable[str]) -> str | None:
    """The known name the user most likely meant by a misspelt `name`, if any is close."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return close[0] if close else None


def format_path(loc: Iterable[str | int]) -> str:
    """('agents', 1, 'scaling') -> 'agents[1].scaling'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def problems_from_validation_error(error: ValidationError, root: type[BaseModel],
                                   prefix: Sequence[str | int] = ()) -> list[ConfigProblem]:
    """Translate a pydantic ValidationError into ConfigProblems with friendly messages.

    A field typed as a union (`8080` or `'http'`) fails once per branch, at locations tagged
    with the branch's type; those collapse into one problem at the field itself.
    """
    grouped: dict[tuple[str | int, ...], list[dict[str, Any]]] = {}
    for detail in error.errors(include_url=False):
        grouped.setdefault(_field_loc(root, tuple(detail["loc"])), []).append(detail)
    problems = []
    for loc, details in grouped.items():
        ours = [detail for detail in details if detail["type"] == "value_error"]
        if len(details) == 1 or ours:
            message = _message((ours or details)[0], root, loc)
        else:
            branches = [_message(detail, root, loc).split(" (got ")[0].removeprefix("must be ")
                        for detail in details]
            message = "must be " + " or ".join(dict.fromkeys(branches))
            message += f" (got {details[0].get('input')!r})"
        problems.append(ConfigProblem(format_path((*prefix, *loc)), message))
    return problems


def _message(detail: dict[str, Any], root: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    """The user-facing text of one pydantic error at field location `loc`."""
    kind = detail["type"]
    given = detail.get("input")
    if kind == "extra_forbidden":
        allowed = _field_names_at(root, loc[:-1])
        hint = ""
        close = closest_match(str(loc[-1]), allowed)
        if close:
            hint = f"; did you mean '{close}'?"
        listing = f" Allowed fields: {', '.join(allowed)}." if allowed else ""
        return f"unknown field{hint}{listing}"
    if kind in ("enum", "literal_error"):
        expected = detail.get("ctx", {}).get("expected", "")
        close = closest_match(str(given), re.findall(r"'([^']*)'", expected)) if isinstance(given, str) else None
        return f"must be one of {expected} (got {given!r}" + (f"; did you mean '{close}'?)" if close else ")")
    if kind == "too_short":
        minimum = detail.get("ctx", {}).get("min_length", 1)
        return f"needs at least {minimum} item{'s' if minimum != 1 else ''}; add one"
    if kind == "missing":
        return "is required; add it"
    message = detail["msg"]
    if kind == "value_error":
        # Our own validators' messages already say what is wrong and how to fix it.
        return message.removeprefix("Value error, ")
    # Pydantic's "Input should be ..." becomes "must be ... (got X)".
    return f"{message.replace('Input should be', 'must be')} (got {given!r})"


def _field_loc(root: type[BaseModel], loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """`loc` without pydantic's union-branch tags, i.e. the path as the user wrote it."""
    annotation: Any = root
    kept: list[str | int] = []
    for part in loc:
        annotation, real = _step(annotation, part)
        if real:
            kept.append(part)
    return tuple(kept)


def _field_names_at(root: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """Field names of the model found by walking `loc` down from `root` (empty if none)."""
    annotation: Any = root
    for part in loc:
        annotation, _ = _step(annotation, part)
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _step(annotation: Any, part: str | int) -> tuple[Any, bool]:
    """Follow one location part; return (the annotation below it, whether it is a real path part)."""
    annotation = _unwrap(annotation)
    if annotation is None:
        return None, True
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(part, str):
        field = annotation.model_fields.get(part)
        return (field.annotation if field else None), True
    if origin is list and isinstance(part, int):
        return typing.get_args(annotation)[0], True
    if origin is dict and isinstance(part, str):
        return typing.get_args(annotation)[1], True
    if origin in (typing.Union, types.UnionType):
        return None, False  # a branch tag such as 'int' or 'function-after[...]'
    return None, True


def _unwrap(annotation: Any) -> Any:
    """Strip `Annotated[X, ...]` and `X | None` down to X so the walk can continue into X."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        real = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return real[0] if len(real) == 1 else annotation
    return annotation
