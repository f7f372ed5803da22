"""Where agents registered through the API may be scraped (the scrape-target policy).

`POST /api/v1/agents` lets a client name any URL; scraping it from inside the cluster would
make the service a proxy into places the client cannot reach (cloud metadata, the Kubernetes
API server, this service's own API, sidecars on the pod's loopback). The policy below applies
to agents with `source == "api"` only: static agents (the settings file) and discovered pods
(the Kubernetes API) come from trusted configuration and are scraped as configured, as are the
course API's agents (the caller's own program).

Rules for an API-registered URL:

- http or https, and no `user:password@` (refused at registration, naming the field);
- never: unspecified, `0.0.0.0/8`, link-local, multicast and reserved addresses, known cloud
  metadata addresses, the Kubernetes API server (by name and by its service IP), this service
  itself (its own port on loopback or on its own addresses);
- local mode (`settings.local`, the service listens on loopback): everything else;
- cluster mode: only `<service>.<namespace>.svc[.<cluster_domain>]`,
  `<a-b-c-d>.<namespace>.pod[.<cluster_domain>]` and pod IPs seen by discovery, for the
  namespaces in `targets.namespaces` (default: the discovery namespaces); loopback is refused.

The checks run twice: on the URL at registration and before every request (`check_url`), and
on every address a name resolves to when the scrape connects (`GuardedResolver`, installed on
the API scrapes' own connector), so a DNS answer that changes after registration (rebinding)
cannot reach a forbidden address. aiohttp does not call the resolver for IP-literal hosts;
`check_url` covers those before each request.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from .settings import MonitoringSettings

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Metadata services that are not link-local (169.254.169.254 and ECS' 169.254.170.2 are).
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(address) for address in (
    "fd00:ec2::254",     # AWS IMDS over IPv6
    "100.100.100.200",   # Alibaba Cloud
))
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"  # a DNS-1123 label, as Kubernetes names are
_SERVICE_NAME = re.compile(rf"^(?P<service>{_LABEL})\.(?P<namespace>{_LABEL})\.svc(?:\.(?P<domain>.+))?$")
_POD_NAME = re.compile(rf"^(?P<ip>\d{{1,3}}(?:-\d{{1,3}}){{3}})\.(?P<namespace>{_LABEL})\.pod(?:\.(?P<domain>.+))?$")


class TargetRefused(ValueError):
    """A scrape target is not allowed; the message says why and how to fix it."""


class NotDiscoveredYet(TargetRefused):
    """Refused only because discovery hasn't seen the pod (yet): a restored registration may wait for it."""


class AddressNotAllowed(OSError):
    """Every address a name resolved to is forbidden (raised by GuardedResolver inside aiohttp)."""


