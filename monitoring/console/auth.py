"""Who may see the console: the read API's credentials (monitoring/credentials.py).

A person signs in once with the read (or admin) token; the console keeps a session cookie
(HttpOnly, SameSite=Strict, Secure over HTTPS) that proves it without holding the token:
`c3.<expiry us>.<session id>.<HMAC-SHA256(token, "console-session:<expiry us>:<session id>")>`. Rotating the
token ends every session. Signing out ends the session on the server too: its id is kept as revoked
until it would have expired (in a bounded store; when that is full of unexpired sign-outs, every session
issued so far ends instead, so no sign-out is ever forgotten). Sign-outs live in memory only, so a restart
ends every session issued before it (else a signed-out cookie would replay after one); the expiry is in
microseconds so that a session issued just after the start is told apart from one issued just before. A reverse proxy that signs people in
itself sends the standard `Authorization: Bearer` header instead. As with the API, no read token configured means open (allowed on loopback only).
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import re
import secrets
import time
from urllib.parse import urlsplit

from aiohttp import web
from yarl import URL

from ..credentials import bearer, same
from ..settings import AuthSettings

COOKIE = "console_session"
SESSION_SECONDS = 12 * 3600
SESSION_US = SESSION_SECONDS * 1_000_000
SESSION_PREFIX = "c3"  # c2 cookies (expiry in seconds) were issued before a restart: they are not accepted
MAX_COOKIE_BYTES = 256
MAX_REVOKED = 10_000  # sign-outs kept until their sessions expire (~100 bytes each)


def _tokens(auth: AuthSettings) -> list[str]:
    """The credentials that open the console: the read token and the admin token."""
    return [secret.get_secret_value() for secret in (auth.read_token, auth.admin_token) if secret is not None]


def is_open(auth: AuthSettings) -> bool:
    """No read credential is configured (the settings allow that only on loopback)."""
    return auth.read_token is None


def _signature(token: str, expiry: int, session_id: str) -> str:
    return hmac.new(token.encode(), f"console-session:{expiry}:{session_id}".encode(), hashlib.sha256).hexdigest()


def session_cookie(token: str, now: float | None = None) -> str:
    """A new session's cookie value for someone who presented `token`."""
    expiry = _us(now if now is not None else time.time()) + SESSION_US
    session_id = secrets.token_hex(16)
    return f"{SESSION_PREFIX}.{expiry}.{session_id}.{_signature(token, expiry, session_id)}"


def _us(seconds: float) -> int:
    return int(seconds * 1_000_000)


_SESSION = re.compile(rf"{SESSION_PREFIX}\.([0-9]{{1,18}})\.([0-9a-f]{{32}})\.([0-9a-f]{{64}})")


class RevokedSessions:
    """Sessions signed out before their expiry, kept until it (at most `capacity`).

    Every session issued before `ended_before` (seconds; the service passes its start time, as the store
    is not kept across restarts) has ended. When the store is full of unexpired sign-outs, every session
    issued until then ends too and the store starts empty: a sign-out is never forgotten, at worst others
    sign in again.
    """

    def __init__(self, capacity: int = MAX_REVOKED, ended_before: float = 0.0) -> None:
        self._capacity = capacity
        self._expiries: dict[str, int] = {}  # session id -> its expiry (us)
        self._by_expiry: list[tuple[int, str]] = []  # heap, to drop sign-outs of expired sessions
        self._ended_before = _us(ended_before)  # sessions issued before this time (us) have all ended

    @property
    def ended_before(self) -> float:
        """Sessions issued before this time (seconds since the epoch) have all ended."""
        return self._ended_before / 1_000_000

    def __len__(self) -> int:
        return len(self._expiries)

    def revoke(self, session_id: str, expiry: int, now: float) -> None:
        self._drop_expired(now)
        if len(self._expiries) >= self._capacity:
            self._ended_before = _us(now) + 1
            self._expiries.clear()
            self._by_expiry.clear()
            return
        self._expiries[session_id] = expiry
        heapq.heappush(self._by_expiry, (expiry, session_id))

    def ended(self, session_id: str, expiry: int) -> bool:
        return session_id in self._expiries or expiry - SESSION_US < self._ended_before

    def _drop_expired(self, now: float) -> None:
        while self._by_expiry and self._by_expiry[0][0] <= _us(now):
            _, session_id = heapq.heappop(self._by_expiry)
            self._expiries.pop(session_id, None)


