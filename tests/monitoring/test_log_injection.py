"""Values from the network can't forge log lines: every record's message and arguments are escaped, and the
formatter `python -m monitoring` installs escapes exception texts too (issue 23 item 8)."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from monitoring import __main__ as service_main
from monitoring.app import init_app
from monitoring.log_escaping import EscapingFormatter, escape

from .conftest import make_settings

Client = Callable[..., Any]
FORGED = "2026-01-01 00:00:00,000 CRITICAL monitoring.api: admin token rotated"


@pytest.fixture(autouse=True)
def plain_records() -> Iterator[None]:
    """Each test starts with logging's own record factory (the service installs its escaping itself)."""
    before = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)
    try:
        yield
    finally:
        logging.setLogRecordFactory(before)


@pytest.fixture
def service_log() -> Iterator[io.StringIO]:
    """The root handler `python -m monitoring` configures, writing into a buffer."""
    root = logging.getLogger()
    before = root.handlers[:], root.level
    root.handlers = []
    service_main.configure_logging("INFO")
    buffer = io.StringIO()
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler) and isinstance(handler.formatter, EscapingFormatter)
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers, root.level = before


async def test_a_forged_line_in_a_span_id_stays_on_its_own_line(
        aiohttp_client: Client, caplog: pytest.LogCaptureFixture, service_log: io.StringIO) -> None:
    client = await aiohttp_client(init_app(make_settings()))
    for separator in ("%0a", "%0d%0a", "%0d", "%c2%85", "%e2%80%a8"):  # LF, CRLF, CR, NEL, LINE SEPARATOR
        response = await client.post(f"/api/v1/spans/abc{separator}{FORGED}/finish", json={"status": "ok"})
        assert response.status == 409
    records = [record for record in caplog.records if "unknown span" in record.getMessage()]
    assert len(records) == 5
    for record in records:
        assert "\n" not in record.getMessage() and "\r" not in record.getMessage()
        assert FORGED in record.getMessage()  # kept, readable, on the record's own line
    every_line = service_log.getvalue().splitlines()
    assert not any(line.startswith(FORGED[:10]) for line in every_line)
    lines = [line for line in every_line if "aiohttp.access" not in line]  # the test server's (URL-encoded)
    assert len(lines) == 5 and all("finish_span: unknown span abc" in line for line in lines)
    assert "abc\\n2026" in lines[0] and "abc\\r\\n2026" in lines[1]


async def test_a_header_in_an_unexpected_error_is_escaped(aiohttp_client: Client, service_log: io.StringIO) -> None:
    """An exception whose message carries request data: its traceback can't start a line of its own."""
    log = logging.getLogger("monitoring.test")
    try:
        raise ValueError(f"bad header\n{FORGED}\x1b[2J")
    except ValueError:
        log.exception("failed on %s", "/api/v1/x\r\nforged")
    text = service_log.getvalue()
    assert "failed on /api/v1/x\\r\\nforged" in text
    assert f"ValueError: bad header\\n{FORGED}\\x1b[2J" in text
    assert not any(line.startswith(FORGED[:10]) for line in text.splitlines())
    assert "\x1b" not in text


async def test_a_literal_backslash_n_reads_apart_from_an_escaped_line_break(
        aiohttp_client: Client, service_log: io.StringIO) -> None:
    """A client's two characters `\\` `n` must not log as the escape of a line break (issue 23 follow-up)."""
    client = await aiohttp_client(init_app(make_settings()))
    for sent in ("%0a", "%5cn"):  # a line break; a backslash and an n
        assert (await client.post(f"/api/v1/spans/abc{sent}def/finish", json={"status": "ok"})).status == 409
    lines = [line for line in service_log.getvalue().splitlines() if "unknown span" in line]
    assert len(lines) == 2
    assert lines[0].endswith("unknown span abc\\ndef") and lines[1].endswith("unknown span abc\\\\ndef")


@pytest.mark.parametrize("raw, escaped", [
    ("plain", "plain"), ("a\nb", "a\\nb"), ("a\r\nb", "a\\r\\nb"), ("tab\there", "tab\\there"),
    ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"), ("nul\x00", "nul\\x00"), ("del\x7f", "del\\x7f"),
    ("nel\x85", "nel\\x85"), ("csi\x9b", "csi\\x9b"), ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
    ("bidi\u202e", "bidi\\u202e"), ("ünïcödé ✓", "ünïcödé ✓"),
    ("back\\slash", "back\\\\slash"), ("\\n", "\\\\n")])
def test_escape(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped


def test_every_kind_of_argument_is_escaped(caplog: pytest.LogCaptureFixture) -> None:
    init_app(make_settings())  # the service installs the escaping
    log = logging.getLogger("monitoring.test")
    with caplog.at_level(logging.INFO, "monitoring.test"):
        log.info("%s %r %d %.2f %5s", "a\nb", "c\nd", 7, 1.5, ValueError("e\nf"))
        log.info("%(path)s", {"path": "g\nh"})
        log.info(f"i\nj {'k'}")
        log.info(ValueError("l\nm"))
        log.info("%s", b"n\no")
    messages = [record.getMessage() for record in caplog.records]
    # (a repr's own backslashes are doubled as every other backslash is)
    assert messages == ["a\\nb 'c\\\\nd' 7 1.50  e\\nf", "g\\nh", "i\\nj k", "l\\nm", "b'n\\\\no'"]