def _unwrap(address: IPAddress) -> list[IPAddress]:
    """The addresses to check for `address`: an IPv4-mapped one is its IPv4 address; 6to4 and NAT64
    ones are checked both as themselves and as the IPv4 address they embed."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return [address.ipv4_mapped]  # the socket connects to the IPv4 address itself
    found: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.sixtofour is not None:
            found.append(address.sixtofour)
        if address in _NAT64:
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    except ValueError:
        return None


def interface_addresses() -> set[IPAddress]:
    """Every address of this host's (this pod's) network interfaces."""
    import psutil  # already a dependency (system metrics); imported here so the module stays light

    found: set[IPAddress] = set()
    for addresses in psutil.net_if_addrs().values():
        for entry in addresses:
            if entry.family in (socket.AF_INET, socket.AF_INET6):
                parsed = _parse_ip(entry.address)
                if parsed is not None:
                    found.add(parsed)
    return found


class TargetPolicy:
    """Which URLs and addresses API-registered agents may be scraped at (see the module docstring)."""

    def __init__(self, *, local: bool, namespaces: Iterable[str], cluster_domain: str = "cluster.local",
                 own_port: int, own_addresses: Iterable[IPAddress] = (),
                 api_server_names: Iterable[str] = (), api_server_addresses: Iterable[IPAddress] = ()) -> None:
        self.local = local
        self.namespaces = frozenset(namespaces)
        self.cluster_domain = cluster_domain.strip(".").lower()
        self.own_port = own_port
        self.own_addresses = frozenset(own_addresses)
        domain = self.cluster_domain
        self.api_server_names = frozenset({"kubernetes", "kubernetes.default", "kubernetes.default.svc",
                                           f"kubernetes.default.svc.{domain}",
                                           *(name.strip(".").lower() for name in api_server_names)})
        self.api_server_addresses = frozenset(api_server_addresses)
        self._pods: dict[IPAddress, str] = {}  # pod IP -> namespace, as discovery last saw it

    @classmethod
    def from_settings(cls, settings: MonitoringSettings, environ: Mapping[str, str] | None = None,
                      own_addresses: Iterable[IPAddress] | None = None) -> TargetPolicy:
        """The policy of a service run with `settings` (the API server from KUBERNETES_SERVICE_HOST)."""
        environ = os.environ if environ is None else environ
        names: list[str] = []
        addresses: list[IPAddress] = []
        api_host = environ.get("KUBERNETES_SERVICE_HOST", "").strip()
        if api_host:
            parsed = _parse_ip(api_host)
            if parsed is None:
                names.append(api_host)
            else:
                addresses.append(parsed)
        own = set(interface_addresses() if own_addresses is None else own_addresses)
        host = _parse_ip(settings.host)
        if host is not None and not host.is_unspecified:
            own.add(host)
        namespaces = settings.targets.namespaces
        return cls(local=settings.local,
                   namespaces=settings.discovery.namespaces if namespaces is None else namespaces,
                   cluster_domain=settings.targets.cluster_domain, own_port=settings.port, own_addresses=own,
                   api_server_names=names, api_server_addresses=addresses)

    # --- pods seen by discovery -----------------------------------------------------------

    def pod_seen(self, namespace: str, ip: str) -> None:
        """Discovery saw a running pod with this IP in `namespace`."""
        parsed = _parse_ip(ip)
        if parsed is not None:
            self._pods[parsed] = namespace

    def pod_gone(self, namespace: str, ip: str) -> None:
        """The pod with this IP in `namespace` is gone (the IP may already belong to a pod elsewhere)."""
        parsed = _parse_ip(ip)
        if parsed is not None and self._pods.get(parsed) == namespace:
            del self._pods[parsed]

    def _known_pod(self, address: IPAddress) -> bool:
        return self._pods.get(address) in self.namespaces

    # --- checks -------------------------------------------------------------------------

    def check_url(self, url: str, field: str = "metrics_endpoint") -> None:
        """Raise TargetRefused unless `url` may be scraped: shape, names and IP literals.

        Run at registration (the message names `field`) and before each request, since an IP
        literal never reaches the resolver and the set of known pod IPs changes.
        """
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            raise TargetRefused(f"{field}: not a valid URL") from None
        if parsed.scheme not in ("http", "https"):
            raise TargetRefused(f"{field}: only http and https URLs can be scraped (got {parsed.scheme or 'none'!r})")
        if parsed.user is not None or parsed.password is not None:
            raise TargetRefused(f"{field}: must not contain credentials (user:password@); agents are scraped "
                                "without authentication, so remove them from the URL")
        host = (parsed.raw_host or "").rstrip(".").lower()
        if not host:
            raise TargetRefused(f"{field}: the URL has no host")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        address = _parse_ip(host)
        if address is None and (":" in host or host.replace(".", "").isdigit()):
            # Digits and dots only but not a dotted quad (2852039166, 0177.0.0.1, 127.1): the
            # system resolver would turn it into an address no check here has seen.
            raise TargetRefused(f"{field}: {host!r} is not a canonical IP address; write it as a.b.c.d")
        if address is not None:
            self._check_address(address, port, f"{field}: {host}")
            if not self.local and not self._known_pod(address):
                raise NotDiscoveredYet(f"{field}: {host} is not the IP of a running agent pod discovered in "
                                    f"{self._namespace_list()}; register the agent by its service name "
                                    f"(<service>.<namespace>.svc)")
            return
        self._check_name(host, port, field)

    def _check_name(self, host: str, port: int, field: str) -> None:
        if host in self.api_server_names:
            raise TargetRefused(f"{field}: {host} is the Kubernetes API server, which is never scraped")
        if self.local:
            if (host == "localhost" or host.endswith(".localhost")) and port == self.own_port:
                raise TargetRefused(f"{field}: {host}:{port} is this monitoring service itself; "
                                    "point it at the agent's own port")
            return
        service, pod = _SERVICE_NAME.match(host), _POD_NAME.match(host)
        match = service or pod
        if match is None or match["domain"] not in (None, self.cluster_domain):
            raise TargetRefused(f"{field}: {host} is not an agent address; in the cluster, use "
                                f"<service>.<namespace>.svc[.{self.cluster_domain}] with a namespace in "
                                f"{self._namespace_list()} (settings: targets.namespaces)")
        if match["namespace"] not in self.namespaces:
            raise TargetRefused(f"{field}: namespace {match['namespace']!r} is not an agent namespace; allowed: "
                                f"{self._namespace_list()} (settings: targets.namespaces)")
        if pod is not None:
            address = _parse_ip(pod["ip"].replace("-", "."))
            if address is None or self._pods.get(address) != pod["namespace"]:
                raise NotDiscoveredYet(f"{field}: {host} does not name a running agent pod discovered in "
                                    f"{pod['namespace']}; register the agent by its service name")

    def check_resolved(self, host: str, address: str, port: int) -> None:
        """Raise TargetRefused unless `host`, resolved to `address` at connect time, may be scraped."""
        parsed = _parse_ip(address)
        if parsed is None:
            raise TargetRefused(f"{host} resolved to {address!r}, which is not an IP address")
        self._check_address(parsed, port, f"{host} ({parsed})")
        if self.local:
            return
        pod = _POD_NAME.match(host.rstrip(".").lower())
        if pod is not None and (parsed != _parse_ip(pod["ip"].replace("-", ".")) or not self._known_pod(parsed)):
            raise TargetRefused(f"{host} resolved to {parsed}, not to a discovered agent pod")

    def _check_address(self, address: IPAddress, port: int, what: str) -> None:
        for candidate in _unwrap(address):
            if candidate.is_unspecified or (candidate.version == 4 and candidate in _THIS_NETWORK):
                raise TargetRefused(f"{what} is an unspecified address, which is never scraped")
            if candidate.is_link_local:
                raise TargetRefused(f"{what} is a link-local address (cloud metadata lives there), "
                                    "which is never scraped")
            # Python counts all of ::/8 as reserved, ::1 included: loopback is judged below.
            if candidate.is_multicast or (candidate.is_reserved and not candidate.is_loopback):
                raise TargetRefused(f"{what} is a multicast or reserved address, which is never scraped")
            if candidate in METADATA_ADDRESSES:
                raise TargetRefused(f"{what} is a cloud metadata address, which is never scraped")
            if candidate in self.api_server_addresses:
                raise TargetRefused(f"{what} is the Kubernetes API server, which is never scraped")
            own = candidate.is_loopback or candidate in self.own_addresses
            if own and port == self.own_port:
                raise TargetRefused(f"{what} port {port} is this monitoring service itself; "
                                    "point it at the agent's own port")
            if own and not self.local:
                raise TargetRefused(f"{what} is this pod's own address (loopback or an interface), which is "
                                    "only scraped when the service runs locally")

    def _namespace_list(self) -> str:
        return ", ".join(sorted(self.namespaces)) or "(none)"


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that drops every address the policy forbids for the name.

    Installed on the connector of API-registered scrapes only; when nothing is left it raises
    AddressNotAllowed (aiohttp reports a ClientConnectorDNSError wrapping it).
    """

    def __init__(self, policy: TargetPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._inner = inner

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = aiohttp.ThreadedResolver()
        allowed: list[ResolveResult] = []
        for result in await self._inner.resolve(host, port, family):
            try:
                self.policy.check_resolved(host, result["host"], port)
            except TargetRefused as refusal:
                log.debug("scrape target refused at connect time: %s", refusal)
                continue
            allowed.append(result)
        if not allowed:
            raise AddressNotAllowed(f"{host}: no allowed address")
        return allowed

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def guarded_session(policy: TargetPolicy, limit: int, resolver: AbstractResolver | None = None,
                    **connector_options: Any) -> aiohttp.ClientSession:
    """A ClientSession for API-registered scrapes: every name resolves through GuardedResolver.

    `resolver` does the lookups (default: aiohttp's ThreadedResolver, i.e. getaddrinfo). Proxies
    from the environment are ignored (`trust_env=False`): through a proxy, the resolver would
    only ever see the proxy's name.
    """
    connector = aiohttp.TCPConnector(limit=limit, ttl_dns_cache=30, resolver=GuardedResolver(policy, resolver),
                                     **connector_options)
    return aiohttp.ClientSession(connector=connector, trust_env=False)
