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

The admin token grants every scope; the read token grants read. Ingestion tokens are derived
from one key, for a namespace or for a role (a central Prometheus' remote-write, which writes
every namespace): `mi2.<kind>.<name>.<HMAC-SHA256(key, "<kind>:<name>") in hex>`, with the kind
`ns` or `role`. The kind is in the token's text and in its HMAC input, and a namespace can't
contain ':', so a namespace named like a role (`prometheus-remote-write` is a legal namespace)
gets a namespace token, never the role's. The service checks a token by recomputing it, so it
holds only the key; an agent namespace holds only its own token, which grants ingestion and
nothing else. `python -m monitoring.credentials <namespace>` (or `--role <role>`) prints a
token from MONITORING_AUTH__INGEST_KEY.

An ingestion token speaks for its namespace only: what it sends is labelled with it, it can't send as
(or name, in `gen_ai.agent.name`) an agent that belongs to another namespace (monitoring/ownership.py), and
it finishes only spans it started. A role's token is good only on the routes that declare the role
(Prometheus' on `/api/v1/write`).

A scope without a configured credential is open; the settings allow that only while the
service listens on loopback (local development), and then only requests for a loopback host name
(`Host: localhost`, `127.0.0.1` or `[::1]`) are served, so a web page can't reach the service through
a DNS name of its own (DNS rebinding). Nothing is trusted because of where a call comes from: behind
a sidecar every caller looks local.
"""

from __future__ import annotations

import argparse
import enum
import hashlib
import hmac
import math
import os
import re
import string
import sys

INGEST_PREFIX = "mi2"  # mi1 tokens carried no kind (a namespace could hold a role's token): no longer accepted
NAMESPACE_KIND, ROLE_KIND = "ns", "role"
PROMETHEUS_ROLE = "prometheus-remote-write"  # a central Prometheus' remote-write: series of every namespace
ROLES = (PROMETHEUS_ROLE,)
# The ingestion scope of the Prometheus role: the scope of a role token is `role:<role>`, of a namespace token
# the namespace, which can't contain ':'.
PROMETHEUS_SCOPE = f"{ROLE_KIND}:{PROMETHEUS_ROLE}"
SCOPE_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # a namespace or group name
MIN_TOKEN_LENGTH = 16


class Scope(enum.Enum):
    """What a request needs (declared by each route)."""

    OPEN = "open"
    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"
    CONSOLE = "console"


def is_role(scope: str) -> bool:
    """Whether an ingestion scope is a role's (`role:<role>`) rather than a namespace's."""
    return scope.startswith(f"{ROLE_KIND}:")


def _kind_and_name(scope: str) -> tuple[str, str]:
    """(kind, name) of an ingestion scope: `role:<role>` or a namespace; ValueError for anything else."""
    kind, colon, name = scope.partition(":")
    if colon:
        if kind != ROLE_KIND or name not in ROLES:
            raise ValueError(f"scope {scope!r}: no role {name!r} (roles: {', '.join(ROLES)})")
        return ROLE_KIND, name
    if not SCOPE_PATTERN.match(scope):
        raise ValueError(f"{scope!r} is not a namespace name: a DNS label (lower-case letters, digits, '-'; at "
                         f"most 63); for a role's token use --role")
    return NAMESPACE_KIND, scope


def _token(key: str, kind: str, name: str) -> str:
    # The kind is signed with the name: a token of one kind can't be relabelled as the other.
    digest = hmac.new(key.encode(), f"{kind}:{name}".encode(), hashlib.sha256).hexdigest()
    return f"{INGEST_PREFIX}.{kind}.{name}.{digest}"


def ingest_token(key: str, scope: str) -> str:
    """The ingestion token of `scope` under `key`: a namespace (or agent-group) name, or `role:<role>`
    (PROMETHEUS_SCOPE)."""
    return _token(key, *_kind_and_name(scope))


def ingest_scope(key: str, token: bytes) -> str | None:
    """The scope an ingestion token was issued for (its namespace, or `role:<role>`), or None when it isn't one
    under `key`."""
    try:
        prefix, kind, name, _ = token.decode("ascii").split(".")
    except (UnicodeDecodeError, ValueError):
        return None
    if prefix != INGEST_PREFIX:
        return None
    scope = name if kind == NAMESPACE_KIND else f"{kind}:{name}"
    try:
        expected = ingest_token(key, scope)
    except ValueError:  # an unknown kind or role, or a name no namespace can have
        return None
    return scope if hmac.compare_digest(token, expected.encode()) else None


# What a configured credential must not look like: a template's or a render's placeholder, a value from
# documentation, an unexpanded variable. Case-insensitive.
_PLACEHOLDER = re.compile(r"<[^<>]*>|\$\{[^}]*\}|\{\{.*\}\}|change[-_ ]?me|replace[-_ ]?me|generated[-_ ]by|"
                          r"placeholder|example|redacted", re.IGNORECASE)
MIN_TOKEN_BITS = 64
_CHARACTER_CLASSES = (frozenset(string.ascii_lowercase), frozenset(string.ascii_uppercase), frozenset(string.digits))
_OTHER_CLASS_SIZE = 33  # printable ASCII punctuation and space


# Words people put in made-up tokens; each counts as one guess among a few thousand (WORD_BITS), not as
# its letters.
_COMMON_WORDS = ("password", "passwd", "secret", "token", "admin", "monitoring", "metrics", "agent", "letmein",
                 "qwerty", "welcome", "default", "super", "login", "master", "trustno", "iloveyou", "dragon",
                 "access", "private", "internal", "prod", "test")
WORD_BITS = 12.0
_WORD = re.compile("|".join(_COMMON_WORDS), re.IGNORECASE)


def estimated_bits(token: str) -> float:
    """A cautious estimate of a token's entropy in bits. Each character is worth log2 of the smaller of its
    alphabet (the character classes the token uses) and the token's distinct characters, except that one
    following its neighbour in order or repeating it (`abc`, `123`, `cba`, `aa`) is worth 1 bit, and a common
    word (`password`, `secret`, ...) WORD_BITS. `openssl rand -hex 24` gives about 165, a 40-character
    RandomPassword about 220; `passwordpassword` 24, `0123456789abcdef` 22."""
    parts = _WORD.split(token)
    words = len(parts) - 1
    rest = "".join(parts)
    characters = set(rest)
    pool = sum(len(members) for members in _CHARACTER_CLASSES if characters & members)
    if any(not any(char in members for members in _CHARACTER_CLASSES) for char in characters):
        pool += _OTHER_CLASS_SIZE
    per_character = math.log2(max(1, min(pool, len(characters))))
    bits = words * WORD_BITS
    for part in parts:  # a word between two characters breaks their run
        for index, char in enumerate(part):
            follows = index > 0 and abs(ord(char) - ord(part[index - 1])) <= 1
            bits += 1.0 if follows else per_character
    return bits


def _repeats(token: str) -> bool:
    """The token is one short unit over and over (`xxxx...`, `abcabc...`, `password-password-pass`)."""
    return any(token == (token[:period] * (len(token) // period + 1))[:len(token)]
               for period in range(1, len(token) // 2 + 1))


def token_weakness(token: str) -> str | None:
    """Why `token` can't serve as a credential, never quoting it (None: it can)."""
    how = "generate one with `openssl rand -hex 24`"
    if len(token) < MIN_TOKEN_LENGTH:
        return f"must be at least {MIN_TOKEN_LENGTH} characters (an empty one would lock everyone out); {how}"
    if _PLACEHOLDER.search(token):
        return f"looks like a placeholder (<...>, changeme, generated by, an unexpanded ${{...}}), not a secret; {how}"
    if _repeats(token):
        return f"is one short sequence of characters repeated, not a secret; {how}"
    bits = estimated_bits(token)
    if bits < MIN_TOKEN_BITS:
        return (f"has too little entropy (about {bits:.0f} bits estimated from its {len(set(token))} distinct "
                f"characters; at least {MIN_TOKEN_BITS} needed); {how}")
    return None


def former_ingest_token(token: bytes) -> bool:
    """Whether `token` is shaped like an ingestion token of the former format (mi1.<scope>.<hmac>, no kind)."""
    return token.startswith(b"mi1.") and token.count(b".") == 2


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
    parser = argparse.ArgumentParser(
        prog="python -m monitoring.credentials",
        description="Print the ingestion token of a namespace, or of a role, derived from "
                    "MONITORING_AUTH__INGEST_KEY.")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("namespace", nargs="?", help="an agent namespace (a group's namespace is "
                                                    "<namespace>-<group> unless the group names its own)")
    which.add_argument("--role", choices=ROLES, help="a role: prometheus-remote-write writes every namespace")
    args = parser.parse_args(argv)
    key = os.environ.get("MONITORING_AUTH__INGEST_KEY", "")
    if not key:
        parser.print_usage(sys.stderr)
        print("set MONITORING_AUTH__INGEST_KEY to the service's ingestion key", file=sys.stderr)
        return 2
    weakness = token_weakness(key)
    if weakness is not None:  # the service refuses such a key at start-up: its tokens would be useless
        print(f"MONITORING_AUTH__INGEST_KEY {weakness}", file=sys.stderr)
        return 2
    try:
        print(ingest_token(key, f"{ROLE_KIND}:{args.role}" if args.role else args.namespace))
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
