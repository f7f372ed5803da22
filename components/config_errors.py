"""Config problems as users read them: one line per problem, naming the field path and the fix.

Pydantic reports locations as tuples (`('agents', 1, 'scaling', 'max_replicas')`) and
messages written for programmers; this module turns them into
`agents[1].scaling.max_replicas: must be >= min_replicas (2)` and, for misspelt field
names, suggests the field the user probably meant.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from enum import Enum
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
    """Translate a pydantic ValidationError into ConfigProblems with friendly messages."""
    problems = []
    for detail in error.errors(include_url=False):
        loc = tuple(detail["loc"])
        problems.append(ConfigProblem(format_path((*prefix, *loc)), _message(detail, root, loc)))
    return problems


def _message(detail: dict[str, Any], root: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    kind = detail["type"]
    given = detail.get("input")
    if kind == "extra_forbidden":
        allowed = _field_names_at(root, loc[:-1])
        hint = ""
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        if close:
            hint = f"; did you mean '{close[0]}'?"
        listing = f" Allowed fields: {', '.join(allowed)}." if allowed else ""
        return f"unknown field{hint}{listing}"
    if kind in ("enum", "literal_error"):
        expected = detail.get("ctx", {}).get("expected", "")
        return f"must be one of {expected} (got {given!r})"
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


def _field_names_at(root: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """Field names of the model found by walking `loc` down from `root` (empty if none)."""
    annotation: Any = root
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(part, int):
            args = typing.get_args(annotation)
            annotation = args[0] if args else None
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            annotation = field.annotation if field else None
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip `X | None` down to X so the walk can continue into X."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        real = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return real[0] if len(real) == 1 else annotation
    return annotation


def enum_values(enum: type[Enum]) -> str:
    """'A', 'B' or 'C' — used in messages that list allowed values."""
    return ", ".join(repr(member.value) for member in enum)
