"""The scrape client (monitoring/scrape_http.py) against raw TCP servers that answer exactly what a test says.

Each server reads one request at a time and sends the next canned answer of its connection; what it
received and how many connections it accepted are recorded, so reuse and retries are observable.
"""

from __future__ import annotations

import asyncio
import gzip
import socketserver
import threading
import warnings
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from yarl import URL

from monitoring.scrape_http import MAX_HEADER_BYTES, ScrapeClient, ScrapeHTTPError

ACCEPT = "text/plain"
LIMIT = 10_000


def ok(body: bytes, *headers: str) -> bytes:
    head = "".join(f"{header}\r\n" for header in headers)
    return f"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {len(body)}\r\n{head}\r\n" \
        .encode() + body


CLOSE = b"<close>"  # close the connection at once; None: read the next request, then close without answering


@dataclass
class RawServer:
    """Answers: per connection, a list of byte strings, each sent after reading one request (or CLOSE, None)."""

    answers: Callable[[int], list[bytes | None]]
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = self.connections
        self.connections += 1
        self.writers.append(writer)
        try:
            for answer in self.answers(number):
                if answer is CLOSE:
                    break
                request = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(request)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
            else:
                await reader.read()  # keep the connection open until the client closes it
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def url(self, path: str = "/metrics") -> URL:
        return URL(f"http://127.0.0.1:{self.port}{path}")


@asynccontextmanager
async def raw_server(answers: Callable[[int], list[bytes | None]]) -> AsyncIterator[RawServer]:
    server = RawServer(answers)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        for writer in server.writers:  # ends the handlers still waiting on their connection
            writer.close()
        await asyncio.sleep(0)


async def test_a_connection_is_kept_alive_and_reused_with_the_request_a_scrape_needs() -> None:
    async with raw_server(lambda _: [ok(b"a 1\n"), ok(b"a 2\n")]) as server:
        client = ScrapeClient(idle_limit=4)
        first = await client.get(server.url("/agents/x/metrics?format=text"), ACCEPT, LIMIT, 2.0)
        second = await client.get(server.url("/agents/x/metrics?format=text"), ACCEPT, LIMIT, 2.0)
        client.close()
    assert (first, second) == ((b"a 1\n", "text/plain"), (b"a 2\n", "text/plain"))
    assert server.connections == 1
    request_line, *headers = server.requests[0].decode().split("\r\n")
    assert request_line == "GET /agents/x/metrics?format=text HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}" in headers and f"Accept: {ACCEPT}" in headers
    assert "Accept-Encoding: identity" in headers
    assert not any(header.lower().startswith("authorization") for header in headers)


async def test_credentials_in_the_url_are_never_sent() -> None:
    async with raw_server(lambda _: [ok(b"a 1\n")]) as server:
        client = ScrapeClient(idle_limit=4)
        await client.get(URL(f"http://user:secret@127.0.0.1:{server.port}/metrics"), ACCEPT, LIMIT, 2.0)
        client.close()
    assert b"secret" not in server.requests[0] and b"user" not in server.requests[0].split(b"\r\n", 1)[1]


@pytest.mark.parametrize("first_connection", [
    [ok(b"a 1\n"), None],               # answers once, then closes as the second request arrives: one retry
    [ok(b"a 1\n") + ok(b"evil 1\n")],   # an unrequested second answer: out of step, never reused
], ids=["closed-when-reused", "unrequested-answer"])
async def test_a_connection_the_target_spoiled_is_replaced_by_a_new_one(first_connection: list[bytes | None]) -> None:
    async with raw_server(lambda number: first_connection if number == 0 else [ok(b"a 2\n")]) as server:
        client = ScrapeClient(idle_limit=4)
        await client.get(server.url(), ACCEPT, LIMIT, 2.0)
        assert await client.get(server.url(), ACCEPT, LIMIT, 2.0) == (b"a 2\n", "text/plain")
        client.close()
    assert server.connections == 2


