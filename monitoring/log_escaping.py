"""Log records that can't forge log lines: control characters in what a record says are escaped.

Paths, headers, ids, names and error texts come from the network; a line break in one of them
(`POST /api/v1/spans/abc%0a<forged line>/finish`) would start a line that looks like the service's
own, and an ANSI escape would rewrite the operator's terminal. Rather than trusting every log call
to remember, the service installs a record factory (`install`) that escapes every record's message
and arguments when it is created, whoever logs it, and `python -m monitoring` logs through
`EscapingFormatter`, which also escapes the exception texts in tracebacks.

Escaped: C0 and C1 controls (CR, LF, tab, ESC and so ANSI sequences, NEL), DEL, the Unicode line and
paragraph separators and the bidirectional overrides, as `\\n`, `\\r`, `\\t`, `\\x1b`, `\\u2028`; and the
backslash itself, as `\\\\`, so that a client's own two characters `\\n` never read as an escaped line break.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Mapping
from types import TracebackType
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_UNSAFE = re.compile("[\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
_SAFE_TYPES = (int, float, type(None))  # their text is digits; %d and %f need them as they are


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def escape(text: str) -> str:
    """`text` with every control character written as an escape sequence (one line, no terminal codes)."""
    return _UNSAFE.sub(_escaped, text)


class Escaped:
    """A log argument that prints escaped, as %s, %r or %a."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __str__(self) -> str:
        return escape(str(self.value))

    def __repr__(self) -> str:
        return escape(repr(self.value))

    # %d, %x and %f of number types that aren't int or float (numpy's, Decimal) still work.
    def __int__(self) -> int:
        return int(self.value)  # type: ignore[call-overload]

    def __float__(self) -> float:
        return float(self.value)  # type: ignore[arg-type]

    def __index__(self) -> int:
        return self.value.__index__()  # type: ignore[attr-defined, no-any-return]


def _argument(value: Any) -> Any:
    return value if isinstance(value, _SAFE_TYPES) or isinstance(value, Escaped) else Escaped(value)


def escape_record(record: logging.LogRecord) -> logging.LogRecord:
    """Escape a record's message and arguments in place (what a handler prints of them is then one line)."""
    record.msg = escape(record.msg) if isinstance(record.msg, str) else _argument(record.msg)
    if isinstance(record.args, Mapping):
        record.args = {key: _argument(value) for key, value in record.args.items()}
    elif record.args:
        record.args = tuple(_argument(value) for value in record.args)
    return record


def install() -> None:
    """Escape every log record from now on, whoever creates it (idempotent)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "escapes", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return escape_record(previous(*args, **kwargs))

    factory.escapes = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class EscapingFormatter(logging.Formatter):
    """A formatter that escapes records (also ones made before `install`) and the exception texts of
    tracebacks, which often quote what a request sent: the traceback's own lines stay lines."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(escape_record(record))

    def formatException(self, ei: tuple[type[BaseException], BaseException, TracebackType | None] |
                        tuple[None, None, None]) -> str:
        if ei[1] is None:
            return super().formatException(ei)
        described = traceback.TracebackException(type(ei[1]), ei[1], ei[2], compact=True)
        _escape_texts(described, set())
        return "".join(described.format()).rstrip("\n")


def _escape_texts(described: traceback.TracebackException, seen: set[int]) -> None:
    """Escape the message (and notes) of an exception, its causes, contexts and group members."""
    if id(described) in seen:
        return
    seen.add(id(described))
    # `_str` is the exception's text as TracebackException formats it (CPython 3.11-3.13; tested).
    described._str = escape(described._str)  # type: ignore[attr-defined]  # noqa: SLF001
    notes = getattr(described, "__notes__", None)
    if notes:
        described.__notes__ = [escape(str(note)) for note in notes]  # type: ignore[attr-defined]
    for linked in (described.__cause__, described.__context__, *(getattr(described, "exceptions", None) or ())):
        if linked is not None:
            _escape_texts(linked, seen)


def configure(level: str) -> None:
    """Log to stderr as `python -m monitoring` does: escaped records through EscapingFormatter."""
    install()
    handler = logging.StreamHandler()
    handler.setFormatter(EscapingFormatter(FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
