"""Signing out of the console ends the session on the server: the old cookie, replayed, opens nothing
(issue 23 item 10)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from monitoring.app import init_app
from monitoring.console import auth

from .test_console import READ, secured

Client = Callable[..., Any]


async def _sign_in(client: Any) -> str:
    response = await client.post("/ui/login", data={"token": READ, "next": "/"}, allow_redirects=False)
    assert response.status == 303
    return response.cookies[auth.COOKIE].value


async def _page(client: Any, cookie: str) -> Any:
    client.session.cookie_jar.clear()  # only the cookie the test replays
    return await client.get("/ui/alerts", headers={"Cookie": f"{auth.COOKIE}={cookie}"}, allow_redirects=False)


async def test_a_signed_out_cookie_replayed_is_sent_to_sign_in(aiohttp_client: Client) -> None:
    client = await aiohttp_client(init_app(secured()))
    cookie = await _sign_in(client)
    other = await _sign_in(client)  # another browser's session
    assert cookie != other
    assert (await _page(client, cookie)).status == 200
    signed_out = await client.post("/ui/logout", headers={"Cookie": f"{auth.COOKIE}={cookie}"}, allow_redirects=False)
    assert signed_out.status == 303
    replayed = await _page(client, cookie)
    assert replayed.status == 303 and replayed.headers["Location"].startswith("/ui/login")
    waterfall = await client.get("/ui/traces/t/waterfall.json", headers={"Cookie": f"{auth.COOKIE}={cookie}"},
                                 allow_redirects=False)
    assert waterfall.status == 303
    assert (await _page(client, other)).status == 200  # only the session that signed out ends


def test_revoked_sessions_stay_bounded_and_revoked() -> None:
    """Past its capacity the store ends every session issued so far instead of forgetting a sign-out."""
    settings = secured().auth
    now = time.time()
    revoked = auth.RevokedSessions(capacity=3)
    cookies = [auth.session_cookie(READ, now) for _ in range(5)]
    for cookie in cookies[:4]:
        assert auth.valid_session(settings, cookie, now, revoked)
        assert auth.sign_out(settings, cookie, revoked, now)
        assert not auth.valid_session(settings, cookie, now, revoked)
        assert len(revoked) <= 3
    # The fifth was never signed out, but was issued before the store overflowed: it ended too.
    assert all(not auth.valid_session(settings, cookie, now, revoked) for cookie in cookies)
    later = now + 2
    fresh = auth.session_cookie(READ, later)
    assert auth.valid_session(settings, fresh, later, revoked)
    # Sign-outs are kept only until the session would have expired anyway.
    assert auth.sign_out(settings, fresh, revoked, later)
    assert len(revoked) == 1
    end = later + auth.SESSION_SECONDS
    assert auth.sign_out(settings, auth.session_cookie(READ, end), revoked, end)
    assert len(revoked) == 1


def test_only_valid_sessions_are_recorded_as_signed_out() -> None:
    """Garbage posted to /ui/logout can't fill the store: only cookies the service issued are kept."""
    settings = secured().auth
    revoked = auth.RevokedSessions(capacity=3)
    now = time.time()
    for cookie in ("", "x" * 5000, f"{auth.SESSION_PREFIX}.{int(now * 1_000_000) + 100_000_000}.{'0' * 32}.{'0' * 64}"):
        assert not auth.sign_out(settings, cookie, revoked, now)
    assert len(revoked) == 0
    assert auth.sign_out(settings, auth.session_cookie(READ, now), revoked, now)
    assert len(revoked) == 1


async def test_a_restart_signs_everyone_out(aiohttp_client: Client) -> None:
    """Sign-outs are not kept across restarts, so a restart ends every session issued before it: a cookie
    signed out (or not) before the restart opens nothing after it (issue 23 follow-up)."""
    settings = secured()
    before = await aiohttp_client(init_app(settings))
    cookie = await _sign_in(before)
    assert (await _page(before, cookie)).status == 200
    await before.post("/ui/logout", headers={"Cookie": f"{auth.COOKIE}={cookie}"}, allow_redirects=False)
    kept = await _sign_in(before)  # a session that never signed out ends as well
    restarted = await aiohttp_client(init_app(settings))
    for old in (cookie, kept):
        replayed = await _page(restarted, old)
        assert replayed.status == 303 and replayed.headers["Location"].startswith("/ui/login")
    fresh = await _sign_in(restarted)  # signing in again works at once
    assert (await _page(restarted, fresh)).status == 200
