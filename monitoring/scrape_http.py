"""A lean HTTP/1.1 GET client for scrapes of trusted plain-HTTP targets (static and discovered agents).

Why not aiohttp's client here: a scrape is one small GET to a known target, thousands of times a
minute, and aiohttp's general request path costs about as much CPU as everything else in a scrape
together. This client does only what a scrape needs: keep-alive connections per target, llhttp (through
httptools) to parse the response, and the same bounds as before — a total timeout, a body-size limit
checked against Content-Length, while reading and after decompression, a limit on all that is not body
(headers, chunk framing, trailers), no redirects, no credentials from the URL. Agents registered through the API still go through aiohttp's guarded session, whose resolver
applies the scrape-target policy; so does anything but `http://`.

Errors are ScrapeHTTPError with a fixed text: nothing the target sent is ever echoed.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable

import httptools
from yarl import URL

MAX_HEADER_BYTES = 64 * 1024   # status line and headers together (Go's client allows 1 MiB, aiohttp 8 KiB a line)
IDLE_TIMEOUT = 60.0            # an idle connection is closed after this; a 15 s interval reuses its connection
_USER_AGENT = b"agent-monitoring-collector"


class ScrapeHTTPError(Exception):
    """A scrape's HTTP exchange failed; the message is a fixed text, safe to show."""


class BodyTooLargeError(ScrapeHTTPError):
    """The body (as sent or decompressed) is over the byte limit."""


class _Retry(Exception):
    """A kept-alive connection was closed by the target before answering: try once more on a new one."""