def _session(auth: AuthSettings, cookie: str | None, now: float | None) -> tuple[str, int] | None:
    """(session id, expiry) of a cookie issued for a token still configured that has not expired."""
    match = _SESSION.fullmatch(cookie) if cookie and len(cookie) <= MAX_COOKIE_BYTES else None
    if match is None:
        return None
    expiry, session_id = int(match.group(1)), match.group(2)
    current = _us(now if now is not None else time.time())
    if not current < expiry <= current + SESSION_US:
        return None
    signature = match.group(3).encode("ascii")
    if not any(hmac.compare_digest(signature, _signature(token, expiry, session_id).encode())
               for token in _tokens(auth)):
        return None
    return session_id, expiry


def valid_session(auth: AuthSettings, cookie: str | None, now: float | None = None,
                  revoked: RevokedSessions | None = None) -> bool:
    """The cookie was issued for a token still configured, has not expired and was not signed out."""
    session = _session(auth, cookie, now)
    return session is not None and (revoked is None or not revoked.ended(*session))


def sign_out(auth: AuthSettings, cookie: str | None, revoked: RevokedSessions, now: float | None = None) -> bool:
    """End the cookie's session on the server; False (nothing kept) when it isn't a valid session."""
    session = _session(auth, cookie, now)
    if session is None:
        return False
    revoked.revoke(*session, now if now is not None else time.time())
    return True


def valid_token(auth: AuthSettings, token: bytes) -> bool:
    return any(same(token, expected) for expected in _tokens(auth))


REVOKED = web.AppKey("console_revoked_sessions", RevokedSessions)


def signed_in(request: web.Request, auth: AuthSettings) -> bool:
    """The request may see the console: open settings, a valid session cookie (not signed out), or a
    read/admin bearer token."""
    if is_open(auth):
        return True
    token = bearer(request.headers.get("Authorization"))
    if token is not None:
        return valid_token(auth, token)
    return valid_session(auth, request.cookies.get(COOKIE), revoked=request.app[REVOKED])


def same_origin(request: web.Request) -> bool:
    """A form post comes from the console itself: its Origin (browsers send it on POST) names this host, as the
    client or a proxy in front of the service sees it (a cross-site form can set neither header)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser's cross-site form (those carry Origin); SameSite=Strict guards the cookie
    hosts = {request.host, *request.headers.getall("X-Forwarded-Host", [])}
    return urlsplit(origin).netloc in hosts


_LOCAL_PATH = re.compile(r"/(?![/\\])[\x21-\x7e]*")  # printable ASCII, not // or /\ (another site)


def local_path(target: str | None) -> str:
    """Where to go after signing in: a path on this service only (never another site, also not after the
    server's URL handling drops tabs or line breaks from it)."""
    if not target or _LOCAL_PATH.fullmatch(target) is None:
        return "/"
    url = URL(target)
    return "/" if url.is_absolute() or str(url).startswith(("//", "/\\")) else target


def set_session(response: web.StreamResponse, request: web.Request, token: str) -> None:
    response.set_cookie(COOKIE, session_cookie(token), max_age=SESSION_SECONDS, path="/", httponly=True,
                        samesite="Strict", secure=_https(request))


def clear_session(response: web.StreamResponse, request: web.Request) -> None:
    response.del_cookie(COOKIE, path="/", secure=_https(request), httponly=True, samesite="Strict")


def _https(request: web.Request) -> bool:
    # Behind a TLS-terminating proxy the scheme is http; its X-Forwarded-Proto only ever makes the cookie
    # stricter (Secure), never grants anything.
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"
