"""The metrics collector: one scrape schedule per agent, bounded fetches, rules and heartbeats.

One scheduling task starts each agent's scrapes at `collection_interval` from a random phase (so
thousands of agents don't fire at once) plus per-scrape jitter, batching those due together
(monitoring.schedule). All scrapes share a concurrency limit, a timeout and a body-size limit.
Trusted plain-HTTP targets are fetched by a lean keep-alive client (monitoring.scrape_http).
Agents registered through the API (`source == "api"`) must pass the scrape-target policy
(monitoring.targets) at registration and before each request, and are scraped through their own
aiohttp session whose resolver applies it again.

A scrape follows no redirect and sends no credentials from the URL, and what it records as the
reason of a failure (`last_error`, the agent-down alert) is one of a few fixed texts: nothing
the target sent, and no network error text, is ever echoed back.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp
from yarl import URL

from .agents import AgentState, AgentStatus
from .alerts import Alert, AlertBook
from .label_limits import BODY_SIZE, BodyRefusals
from .ownership import Ownership
from .remote_write_stats import RemoteWriteStats
from .parsing import BodyLimits, LabelLimitError, NumberError, ParseError, Sample, SampleLimitError, parse_metrics
from .health import refresh_penalty
from .reports import performance_report, system_overview
from .rules import RuleIndex, evaluate
from .schedule import Schedule
from .scrape_http import BodyTooLargeError, ScrapeClient, ScrapeHTTPError
from .settings import AlertRuleSpec, MonitoringSettings
from .store import MetricStore
from .targets import AddressNotAllowed, TargetPolicy, TargetRefused

if TYPE_CHECKING:
    from .system_metrics import SystemSampler

log = logging.getLogger(__name__)

HEARTBEAT_PERIOD = 1.0  # how often check_heartbeats should run
# Scraped bodies up to this size are parsed on the event loop (a thread hand-off would cost more than the
# parse); larger ones (up to max_response_bytes, up to ~100 ms of parsing) in a worker thread. The agent's
# shape cache is safe there: one agent's scrapes never overlap.
INLINE_SCRAPE_PARSE_BYTES = 256 * 1024
_ACCEPT = "text/plain;version=0.0.4;q=0.9, application/json;q=0.5, */*;q=0.1"


class ScrapeError(Exception):
    """A scrape failed; the message is the reason shown in the API and the alert (a fixed text)."""


class BodyTooLarge(ScrapeError):
    """The agent's body is over max_response_bytes (as sent or decompressed)."""


API_SOURCE = "api"  # agents from POST /api/v1/agents: the only ones the target policy applies to
STATIC_SOURCE = "static"  # agents from the settings (`agents:`)
DISCOVERY_SOURCE = "discovery"  # pods discovery sees
REMOTE_WRITE_SOURCE = "remote_write"  # agents named first by a remote-write (and that intake's source label)
SCRAPE_SOURCE = "scrape"  # the source label of what the service's own scrapes count


class RegistrationError(Exception):
    """An agent could not be registered (e.g. the agent limit is reached)."""