async def test_a_new_connection_closed_before_answering_is_an_error_not_a_retry_loop() -> None:
    async with raw_server(lambda _: [None]) as server:
        client = ScrapeClient(idle_limit=4)
        with pytest.raises(ScrapeHTTPError, match="^connection closed before answering$"):
            await client.get(server.url(), ACCEPT, LIMIT, 2.0)
    assert server.connections == 1


@pytest.mark.parametrize(("answer", "reason"), [
    (b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\n\r\n", "redirect refused"),
    (b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 6\r\n\r\nsecret", "HTTP 500"),
    (b"SSH-2.0-OpenSSH_9.6 secret\r\n\r\n", "not an HTTP response"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n", f"body over the {LIMIT}-byte limit"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1000\r\n" + b"x" * 4096 + b"\r\n"
     + b"1000\r\n" + b"x" * 4096 + b"\r\n" + b"1000\r\n" + b"x" * 4096 + b"\r\n0\r\n\r\n",
     f"body over the {LIMIT}-byte limit"),
    (b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"y" * MAX_HEADER_BYTES + b"\r\n\r\n", "response headers over the limit"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "connection closed mid-response"),
])
async def test_a_bad_answer_fails_with_a_fixed_reason_and_the_connection_is_not_reused(answer: bytes,
                                                                                        reason: str) -> None:
    # The truncated answer needs its connection closed to be truncated; the others stay open.
    async with raw_server(lambda _: [answer, CLOSE] if b"short" in answer else [answer]) as server:
        client = ScrapeClient(idle_limit=4)
        with pytest.raises(ScrapeHTTPError) as failure:
            await client.get(server.url(), ACCEPT, LIMIT, 2.0)
        assert str(failure.value) == reason
        assert client.idle_connections == 0
        client.close()


async def test_bodies_chunked_or_ended_by_closing_or_gzipped_are_read_whole() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na 1\r\n2\r\n\n\n\r\n0\r\n\r\n"
    unframed = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nb 2\n"
    zipped = gzip.compress(b"c 3\n")
    compressed = ok(zipped, "Content-Encoding: gzip")
    async with raw_server(lambda number: [[chunked], [unframed, CLOSE], [compressed]][number]) as server:
        client = ScrapeClient(idle_limit=4)
        first = await client.get(server.url(), ACCEPT, LIMIT, 2.0)
        client.close()
        second = await client.get(server.url(), ACCEPT, LIMIT, 2.0)
        third = await client.get(server.url(), ACCEPT, LIMIT, 2.0)
        client.close()
    assert [first[0], second[0], third[0]] == [b"a 1\n\n", b"b 2\n", b"c 3\n"]


@pytest.mark.parametrize(("encoding", "reason"), [("br", "unsupported content encoding"),
                                                 ("gzip", "invalid compressed body")])
async def test_a_body_in_an_unknown_or_broken_encoding_fails_with_a_fixed_reason(encoding: str, reason: str) -> None:
    async with raw_server(lambda _: [ok(b"xx", f"Content-Encoding: {encoding}")]) as server:
        client = ScrapeClient(idle_limit=4)
        with pytest.raises(ScrapeHTTPError) as failure:
            await client.get(server.url(), ACCEPT, LIMIT, 2.0)
        assert str(failure.value) == reason
        client.close()


async def test_a_compressed_body_is_never_expanded_past_the_limit() -> None:
    bomb = gzip.compress(b"0" * (LIMIT * 100))
    async with raw_server(lambda _: [ok(bomb, "Content-Encoding: gzip")]) as server:
        client = ScrapeClient(idle_limit=4)
        with pytest.raises(ScrapeHTTPError, match=f"^body over the {LIMIT}-byte limit$"):
            await client.get(server.url(), ACCEPT, LIMIT, 2.0)
        client.close()


async def test_a_target_that_never_answers_times_out_and_its_connection_is_dropped() -> None:
    async with raw_server(lambda _: [b""]) as server:  # reads the request, sends nothing
        client = ScrapeClient(idle_limit=4)
        with pytest.raises(TimeoutError):
            await client.get(server.url(), ACCEPT, LIMIT, 0.2)
        assert client.idle_connections == 0


async def test_idle_connections_are_bounded_in_number_and_time() -> None:
    async with raw_server(lambda _: [ok(b"a 1\n")]) as one, raw_server(lambda _: [ok(b"a 1\n")]) as two, \
            raw_server(lambda _: [ok(b"a 1\n")]) as three:
        client = ScrapeClient(idle_limit=2, idle_timeout=0.2)
        for server in (one, two, three):
            await client.get(server.url(), ACCEPT, LIMIT, 2.0)
        assert client.idle_connections == 2  # the oldest was closed to make room
        deadline = asyncio.get_running_loop().time() + 5.0
        while client.idle_connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        assert client.idle_connections == 0


async def test_only_plain_http_urls_are_fetched() -> None:
    client = ScrapeClient(idle_limit=1)
    for url in ("https://127.0.0.1/metrics", "file:///etc/passwd", "http:///metrics"):
        with pytest.raises(ScrapeHTTPError, match="^invalid URL$"):
            await client.get(URL(url), ACCEPT, LIMIT, 1.0)


async def test_endless_trailers_fail_at_the_header_limit_not_at_the_timeout() -> None:
    endless = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na 1\r\n0\r\nX-Trailer: " + b"v" * 300_000
    async with raw_server(lambda _: [endless]) as server:
        client = ScrapeClient(idle_limit=4)
        started = asyncio.get_running_loop().time()
        with pytest.raises(ScrapeHTTPError, match="^response headers over the limit$"):
            await client.get(server.url(), ACCEPT, LIMIT, 5.0)
        assert asyncio.get_running_loop().time() - started < 2.0


async def test_interim_answers_bare_line_feeds_and_raw_deflate_are_read_as_other_clients_read_them(
        caplog: pytest.LogCaptureFixture) -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + ok(b"a 1\n")
    bare = b"HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 4\n\nb 2\n"
    squeezer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw_deflate = ok(squeezer.compress(b"c 3\n") + squeezer.flush(), "Content-Encoding: deflate")
    upgrade = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    async with raw_server(lambda number: [[interim], [bare], [raw_deflate], [upgrade]][number]) as server:
        client = ScrapeClient(idle_limit=4)
        bodies = []
        for _ in range(3):
            bodies.append((await client.get(server.url(), ACCEPT, LIMIT, 2.0))[0])
            client.close()
        with pytest.raises(ScrapeHTTPError, match="^HTTP 101$"):
            await client.get(server.url(), ACCEPT, LIMIT, 2.0)
        await asyncio.sleep(0.05)
    assert bodies == [b"a 1\n", b"b 2\n", b"c 3\n"]
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


async def test_an_idle_connection_the_target_closes_leaves_the_pool_at_once() -> None:
    async with raw_server(lambda _: [ok(b"a 1\n"), CLOSE]) as server:
        client = ScrapeClient(idle_limit=4)
        await client.get(server.url(), ACCEPT, LIMIT, 2.0)
        deadline = asyncio.get_running_loop().time() + 5.0
        while client.idle_connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        assert client.idle_connections == 0


def test_a_client_used_in_a_new_event_loop_drops_the_old_loops_connections_and_works() -> None:
    answer = ok(b"a 1\n")

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            while True:
                lines = []
                while (line := self.rfile.readline()) not in (b"\r\n", b""):
                    lines.append(line)
                if not lines:
                    return
                self.wfile.write(answer)

    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler) as server:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = URL(f"http://127.0.0.1:{server.server_address[1]}/metrics")
        client = ScrapeClient(idle_limit=4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)  # the first loop's socket, closed when collected
            first = asyncio.run(client.get(url, ACCEPT, LIMIT, 2.0))
            second = asyncio.run(client.get(url, ACCEPT, LIMIT, 2.0))
        server.shutdown()
    assert first == second == (b"a 1\n", "text/plain")
