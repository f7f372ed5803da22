"""Who may call what: the scopes requests need, and the credentials that grant them.

Scopes (each route declares its own where it is registered: `monitoring/routes.py`'s `route()`
in monitoring/api.py, monitoring/tracing/api.py and monitoring/console/handlers.py):
- **open**: the probes and `/metrics` (what kubelets and Prometheus expect to reach), and the console's
  sign-in page, sign-out and static files;
- **ingest**: OTLP `/v1/*`, the JSON span API and Prometheus remote-write (`/api/v1/write`), for agents and
  Prometheus;
- **read**: the reads under `/api`, for people, dashboards and the console;
- **admin**: every change under `/api` (registrations, alert rules);
- **console**: the console's pages, which check the read credential themselves (a session cookie, or the
  read or admin bearer token) and send people to the sign-in page.

A path the router doesn't know is left to it (404/405); a route registered without a scope needs
the admin token (and a test that walks the router fails on it).

The admin token grants every scope; the read token grants read. Agents get ingestion tokens
derived from one key: `mi1.<scope>.<HMAC-SHA256(key, scope) in hex>`, where the scope is
their namespace (or any name of an agent group). The service checks a token by recomputing it,
so it holds only the key; an agent namespace holds only its own token, which grants ingestion
and nothing else. `python -m monitoring.credentials <scope>` prints the token of a scope from
MONITORING_AUTH__INGEST_KEY.

An ingestion token speaks for its namespace only: what it sends is labelled with it, it can't send
as an agent that discovery sees only in other namespaces, and it finishes only spans it started.

A scope without a configured credential is open; the settings allow that only while the
service listens on loopback (local development), and then only requests for a loopback host name
(`Host: localhost`, `127.0.0.1` or `[::1]`) are served, so a web page can't reach the service through
a DNS name of its own (DNS rebinding). Nothing is trusted because of where a call comes from: behind
a sidecar every caller looks local.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import re
import sys

INGEST_PREFIX = "mi1"
PROMETHEUS_SCOPE = "prometheus-remote-write"  # the ingestion scope of a central Prometheus' remote-write
SCOPE_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # a namespace or group name
MIN_TOKEN_LENGTH = 16


class Scope(enum.Enum):
    """What a request needs (declared by each route)."""

    OPEN = "open"
    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"
    CONSOLE = "console"


def ingest_token(key: str, scope: str) -> str:
    """The ingestion token of `scope` (a namespace or agent-group name) under `key`."""
    if not SCOPE_PATTERN.match(scope):
        raise ValueError(f"scope {scope!r} must be a DNS label (lower-case letters, digits, '-'; at most 63)")
    digest = hmac.new(key.encode(), scope.encode(), hashlib.sha256).hexdigest()
    return f"{INGEST_PREFIX}.{scope}.{digest}"


def ingest_scope(key: str, token: bytes) -> str | None:
    """The scope an ingestion token was issued for, or None when it isn't one under `key`."""
    try:
        prefix, scope, _ = token.decode("ascii").split(".")
    except (UnicodeDecodeError, ValueError):
        return None
    if prefix != INGEST_PREFIX or not SCOPE_PATTERN.match(scope):
        return None
    return scope if hmac.compare_digest(token, ingest_token(key, scope).encode()) else None


def bearer(header: str | None) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header, as bytes (any header text is safe here)."""
    if not header:
        return None
    raw = header.encode("utf-8", "surrogateescape")
    scheme, _, token = raw.partition(b" ")
    return token.strip() if scheme.lower() == b"bearer" and token.strip() else None


def same(token: bytes, expected: str) -> bool:
    """Constant-time comparison of a presented token with a configured one."""
    return hmac.compare_digest(token, expected.encode())


def main(argv: list[str]) -> int:
    key = os.environ.get("MONITORING_AUTH__INGEST_KEY", "")
    if len(argv) != 1 or not key:
        print("usage: MONITORING_AUTH__INGEST_KEY=<key> python -m monitoring.credentials <scope>", file=sys.stderr)
        return 2
    try:
        print(ingest_token(key, argv[0]))
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