@dataclass
class CollectorStats:
    """Collector internals, exposed on /metrics."""

    scrapes_ok: int = 0
    scrapes_failed: int = 0
    samples: int = 0
    lags: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))

    def lag_quantile(self, q: float) -> float:
        if not self.lags:
            return 0.0
        ordered = sorted(self.lags)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Collector:
    """Scrapes registered agents, stores their samples, evaluates rules and tracks heartbeats."""

    def __init__(self, settings: MonitoringSettings, on_alert_change: Callable[[Alert], None],
                 session: aiohttp.ClientSession | None = None, clock: Callable[[], float] = time.time,
                 spread_start: bool = True, targets: TargetPolicy | None = None) -> None:
        self.settings = settings
        self.agents: dict[str, AgentState] = {}
        self._namespaces: dict[str, dict[str, int]] = {}  # agent label -> namespace -> discovered pods
        self.ownership = Ownership()  # agent -> the namespace remote-write bound it to; per-namespace usage
        self.store = MetricStore(settings.recent_metrics_size, settings.window_size, settings.max_series_per_agent,
                                 recent_bytes=settings.recent_metrics_bytes, series_bytes=settings.max_series_bytes,
                                 series_bytes_per_agent=settings.max_series_bytes_per_agent)
        # What one scraped body may carry: samples, labels per sample, label characters in all.
        self.body_limits = BodyLimits(settings.max_samples_per_scrape, settings.label_limits,
                                      settings.max_label_bytes_per_scrape)
        self.rules = RuleIndex(settings.alert_rules)
        self.alerts = AlertBook(settings.alert_history_size, on_alert_change, settings.max_active_alerts)
        self.stats = CollectorStats()
        self.remote_write_stats = RemoteWriteStats()
        self.refusals = BodyRefusals()  # bodies refused whole for their labels or size, by source
        # Samples dropped for a timestamp outside max_sample_age / max_sample_future: (source, reason) -> samples.
        self.out_of_bounds: dict[tuple[str, str], int] = {}
        self.session = session  # set by the app once its event loop runs
        # Where API-registered agents may be scraped, and the session whose resolver enforces it
        # (set by the app; without one, API-registered agents are not scraped).
        self.targets = targets if targets is not None else TargetPolicy.from_settings(settings)
        self.guarded_session: aiohttp.ClientSession | None = None
        self._clock = clock
        self._semaphore = asyncio.Semaphore(settings.max_concurrent_scrapes)
        # The app's one worker-thread slot: large scraped bodies are parsed, and large OTLP bodies decoded
        # (tracing/api.py reaches it as app[THREAD_SLOT]), one at a time: a second thread running Python would
        # starve the event loop of the GIL. Created unbound: it binds to the loop that first waits on it.
        self.thread_slot = asyncio.Semaphore(1)
        self._timeout = aiohttp.ClientTimeout(total=settings.scrape_timeout)
        # Trusted plain-HTTP scrapes; idle connections kept for reuse, a few per concurrent scrape.
        self.http = ScrapeClient(idle_limit=4 * settings.max_concurrent_scrapes)
        self._schedule: Schedule[AgentState] | None = None
        self._scheduler: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._wake_at = float("inf")
        self.sampler: "SystemSampler | None" = None  # psutil readings of this pod, set by the app
        # Thousands of agents must not fire at once: the first scrape waits a random share of the
        # interval. The course's API scrapes at once instead (spread_start=False).
        self._spread_start = spread_start
        # Samples added to every successful scrape of an agent (the course's per-agent psutil readings).
        self.local_samples: Callable[[str, float], list[Sample]] | None = None

    # --- the seed's API -----------------------------------------------------------------

    def get_system_overview(self) -> dict[str, object]:
        """The course's system overview document (see reports.system_overview)."""
        return system_overview(self, self.sampler)

    def generate_performance_report(self, hours: float = 1.0) -> dict[str, object]:
        """The course's performance report over the last `hours` (see reports.performance_report)."""
        return performance_report(self, hours)

    def add_rule(self, rule: AlertRuleSpec) -> bool:
        """Add a rule, or replace the one with its rule_id (whose alerts are resolved); True if replaced."""
        replaced = self.rules.remove(rule.rule_id) is not None
        if replaced:
            self.alerts.forget_rule(rule.rule_id, self._clock())
        self.rules.add(rule)
        return replaced

    # --- registration -------------------------------------------------------------------

    def check_registration(self, metrics_endpoint: str, health_endpoint: str | None = None) -> None:
        """Raise TargetRefused (naming the field) unless an API client may register these endpoints."""
        self.targets.check_url(metrics_endpoint, "metrics_endpoint")
        if health_endpoint:
            self.targets.check_url(health_endpoint, "health_endpoint")

    @property
    def scraping(self) -> bool:
        """The service scrapes its agents (source: scrape), rather than receiving Prometheus' remote-write."""
        return self.settings.source == "scrape"

    def clock(self) -> float:
        return self._clock()

    def sample_window(self, now: float) -> tuple[float, float]:
        """The oldest and latest timestamps a sample may carry at `now` (max_sample_age, max_sample_future)."""
        return now - self.settings.max_sample_age, now + self.settings.max_sample_future

    def count_out_of_bounds(self, source: str, old: bool, count: int = 1) -> str:
        """Count samples dropped for their timestamp; the reason (too_old, too_far_in_future)."""
        reason = "too_old" if old else "too_far_in_future"
        self.out_of_bounds[(source, reason)] = self.out_of_bounds.get((source, reason), 0) + count
        return reason

    def in_window(self, samples: list[Sample], now: float, source: str) -> list[Sample]:
        """`samples` without those whose own timestamp lies outside sample_window(now) (counted), as
        Prometheus drops out-of-bounds samples and keeps the rest of the scrape."""
        oldest, latest = self.sample_window(now)
        kept = [sample for sample in samples if oldest <= sample.timestamp <= latest]
        if len(kept) < len(samples):  # rare: only samples with their own timestamps can be outside
            too_old = sum(1 for sample in samples if sample.timestamp < oldest)
            if too_old:
                self.count_out_of_bounds(source, True, too_old)
            if len(samples) - len(kept) - too_old:
                self.count_out_of_bounds(source, False, len(samples) - len(kept) - too_old)
        return kept

    def ensure_remote_agents(self, namespaces: dict[str, str], infos: dict[str, dict[str, str]],
                             trusted: bool) -> set[str]:
        """Register the agents a remote-write names that are new (never scraped here) and bind each agent not
        bound yet to its namespace (`namespaces`: agent id -> the namespace label of its series): a claim when
        a namespace's own token wrote them, a binding when a trusted source did (see monitoring/ownership.py);
        the ids refused at the agent limit."""
        refused = set()
        for agent_id in sorted(namespaces.keys() - self.agents.keys()):
            try:
                info = {key: value for key, value in infos.get(agent_id, {}).items() if key in ("namespace", "pod")}
                self.register(agent_id, "prometheus-remote-write", info=info, source=REMOTE_WRITE_SOURCE,
                              check=False)
            except RegistrationError:
                refused.add(agent_id)
        for agent_id, namespace in namespaces.items():
            if agent_id not in refused:
                self.ownership.bind(agent_id, namespace, trusted)
        return refused

    def agent_namespaces(self, agent: str) -> set[str]:
        """The namespaces `agent` belongs to: those discovery sees its pods in, else the `namespace` its
        registration (settings or API) gives in its info, else the one remote-write bound (or a namespace's
        token claimed) it to; empty when none claims it."""
        seen = self._discovered(agent)
        if seen:
            return seen
        state = self.agents.get(agent)
        if state is not None and state.source in (STATIC_SOURCE, API_SOURCE):
            declared = state.info.get("namespace")
            return {declared} if declared else set()
        owner = self.ownership.owner(agent)
        return {owner} if owner is not None else set()

    def trusted_namespaces(self, agent: str) -> set[str]:
        """agent_namespaces() without a namespace token's claim: what a trusted writer must agree with."""
        seen = self._discovered(agent)
        if seen:
            return seen
        owner = self.ownership.owner(agent)
        return {owner} if owner is not None and not self.ownership.is_claim(agent) else set()

    def write_refusal(self, agent_id: str, namespace: str) -> tuple[str, str] | None:
        """Why a namespace's own ingestion token may not write `agent_id`'s series, as (counted reason, message),
        or None (it may: the agent is its namespace's, or nobody's yet and it claims it)."""
        state = self.agents.get(agent_id)
        if state is not None and state.source in (STATIC_SOURCE, API_SOURCE):
            where = "the settings (agents:)" if state.source == STATIC_SOURCE else "the API"
            return "registered_agent", (f"agent {agent_id!r} is registered from {where}: only Prometheus' token "
                                        f"(role prometheus-remote-write) or the admin token writes its series")
        owners = self.agent_namespaces(agent_id)
        if owners and namespace not in owners:
            return "agent_of_another_namespace", (f"agent {agent_id!r} belongs to namespace "
                                                  f"{', '.join(sorted(owners))}; this token writes only namespace "
                                                  f"{namespace!r}")
        return None

    def override_claim(self, agent_id: str, namespace: str) -> None:
        """A trusted source puts `agent_id` in `namespace`: a namespace token's claim on it for another namespace
        ends, and what that token wrote for it (series, heartbeats, alerts: possibly forged) goes with the
        claimant's share of its namespace's usage."""
        claimant = self.ownership.owner(agent_id)
        if claimant is None or claimant == namespace or not self.ownership.is_claim(agent_id):
            return
        log.warning("agent %s was claimed by namespace %s's token; a trusted source puts it in %s: the claim and "
                    "what it wrote are dropped", agent_id, claimant, namespace)
        self.ownership.forget(agent_id)
        state = self.agents.get(agent_id)
        if state is not None and state.source == REMOTE_WRITE_SOURCE:  # claims are made only on these
            del self.agents[agent_id]  # never scraped: no task to stop
            self.store.forget(agent_id)
            self.alerts.forget_agent(agent_id, self._clock())

    def observe_up(self, agent_id: str, success: bool, stale: bool, timestamp: float) -> None:
        """Prometheus' `up` for an agent, as if this service had scraped it: 1 succeeded, 0 or a staleness
        marker (the target is gone) failed."""
        state = self.agents.get(agent_id)
        if state is None:
            return
        if success and not stale:
            self._succeeded(state, min(timestamp, self._clock()))
        else:
            self._failed(state, "target gone from Prometheus (stale)" if stale else "Prometheus' scrape failed (up 0)",
                         0.0)

    def register(self, agent_id: str, metrics_endpoint: str, health_endpoint: str | None = None,
                 info: dict[str, str] | None = None, source: str = API_SOURCE, check: bool = True) -> AgentState:
        """Add (or replace) an agent and, once running, start its scrape schedule.

        Agents from the API (`source="api"`) must pass the target policy: TargetRefused otherwise.
        `check=False` skips that check here (a restored registration that passed it once, whose pod
        discovery may not have seen yet); every scrape of an API agent is still checked.
        """
        if source == API_SOURCE and check:
            self.check_registration(metrics_endpoint, health_endpoint)
        if source == DISCOVERY_SOURCE and info and info.get("namespace"):
            # Discovery is trusted: it closes claims on the pod's id and on its agent id in other namespaces.
            for named in {agent_id, info.get("agent") or agent_id}:
                self.override_claim(named, info["namespace"])
        if agent_id not in self.agents and len(self.agents) >= self.settings.max_agents:
            raise RegistrationError(f"agent limit reached ({self.settings.max_agents}); raise max_agents")
        previous = self.agents.get(agent_id)
        if previous is not None and previous.task is not None:
            previous.task.cancel()
        state = AgentState(agent_id, metrics_endpoint, health_endpoint, dict(info or {}), source, self._clock())
        if previous is not None:
            self._index_namespace(previous, -1)
        self.agents[agent_id] = state
        self._index_namespace(state, +1)
        if self._schedule is not None:
            if self._schedule.add(state, asyncio.get_running_loop().time()) < self._wake_at:
                self._wake_scheduler()
        return state

    async def deregister(self, agent_id: str) -> bool:
        """Stop an agent's schedule, resolve its alerts and free its memory."""
        state = self.agents.pop(agent_id, None)
        if state is None:
            return False
        self._index_namespace(state, -1)
        self.ownership.forget(agent_id)
        if state.task is not None:
            state.task.cancel()
            await asyncio.gather(state.task, return_exceptions=True)
        self.store.forget(agent_id)
        self.alerts.forget_agent(agent_id, self._clock())
        return True

    def namespaces_of(self, agent: str) -> set[str]:
        """The namespaces discovery sees pods of `agent` (its agent-id label) in."""
        return set(self._namespaces.get(agent, ()))

    def _discovered(self, agent: str) -> set[str]:
        """namespaces_of(agent), or the namespace of the discovered pod whose id `agent` is."""
        seen = self.namespaces_of(agent)
        state = self.agents.get(agent)
        if not seen and state is not None and state.source == DISCOVERY_SOURCE and state.info.get("namespace"):
            seen = {state.info["namespace"]}
        return seen

    def _index_namespace(self, state: AgentState, change: int) -> None:
        agent, namespace = state.info.get("agent"), state.info.get("namespace")
        if state.source != DISCOVERY_SOURCE or not agent or not namespace:
            return
        counts = self._namespaces.setdefault(agent, {})
        counts[namespace] = counts.get(namespace, 0) + change
        if counts[namespace] <= 0:
            del counts[namespace]
            if not counts:
                del self._namespaces[agent]

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Schedule every agent registered so far (later ones are scheduled on registration)."""
        if not self.scraping:  # remote_write: Prometheus scrapes and feeds process() and observe_up()
            return
        if self._scheduler is not None and not self._scheduler.done():
            return  # running (a scheduler done without stop() belonged to an event loop that ended)
        self._schedule = Schedule(self.settings.collection_interval, self.settings.collection_jitter,
                                  self._spread_start)
        now = asyncio.get_running_loop().time()
        for state in self.agents.values():
            self._schedule.add(state, now)
        self._scheduler = asyncio.create_task(self._run_schedule(self._schedule), name="scrape schedule")

    async def stop(self) -> None:
        scheduler, self._scheduler, self._schedule = self._scheduler, None, None
        tasks = [state.task for state in self.agents.values() if state.task is not None]
        if scheduler is not None:
            tasks.append(scheduler)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for state in self.agents.values():
            state.task = None
        self.http.close()

    async def _run_schedule(self, schedule: Schedule[AgentState]) -> None:
        """Start the scrapes that are due, then sleep until the next is (at least one batch period)."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                now = loop.time()
                for state, late in schedule.pop_due(now, self._is_registered):
                    self.stats.lags.append(late)
                    if state.task is None or state.task.done():
                        state.task = loop.create_task(self._scrape_logged(state))
                    # else the last slot's scrape still runs (a slow target): this slot is skipped
                due = schedule.next_due()
                self._wake_at = max(due if due is not None else now + 3600.0, now + schedule.batch)
                self._wake = wake = loop.create_future()
                timer = loop.call_at(self._wake_at, _resolve, wake)
                try:
                    await wake
                finally:
                    timer.cancel()
        finally:
            self._wake_at = float("inf")
            self.http.close()  # course code never stops the collector: asyncio.run() cancels this task

    def _wake_scheduler(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _is_registered(self, state: AgentState) -> bool:
        return self.agents.get(state.agent_id) is state

    async def _scrape_logged(self, state: AgentState) -> None:
        try:
            await self.scrape_once(state)
        except Exception:  # a bug must not go unseen, nor stop the other agents' scrapes
            log.exception("scrape of %s failed unexpectedly", state.agent_id)

    # --- one scrape ---------------------------------------------------------------------

    async def scrape_once(self, state: AgentState) -> None:
        """Scrape one agent now, record success or failure, process its samples."""
        async with self._semaphore:
            started = time.perf_counter()
            guarded = state.source == API_SOURCE
            try:
                body, content_type = await self._fetch(state.metrics_endpoint, guarded)
                if state.health_endpoint:
                    await self._fetch(state.health_endpoint, guarded)
                now = self._clock()
                if len(body) <= INLINE_SCRAPE_PARSE_BYTES:
                    samples = parse_metrics(body, content_type, state.agent_id, now, self.body_limits,
                                            state.body_shape)
                else:  # tens of ms of parsing: in a thread, so the event loop (probes, API) keeps answering;
                    async with self.thread_slot:  # shared with OTLP decoding: one thread at a time
                        samples = await asyncio.to_thread(parse_metrics, body, content_type, state.agent_id, now,
                                                          self.body_limits, state.body_shape)
            except (ScrapeError, ParseError, TargetRefused, aiohttp.ClientError, TimeoutError, OSError,
                    ValueError) as error:
                # Details (which may hold what the target sent) go to the debug log only.
                log.debug("scrape of %s failed: %r", state.agent_id, error)
                self._count_refusal(error)
                self._failed(state, self._reason(error), time.perf_counter() - started)
                return
        # Microseconds are plenty, and a short number is written three times faster on /metrics.
        state.last_scrape_duration = round(time.perf_counter() - started, 6)
        self._succeeded(state, now)
        samples = self.in_window(samples, now, SCRAPE_SOURCE)
        if self.local_samples is not None:
            samples += self.local_samples(state.agent_id, now)
        self.process(samples, now)
        refresh_penalty(self, state)

    def _count_refusal(self, error: BaseException) -> None:
        """Count a body refused whole for its samples or labels (monitoring_bodies_refused_total)."""
        if isinstance(error, LabelLimitError):
            self.refusals.add(SCRAPE_SOURCE, error.reason)
        elif isinstance(error, SampleLimitError):
            self.refusals.add(SCRAPE_SOURCE, "sample_limit")
        elif isinstance(error, BodyTooLarge):
            self.refusals.add(SCRAPE_SOURCE, BODY_SIZE)

    def _reason(self, error: BaseException) -> str:
        """The fixed text recorded for a failed scrape: never the target's words."""
        if isinstance(error, ScrapeError):
            return str(error)  # raised by _fetch with fixed texts only
        if isinstance(error, SampleLimitError):
            return f"over the {self.settings.max_samples_per_scrape}-sample limit"
        if isinstance(error, LabelLimitError):
            return f"labels over the limits ({error.reason})"  # the reason is one of a few fixed words
        if isinstance(error, NumberError):
            return "invalid number"
        if isinstance(error, ParseError):
            return "not a metrics body"
        if isinstance(error, TargetRefused):
            return "address not allowed"
        if isinstance(error, (ValueError, aiohttp.InvalidURL)):
            return "invalid URL"
        if isinstance(error, TimeoutError):  # before OSError: TimeoutError is one
            return "timed out"
        if isinstance(error, socket.gaierror):  # the lean client's connect (aiohttp wraps these below)
            return "name not resolved"
        if isinstance(error, ConnectionRefusedError):
            return "connection refused"
        if isinstance(error, aiohttp.ClientConnectorError):
            if isinstance(error.os_error, AddressNotAllowed):
                return "address not allowed"
            if isinstance(error, aiohttp.ClientConnectorDNSError):
                return "name not resolved"
            if isinstance(error.os_error, ConnectionRefusedError):
                return "connection refused"
        return "connection failed"

    async def _fetch(self, url: str, guarded: bool = False) -> tuple[bytes, str]:
        limit = self.settings.max_response_bytes
        target = URL(url)
        if target.user is not None or target.password is not None:
            target = target.with_user(None)  # never send credentials written into a URL
        if guarded:
            self.targets.check_url(url)  # IP literals never reach the resolver; known pods change
            session = self.guarded_session
            if session is None:
                raise ScrapeError("address not allowed")  # no session enforces the policy: fail closed
        elif target.scheme == "http":
            try:
                return await self.http.get(target, _ACCEPT, limit, self.settings.scrape_timeout)
            except ScrapeHTTPError as error:
                raise (BodyTooLarge if isinstance(error, BodyTooLargeError) else ScrapeError)(str(error)) from None
        else:
            session = self.session
        assert session is not None, "Collector.session must be set before scraping"
        async with session.get(target, timeout=self._timeout, headers={"Accept": _ACCEPT},
                               allow_redirects=False) as response:
            if 300 <= response.status < 400:
                raise ScrapeError("redirect refused")
            if response.status != 200:
                raise ScrapeError(f"HTTP {int(response.status)}")
            if response.content_length is not None and response.content_length > limit:
                raise BodyTooLarge(f"body over the {limit}-byte limit")
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > limit:
                    raise BodyTooLarge(f"body over the {limit}-byte limit")
            return bytes(body), response.content_type

    def _succeeded(self, state: AgentState, now: float) -> None:
        state.scrapes += 1
        state.last_success = now
        state.last_error = None
        state.consecutive_failures = 0
        state.status = AgentStatus.ACTIVE
        self.stats.scrapes_ok += 1
        self.alerts.agent_up(state.agent_id, now)

    def _failed(self, state: AgentState, reason: str, duration: float) -> None:
        state.scrapes += 1
        state.failures += 1
        state.consecutive_failures += 1
        state.last_error = reason
        state.last_scrape_duration = round(duration, 6)
        self.stats.scrapes_failed += 1
        if state.consecutive_failures >= self.settings.health.failures_before_alert:
            if state.status is not AgentStatus.LOST:
                state.status = AgentStatus.UNHEALTHY
            self.alerts.agent_down(state.agent_id, reason, self._clock())

    # --- processing ---------------------------------------------------------------------

    def process(self, samples: list[Sample], now: float) -> None:
        """Store samples and check each against the rules that can match it."""
        self.stats.samples += len(samples)
        for sample in samples:
            window = self.store.add(sample)
            if window is None:
                continue
            for rule in self.rules.for_sample(sample.name, sample.agent_id):
                evaluation = evaluate(rule, window)
                if evaluation is not None:
                    self.alerts.observe(evaluation, sample.agent_id, sample.name, sample.labels, now)

    def check_heartbeats(self) -> None:
        """Move agents that stopped answering to unhealthy, then lost."""
        now = self._clock()
        health = self.settings.health
        for state in self.agents.values():
            silent_for = now - (state.last_success if state.last_success is not None else state.registered_at)
            if silent_for > health.lost_after:
                state.status = AgentStatus.LOST
            elif silent_for > health.unhealthy_after:
                state.status = AgentStatus.UNHEALTHY


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
