"""The CEL rules of a CRD schema (`x-kubernetes-validations`), evaluated on an object as the API server does
on create: each rule at every schema node the object has a value for, with `self` bound to that value.

Evaluated with cel-python. Kubernetes adds CEL libraries beyond the standard; the string functions the
CRDs here use are supplied below, and a rule calling anything else fails loudly rather than passing.
Transition rules (those reading `oldSelf`) only run on update and are skipped. Schema defaults are not
applied first (the API server applies them before the rules run): objects here set what the rules read.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import celpy
from celpy import celtypes

CelValue = Any


def _substring(text: celtypes.StringType, start: celtypes.IntType,
               end: celtypes.IntType | None = None) -> celtypes.StringType:
    if not 0 <= start <= len(text) or (end is not None and not start <= end <= len(text)):
        raise ValueError(f"substring({start}, {end}) out of range for a string of {len(text)} characters")
    return celtypes.StringType(text[start:end])


_TO_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_TO_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)
# Kubernetes' CEL string library (k8s.io/apiserver/pkg/cel/library), as far as the CRDs here use it.
KUBERNETES_STRINGS = {
    "substring": _substring,
    # ASCII letters only, as Kubernetes' (str.lower() would also fold "É").
    "lowerAscii": lambda text: celtypes.StringType(text.translate(_TO_LOWER)),
    "upperAscii": lambda text: celtypes.StringType(text.translate(_TO_UPPER)),
    "trim": lambda text: celtypes.StringType(text.strip()),
    "indexOf": lambda text, part: celtypes.IntType(text.find(part)),
    "lastIndexOf": lambda text, part: celtypes.IntType(text.rfind(part)),
    "replace": lambda text, old, new: celtypes.StringType(text.replace(old, new)),
    "split": lambda text, separator: celtypes.ListType([celtypes.StringType(part) for part in text.split(separator)]),
    "join": lambda parts, separator="": celtypes.StringType(separator.join(parts)),
}
_ENVIRONMENT = celpy.Environment()


@lru_cache(maxsize=None)
def _program(rule: str) -> celpy.Runner:
    return _ENVIRONMENT.program(_ENVIRONMENT.compile(rule), functions=KUBERNETES_STRINGS)


def _rules_with_values(schema: dict[str, Any], value: Any, path: str) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(path, rule, value) for every rule of `schema` and of its sub-schemas the value reaches."""
    for rule in schema.get("x-kubernetes-validations", ()):
        yield path, rule, value
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                yield from _rules_with_values(sub, item, f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from _rules_with_values(schema["items"], item, f"{path}[{index}]")


def cel_violations(schema: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    """'<path>: <message> (<rule>)' for every CEL rule of `schema` that `obj` breaks."""
    violations = []
    for path, rule, value in _rules_with_values(schema, obj, "<object>"):
        expression = rule["rule"]
        if "oldSelf" in expression:
            continue
        try:
            result = _program(expression).evaluate({"self": celpy.json_to_cel(value)})
        except celpy.CELEvalError as error:  # (its args hold the whole activation: the first line says enough)
            reason = str(error.args[0]).splitlines()[0][:200]
            violations.append(f"{path}: the rule did not evaluate ({reason}): {expression}")
            continue
        if result is not True and result != celtypes.BoolType(True):
            message = rule.get("message") or rule.get("messageExpression") or "failed"
            violations.append(f"{path}: {message} ({expression})")
    return violations
