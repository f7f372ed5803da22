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
import time
from urllib.parse import urlsplit

from aiohttp import web

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


def valid_session(auth: AuthSettings, cookie: str | None, now: float | None = None) -> bool:
    """The cookie was issued for a token still configured and has not expired."""
    if not cookie or len(cookie) > MAX_COOKIE_BYTES:
        return False
    prefix, _, rest = cookie.partition(".")
    expiry_text, _, signature = rest.partition(".")
    if prefix != SESSION_PREFIX or not expiry_text.isdigit():
        return False
    expiry, current = int(expiry_text), now if now is not None else time.time()
    if not current < expiry <= current + SESSION_SECONDS:
        return False
    return any(hmac.compare_digest(signature.encode(), _signature(token, expiry).encode()) for token in _tokens(auth))


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
    """A form post comes from the console itself: its Origin (browsers send it on POST) names this host."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser's cross-site form (those carry Origin); SameSite=Strict guards the cookie
    return urlsplit(origin).netloc == request.host


def local_path(target: str | None) -> str:
    """Where to go after signing in: a path on this service only (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def set_session(response: web.StreamResponse, request: web.Request, token: str) -> None:
    response.set_cookie(COOKIE, session_cookie(token), max_age=SESSION_SECONDS, path="/", httponly=True,
                        samesite="Strict", secure=_https(request))


def clear_session(response: web.StreamResponse, request: web.Request) -> None:
    response.del_cookie(COOKIE, path="/", secure=_https(request), httponly=True, samesite="Strict")


def _https(request: web.Request) -> bool:
    # Behind a TLS-terminating proxy the scheme is http; its X-Forwarded-Proto only ever makes the cookie
    # stricter (Secure), never grants anything.
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"
