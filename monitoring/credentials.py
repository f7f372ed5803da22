"""Who may call what: the scope each request needs, and the credentials that grant it.

Scopes:
- **open**: the probes and `/metrics` (what kubelets and Prometheus expect to reach);
- **ingest**: OTLP `/v1/*`, the JSON span API and Prometheus remote-write (`/api/v1/write`), for agents and
  Prometheus;
- **read**: every other GET under `/api`, for people, dashboards and the console;
- **admin**: every change under `/api` (registrations, alert rules).

The admin token grants every scope; the read token grants read. Agents get ingestion tokens
derived from one key: `mi1.<scope>.<HMAC-SHA256(key, scope) in hex>`, where the scope is
their namespace (or any name of an agent group). The service checks a token by recomputing it,
so it holds only the key; an agent namespace holds only its own token, which grants ingestion
and nothing else. `python -m monitoring.credentials <scope>` prints the token of a scope from
MONITORING_AUTH__INGEST_KEY.

An ingestion token speaks for its namespace only: what it sends is labelled with it, it can't send
as an agent that discovery sees only in other namespaces, and it finishes only spans it started.

A scope without a configured credential is open; the settings allow that only while the
service listens on loopback (local development). Nothing is trusted because of where a call
comes from: behind a sidecar every caller looks local.
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
_INGEST_PATHS = ("/v1/traces", "/v1/metrics", "/v1/logs", "/api/v1/spans", "/api/v1/write")
_OPEN_PATHS = ("/health/live", "/health/ready", "/metrics")
_READ_METHODS = ("GET", "HEAD", "OPTIONS")


class Scope(enum.Enum):
    """What a request needs."""

    OPEN = "open"
    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"


def required_scope(method: str, path: str) -> Scope:
    """The scope a request needs (paths the router doesn't know are left to it: 404/405)."""
    if path in _OPEN_PATHS:
        return Scope.OPEN
    if method == "POST" and (path in _INGEST_PATHS or path.startswith("/api/v1/spans/")):
        return Scope.INGEST
    if path.startswith("/api/"):
        return Scope.READ if method in _READ_METHODS else Scope.ADMIN
    return Scope.OPEN


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
