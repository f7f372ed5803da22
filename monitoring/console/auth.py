"""Who may see the console: the read API's credentials (monitoring/credentials.py).

A person signs in once with the read (or admin) token; the console keeps a session cookie
(HttpOnly, SameSite=Strict, Secure over HTTPS) that proves it without holding the token:
`c1.<expiry>.<HMAC-SHA256(token, "console-session:<expiry>")>`. Rotating the token ends every
session. A reverse proxy that signs people in itself sends the standard `Authorization: Bearer`
header instead. As with the API, no read token configured means open (allowed on loopback only).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from urllib.parse import urlsplit

from aiohttp import web
from yarl import URL

from ..credentials import bearer, same
from ..settings import AuthSettings

COOKIE = "console_session"
SESSION_SECONDS = 12 * 3600
SESSION_PREFIX = "c1"
MAX_COOKIE_BYTES = 256


def _tokens(auth: AuthSettings) -> list[str]:
    """The credentials that open the console: the read token and the admin token."""
    return [secret.get_secret_value() for secret in (auth.read_token, auth.admin_token) if secret is not None]


def is_open(auth: AuthSettings) -> bool:
    """No read credential is configured (the settings allow that only on loopback)."""
    return auth.read_token is None


def _signature(token: str, expiry: int) -> str:
    return hmac.new(token.encode(), f"console-session:{expiry}".encode(), hashlib.sha256).hexdigest()


def session_cookie(token: str, now: float | None = None) -> str:
    """A session cookie value for someone who presented `token`."""
    expiry = int((now if now is not None else time.time()) + SESSION_SECONDS)
    return f"{SESSION_PREFIX}.{expiry}.{_signature(token, expiry)}"


_SESSION = re.compile(rf"{SESSION_PREFIX}\.([0-9]{{1,12}})\.([0-9a-f]{{64}})")


def valid_session(auth: AuthSettings, cookie: str | None, now: float | None = None) -> bool:
    """The cookie was issued for a token still configured and has not expired."""
    match = _SESSION.fullmatch(cookie) if cookie and len(cookie) <= MAX_COOKIE_BYTES else None
    if match is None:
        return False
    expiry, current = int(match.group(1)), now if now is not None else time.time()
    if not current < expiry <= current + SESSION_SECONDS:
        return False
    signature = match.group(2).encode("ascii")
    return any(hmac.compare_digest(signature, _signature(token, expiry).encode()) for token in _tokens(auth))


def valid_token(auth: AuthSettings, token: bytes) -> bool:
    return any(same(token, expected) for expected in _tokens(auth))


def signed_in(request: web.Request, auth: AuthSettings) -> bool:
    """The request may see the console: open settings, a valid session cookie, or a read/admin bearer token."""
    if is_open(auth):
        return True
    token = bearer(request.headers.get("Authorization"))
    if token is not None:
        return valid_token(auth, token)
    return valid_session(auth, request.cookies.get(COOKIE))


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