class _Exchange(asyncio.Protocol):
    """One connection: sends GETs one at a time and parses the responses with llhttp."""

    def __init__(self, key: tuple[str, int], on_idle_lost: Callable[[_Exchange], None]) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_handle: asyncio.TimerHandle | None = None  # set while it waits in the pool
        self._on_idle_lost = on_idle_lost
        self._parser = httptools.HttpResponseParser(self)
        # Bare LF line ends, as Go's and aiohttp's clients accept them (and Prometheus scrapes them).
        self._parser.set_dangerous_leniencies(lenient_optional_cr_before_lf=True)
        self._reset(None, 0)

    def _reset(self, waiter: asyncio.Future[tuple[bytes, str, str]] | None, limit: int) -> None:
        self._waiter = waiter
        self._limit = limit
        self._received = 0
        self._header_bytes = 0
        self._headers_done = False
        self._interim = False  # a 1xx answer, skipped as aiohttp and Go skip them
        self._body = bytearray()
        self._content_type = ""
        self._encoding = ""
        self._framed = False  # Content-Length or chunked: the body ends without the connection closing

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self._close()  # bytes nobody asked for: the connection is out of step
            return
        self._received += len(data)
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self._fail("not an HTTP response")
            return
        # All that is not body (headers, chunk framing, trailers) is bounded too: llhttp gathers a header
        # or trailer value whole, however long.
        if self._received - len(self._body) > MAX_HEADER_BYTES + len(self._body) // 2:
            self._fail("response headers over the limit")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.idle_handle is not None:
            self._on_idle_lost(self)  # the target hung up on an idle connection: free its place in the pool
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_done and not self._framed:
            self._complete()  # a body delimited by the end of the connection (HTTP/1.0 style)
        elif self._received == 0:
            waiter.set_exception(_Retry())
        else:
            waiter.set_exception(ScrapeHTTPError("connection closed mid-response"))

    # --- llhttp callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._waiter is None or self._waiter.done():
            self._close()  # a second answer to one request: the connection is out of step

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > MAX_HEADER_BYTES:
            self._fail("response headers over the limit")
            return
        name = name.lower()
        if name == b"content-type":
            self._content_type = value.decode("latin-1").split(";", 1)[0].strip().lower()
        elif name == b"content-encoding":
            self._encoding = value.decode("latin-1").strip().lower()
        elif name == b"content-length":
            self._framed = True
            if value.strip().isdigit() and int(value) > self._limit:
                self._fail(f"body over the {self._limit}-byte limit", BodyTooLargeError)
        elif name == b"transfer-encoding":
            self._framed = True

    def on_headers_complete(self) -> None:
        self._headers_done = True
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._interim = True
        elif 300 <= status < 400:
            self._fail("redirect refused")
        elif status != 200:
            self._fail(f"HTTP {int(status)}")

    def on_body(self, chunk: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            return
        self._body += chunk
        if len(self._body) > self._limit:
            self._fail(f"body over the {self._limit}-byte limit", BodyTooLargeError)

    def on_message_complete(self) -> None:
        if self._interim:  # 100 Continue, 103 Early Hints: the answer follows
            self._reset(self._waiter, self._limit)
            return
        self._complete()

    # --- outcomes ------------------------------------------------------------------------------

    def _complete(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result((bytes(self._body), self._content_type, self._encoding))
            if not self._parser.should_keep_alive():
                self._close()

    def _fail(self, reason: str, kind: type[ScrapeHTTPError] = ScrapeHTTPError) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(kind(reason))
        self._close()  # what is left of that response would poison the next one

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            try:
                self.transport.close()
            except RuntimeError:  # its event loop is closed: the socket closes when collected
                pass

    async def get(self, request: bytes, limit: int) -> tuple[bytes, str, str]:
        assert self.transport is not None
        waiter: asyncio.Future[tuple[bytes, str, str]] = asyncio.get_running_loop().create_future()
        self._reset(waiter, limit)
        self.transport.write(request)
        try:
            return await waiter
        except BaseException:
            self._close()  # failed or cancelled (timeout) mid-exchange: the connection cannot be reused
            raise
        finally:
            self._waiter = None
            self._body = bytearray()  # an idle connection holds no body


class ScrapeClient:
    """Keep-alive GETs for scrapes; at most `idle_limit` idle connections are kept, each for `idle_timeout`."""

    def __init__(self, idle_limit: int, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self._idle_limit = idle_limit
        self._idle_timeout = idle_timeout
        self._idle: dict[tuple[str, int], list[_Exchange]] = {}  # per target, most recently used last
        self._idle_order: dict[_Exchange, None] = {}              # all idle ones, oldest first (eviction)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def get(self, url: URL, accept: str, limit: int, timeout: float) -> tuple[bytes, str]:
        """The body and media type of a 200 answer to GET `url`; ScrapeHTTPError or TimeoutError otherwise."""
        if url.scheme != "http" or not url.host:
            raise ScrapeHTTPError("invalid URL")
        key = (url.host, url.port or 80)
        # identity: compressing a small body on loopback or in-cluster costs both ends more CPU than it saves
        request = (f"GET {url.raw_path_qs} HTTP/1.1\r\nHost: {url.host_port_subcomponent}\r\n"
                   f"Accept: {accept}\r\nAccept-Encoding: identity\r\n").encode("ascii") \
            + b"User-Agent: " + _USER_AGENT + b"\r\n\r\n"
        async with asyncio.timeout(timeout):
            exchange = self._take(key)
            try:
                if exchange is None:
                    exchange = await self._connect(key)
                    body, content_type, encoding = await exchange.get(request, limit)
                else:
                    try:
                        body, content_type, encoding = await exchange.get(request, limit)
                    except _Retry:  # the target closed a kept-alive connection as we sent
                        exchange = await self._connect(key)
                        body, content_type, encoding = await exchange.get(request, limit)
            except _Retry:
                raise ScrapeHTTPError("connection closed before answering") from None
        self._give_back(exchange)
        return _decoded(body, encoding, limit), content_type

    async def _connect(self, key: tuple[str, int]) -> _Exchange:
        loop = asyncio.get_running_loop()
        _, exchange = await loop.create_connection(lambda: _Exchange(key, self._expire), key[0], key[1])
        return exchange

    def _take(self, key: tuple[str, int]) -> _Exchange | None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # connections of an earlier event loop are useless in this one
            self._loop = loop
            self.close()
        idle = self._idle.get(key)
        while idle:
            exchange = idle.pop()
            self._forget(exchange)
            if not exchange.closed:
                return exchange
        return None

    def _give_back(self, exchange: _Exchange) -> None:
        if exchange.closed or self._loop is None:
            return
        if len(self._idle_order) >= self._idle_limit:
            self._expire(next(iter(self._idle_order)))
        self._idle.setdefault(exchange.key, []).append(exchange)
        self._idle_order[exchange] = None
        exchange.idle_handle = self._loop.call_later(self._idle_timeout, self._expire, exchange)

    def _expire(self, exchange: _Exchange) -> None:
        idle = self._idle.get(exchange.key)
        if idle is not None and exchange in idle:
            idle.remove(exchange)
            if not idle:
                del self._idle[exchange.key]
        self._forget(exchange)
        exchange._close()

    def _forget(self, exchange: _Exchange) -> None:
        self._idle_order.pop(exchange, None)
        if exchange.idle_handle is not None:
            try:
                exchange.idle_handle.cancel()
            except RuntimeError:  # a timer of a closed event loop
                pass
            exchange.idle_handle = None

    @property
    def idle_connections(self) -> int:
        return len(self._idle_order)

    def close(self) -> None:
        """Close every idle connection (in-flight ones close when their scrape ends or is cancelled)."""
        for exchange in list(self._idle_order):
            self._expire(exchange)


def _decoded(body: bytes, encoding: str, limit: int) -> bytes:
    """The body without its Content-Encoding (gzip or deflate), never expanded past `limit` bytes."""
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise ScrapeHTTPError("unsupported content encoding")
    try:
        plain = zlib.decompressobj(zlib.MAX_WBITS | 32).decompress(body, limit + 1)  # gzip or zlib, by header
    except zlib.error:
        if encoding != "deflate":
            raise ScrapeHTTPError("invalid compressed body") from None
        try:  # "deflate" sent raw, without zlib's header, as some servers do
            plain = zlib.decompressobj(-zlib.MAX_WBITS).decompress(body, limit + 1)
        except zlib.error:
            raise ScrapeHTTPError("invalid compressed body") from None
    if len(plain) > limit:
        raise BodyTooLargeError(f"body over the {limit}-byte limit")
    return plain
