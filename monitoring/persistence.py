"""State kept across restarts: API registrations, API alert rules and active alerts.

What the settings hold (static agents and rules) is rebuilt from them at every start, and
discovered agents come back through discovery, so only what was changed through the API and
the alerts firing at shutdown are saved: as one versioned JSON document in a file (local
runs) or in one ConfigMap (in the cluster).

Start-up calls `load` before the collector starts; `keep` then saves the document when it
changed (at most once per interval) and once more when it is cancelled at shutdown. A
document that can't be read as version 1 is logged, kept aside for the operator (`*.corrupt`)
and ignored: a bad file never stops the service. Within a readable document each record is
checked on its own, ranges included (an alert started between 2000-01-01 and a few minutes from
now, bounded lengths and counts): a bad one is set aside (logged, escaped, and counted on
/metrics), the good ones are restored, and the document as found is kept aside too.

Restored alerts are not reported again as new: their receivers heard of them when they fired
and Alertmanager, which the resend loop keeps informed, de-duplicates by labels. They resolve
(and that is reported) as usual when their condition clears.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from .alerts import Alert
from .collector import Collector, RegistrationError
from .targets import NotDiscoveredYet
from .settings import AGENT_DOWN_RULE, AlertRuleSpec, MonitoringSettings, Severity, StaticAgent

if TYPE_CHECKING:
    from kubernetes_asyncio import client

log = logging.getLogger(__name__)

VERSION = 1
CONFIG_MAP_KEY = "state.json"
CONFIG_MAP_MAX_BYTES = 900 * 1024  # a ConfigMap holds at most 1 MiB, metadata included
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
API_TIMEOUT = 10.0  # seconds per Kubernetes API call
FINAL_SAVE_TIMEOUT = 10.0  # seconds the save at shutdown may take
ORPHANS_AFTER = 60.0  # seconds after start-up until restored alerts nobody can clear are resolved
MAX_SAVED_ALERTS = 1_000
MAX_LABELS, MAX_TEXT, MAX_DESCRIPTION = 32, 256, 1_024  # an alert larger than this is not kept
MAX_STORED_AGENTS = MAX_STORED_RULES = 1_000_000  # far above what any settings register; a bound on reading
EARLIEST = 946_684_800.0  # 2000-01-01T00:00:00Z: no alert of this service started before
MAX_FUTURE_SECONDS = 300.0  # clocks (of two pods, or across a restart) disagree by less than this
RECORD_KINDS = ("agent", "rule", "alert")
_SEVERITY_RANK = {Severity.EMERGENCY: 0, Severity.CRITICAL: 1, Severity.WARNING: 2, Severity.INFO: 3}


class StoreError(Exception):
    """The store could not be read or written (the message says why); worth trying again later."""


class StateTooLarge(StoreError):
    """The document is over the store's size limit; it was not saved."""


class StateError(ValueError):
    """A stored document is not valid state of a known version."""


@dataclass
class StoreStats:
    """What a store did, for logs and /metrics."""

    saves: int = 0
    failures: int = 0  # saves that raised StoreError (other than too large)
    refused: int = 0  # saves refused because the document was over the size limit
    corrupt: int = 0  # documents set aside
    # records set aside from documents that were otherwise restored, by kind (agent, rule, alert)
    records_set_aside: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RECORD_KINDS, 0))


class StateStore(Protocol):
    """Where the state document is kept: its text, as one unit."""

    stats: StoreStats

    async def load(self) -> str | None:
        """The stored text; None when nothing is stored. Raises StoreError."""
        ...

    async def save(self, text: str) -> None:
        """Replace the stored text. Raises StoreError (StateTooLarge when over the size limit)."""
        ...

    async def set_aside(self, text: str, reason: str) -> None:
        """Keep a document that could not be used where the operator can find it. Raises StoreError."""
        ...


# --- stores ------------------------------------------------------------------------------------------


class FileStore:
    """The document in a local JSON file, replaced atomically (temp file + os.replace), mode 0600."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.stats = StoreStats()

    @property
    def corrupt_path(self) -> Path:
        return self.path.with_name(self.path.name + ".corrupt")

    async def load(self) -> str | None:
        try:
            data = await asyncio.to_thread(self.path.read_bytes)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreError(f"cannot read {self.path}: {error}") from None
        return data.decode("utf-8", errors="replace")  # bytes that aren't UTF-8 fail as JSON: set aside

    async def save(self, text: str) -> None:
        try:
            await asyncio.to_thread(self._write, text)
        except OSError as error:
            self.stats.failures += 1
            raise StoreError(f"cannot write {self.path}: {error}") from None
        self.stats.saves += 1

    def _write(self, text: str) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp creates the file with mode 0600 in the same directory, so os.replace is atomic.
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    async def set_aside(self, text: str, reason: str) -> None:
        try:
            await asyncio.to_thread(os.replace, self.path, self.corrupt_path)
        except OSError as error:
            raise StoreError(f"cannot move {self.path} to {self.corrupt_path}: {error}") from None
        log.error("persistence: %s kept as %s (%s)", self.path, self.corrupt_path, reason)


class ConfigMapStore:
    """The document under one key of one ConfigMap, read and replaced through the Kubernetes API.

    The ConfigMap is created on the first save; a document over `max_bytes` is refused (logged and
    counted) rather than sent, since the API server rejects ConfigMaps over 1 MiB. A bad document
    is copied to the ConfigMap `<name>-corrupt`. In-cluster service-account auth unless
    `configuration` is given; the namespace defaults to the pod's own.
    """

    def __init__(self, namespace: str | None, name: str, configuration: client.Configuration | None = None,
                 max_bytes: int = CONFIG_MAP_MAX_BYTES) -> None:
        self.name = name
        self.stats = StoreStats()
        self._namespace = namespace
        self._configuration = configuration
        self._max_bytes = max_bytes

    @property
    def corrupt_name(self) -> str:
        return f"{self.name}-corrupt"

    def _connect(self) -> tuple[client.Configuration, str]:
        # Resolved on first use, so a misconfigured store is a logged StoreError, not a crash at start-up.
        # kubernetes_asyncio takes ~0.6 s to import: only when a ConfigMap is used.
        from kubernetes_asyncio import client, config
        from kubernetes_asyncio.config.config_exception import ConfigException

        try:
            if self._configuration is None:
                configuration = client.Configuration()
                config.load_incluster_config(client_configuration=configuration)
                self._configuration = configuration
            if self._namespace is None:
                self._namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
        except (ConfigException, OSError) as error:
            raise StoreError(f"no Kubernetes API for ConfigMap {self.name} (set persistence.namespace, or "
                             f"run in the cluster): {error}") from None
        return self._configuration, self._namespace

    async def load(self) -> str | None:
        from kubernetes_asyncio import client
        from kubernetes_asyncio.client.exceptions import ApiException

        configuration, namespace = self._connect()
        try:
            async with client.ApiClient(configuration) as api:
                config_map = await client.CoreV1Api(api).read_namespaced_config_map(
                    self.name, namespace, _request_timeout=API_TIMEOUT)
        except ApiException as error:
            if error.status == 404:
                return None
            raise StoreError(f"cannot read ConfigMap {namespace}/{self.name}: {error.status} {error.reason}") \
                from None
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise StoreError(f"cannot read ConfigMap {namespace}/{self.name}: {error!r}") from None
        return (config_map.data or {}).get(CONFIG_MAP_KEY)

    async def save(self, text: str) -> None:
        size = len(text.encode("utf-8"))
        if size > self._max_bytes:
            self.stats.refused += 1
            log.warning("persistence: state of %d bytes not saved to ConfigMap %s: over the %d-byte limit "
                        "(fewer API registrations or alerts, or use persistence.path)", size, self.name,
                        self._max_bytes)
            raise StateTooLarge(f"{size} bytes, over the {self._max_bytes}-byte limit")
        try:
            await self._put(self.name, {CONFIG_MAP_KEY: text}, {})
        except StoreError:
            self.stats.failures += 1
            raise
        self.stats.saves += 1

    async def set_aside(self, text: str, reason: str) -> None:
        annotations = {"monitoring/reason": reason[:1024], "monitoring/set-aside-at": str(int(time.time()))}
        await self._put(self.corrupt_name, {CONFIG_MAP_KEY: text}, annotations)
        log.error("persistence: ConfigMap %s kept as %s (%s)", self.name, self.corrupt_name, reason)

    async def _put(self, name: str, data: dict[str, str], annotations: dict[str, str]) -> None:
        """Replace ConfigMap `name`, creating it when missing."""
        from kubernetes_asyncio import client
        from kubernetes_asyncio.client.exceptions import ApiException

        configuration, namespace = self._connect()
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace, annotations=annotations or None,
                                         labels={"app.kubernetes.io/component": "monitoring-state"}),
            data=data)
        try:
            async with client.ApiClient(configuration) as api:
                core = client.CoreV1Api(api)
                try:
                    await core.replace_namespaced_config_map(name, namespace, body, _request_timeout=API_TIMEOUT)
                except ApiException as error:
                    if error.status != 404:
                        raise
                    await core.create_namespaced_config_map(namespace, body, _request_timeout=API_TIMEOUT)
        except ApiException as error:
            raise StoreError(f"cannot write ConfigMap {namespace}/{name}: {error.status} {error.reason}") from None
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise StoreError(f"cannot write ConfigMap {namespace}/{name}: {error!r}") from None


def store_from_settings(settings: MonitoringSettings) -> StateStore | None:
    """The store the settings name: the file when `path` is set, else the ConfigMap, else None."""
    persistence = settings.persistence
    if persistence.path is not None:
        if persistence.config_map is not None:
            log.warning("persistence: both path and config_map are set; using the file %s", persistence.path)
        return FileStore(persistence.path)
    if persistence.config_map is not None:
        return ConfigMapStore(persistence.namespace, persistence.config_map)
    return None


# --- the document ------------------------------------------------------------------------------------


Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]


class AlertRecord(BaseModel):
    """An active alert as stored: its identity (rule, agent, metric, labels) and what it showed."""

    model_config = ConfigDict(extra="forbid")

    rule_id: str = Field(min_length=1, max_length=128)
    agent_id: str = Field(min_length=1, max_length=253)
    metric: Text = ""
    # Pairs, not an object: their order is part of the alert's identity (its key).
    labels: list[tuple[Text, Text]] = Field(default_factory=list, max_length=MAX_LABELS)
    severity: Severity
    description: str = Field("", max_length=MAX_DESCRIPTION)
    value: float = Field(allow_inf_nan=False)
    started_at: float = Field(allow_inf_nan=False)

    @field_validator("started_at")
    @classmethod
    def _plausible(cls, value: float) -> float:
        # A finite but absurd time (1e300, -1e15) can't be shown as a date: every reader would fail on it.
        if not EARLIEST <= value <= time.time() + MAX_FUTURE_SECONDS:
            raise ValueError(f"must be a Unix time from 2000-01-01 to {MAX_FUTURE_SECONDS:.0f} s from now "
                             f"(got {value:g})")
        return value


@dataclass(frozen=True)
class SetAside:
    """A record of a document that was not restored, and why."""

    kind: str  # agent, rule or alert
    index: int
    identity: str  # what names it (agent and rule ids), from the record as found
    reason: str


class _Envelope(BaseModel):
    """The document around its records, which are checked one by one."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    agents: list[Any] = Field(default_factory=list, max_length=MAX_STORED_AGENTS)
    rules: list[Any] = Field(default_factory=list, max_length=MAX_STORED_RULES)
    alerts: list[Any] = Field(default_factory=list, max_length=MAX_SAVED_ALERTS)


class StateDocument(BaseModel):
    """Version 1 of the saved state: its valid records, and the ones set aside."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    version: Literal[1]
    agents: list[StaticAgent] = Field(default_factory=list)
    rules: list[AlertRuleSpec] = Field(default_factory=list)
    alerts: list[AlertRecord] = Field(default_factory=list)
    set_aside: list[SetAside] = Field(default_factory=list)


def _keepable(alert: Alert) -> bool:
    """Alerts carry what agents expose (labels); ones too large to keep are left to fire again."""
    return (len(alert.labels) <= MAX_LABELS and all(len(key) <= MAX_TEXT and len(value) <= MAX_TEXT
                                                    for key, value in alert.labels)
            and len(alert.metric) <= MAX_TEXT and len(alert.description) <= MAX_DESCRIPTION
            and math.isfinite(alert.value))


def snapshot(collector: Collector, with_alerts: bool = True) -> dict[str, Any]:
    """The state worth keeping: API-registered agents, rules not from the settings, and (at most
    MAX_SAVED_ALERTS, most severe first) the active alerts small enough to keep."""
    static_rules = {rule.rule_id for rule in collector.settings.alert_rules}
    alerts = [alert for alert in collector.alerts.active.values() if with_alerts and _keepable(alert)]
    alerts = sorted(alerts, key=lambda alert: _SEVERITY_RANK[alert.severity])[:MAX_SAVED_ALERTS]
    return {
        "version": VERSION,
        "agents": [{"agent_id": state.agent_id, "metrics_endpoint": state.metrics_endpoint,
                    "health_endpoint": state.health_endpoint, "info": dict(state.info)}
                   for state in collector.agents.values() if state.source == "api"],
        "rules": [rule.model_dump(mode="json") for rule in collector.rules.all() if rule.rule_id not in static_rules],
        "alerts": [{"rule_id": alert.rule_id, "agent_id": alert.agent_id, "metric": alert.metric,
                    "labels": [list(pair) for pair in alert.labels], "severity": alert.severity.value,
                    "description": alert.description, "value": alert.value, "started_at": alert.started_at}
                   for alert in alerts],
    }


def parse(text: str) -> StateDocument:
    """The document in `text`; StateError when it is not JSON or not valid state of version 1."""
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise StateError(f"not JSON: {error}") from None
    if not isinstance(raw, dict):
        raise StateError("not a JSON object")
    return _validate(raw)


@dataclass
class Restored:
    """What `restore` put back, and what it had to leave out."""

    agents: int = 0
    rules: int = 0
    alerts: int = 0
    skipped: int = 0


def restore(collector: Collector, document: dict[str, Any] | StateDocument) -> Restored:
    """Re-register the agents (source "api"), re-add the rules, restore the active alerts (not notified).

    The whole document is validated first (StateError), so a bad one changes nothing; a bad record in
    it is set aside (logged) and the others restored. Call before the collector starts. Skipped (and
    logged): an agent the settings now define, one over
    `max_agents` or refused by the scrape-target policy (API agents pass it like any other), and
    an alert over `max_active_alerts`.
    """
    state = document if isinstance(document, StateDocument) else _validate(document)
    done = Restored(skipped=len(state.set_aside))
    for record in state.set_aside:  # logged escaped (monitoring/log_escaping.py): a record may say anything
        log.warning("persistence: %ss[%d] set aside (%s): %s", record.kind, record.index, record.identity,
                    record.reason)
    for agent in state.agents:
        existing = collector.agents.get(agent.agent_id)
        if existing is not None and existing.source != "api":  # as the API: settings and discovery win
            log.warning("persistence: agent %s not restored: it now comes from %s", agent.agent_id, existing.source)
            done.skipped += 1
            continue
        health = str(agent.health_endpoint) if agent.health_endpoint else None
        try:
            try:
                collector.register(agent.agent_id, str(agent.metrics_endpoint), health, agent.info, source="api")
            except NotDiscoveredYet:  # restored before discovery's first listing: every scrape is checked
                collector.register(agent.agent_id, str(agent.metrics_endpoint), health, agent.info, source="api",
                                   check=False)
            done.agents += 1
        except (RegistrationError, ValueError) as error:  # the agent limit, or the scrape-target policy
            log.warning("persistence: agent %s not restored: %s", agent.agent_id, error)
            done.skipped += 1
    from_settings = {rule.rule_id for rule in collector.settings.alert_rules}
    for rule in state.rules:
        known = any(existing.rule_id == rule.rule_id for existing in collector.rules.all())
        if rule.rule_id in from_settings or (not known and len(collector.rules.all())
                                             >= collector.settings.max_alert_rules):
            log.warning("persistence: rule %s not restored: %s", rule.rule_id,
                        "the settings define it" if rule.rule_id in from_settings else "max_alert_rules reached")
            done.skipped += 1
            continue
        collector.add_rule(rule)
        done.rules += 1
    for record in state.alerts:
        alert = Alert(record.rule_id, record.agent_id, record.severity, record.description, record.value,
                      record.started_at, tuple((key, value) for key, value in record.labels), metric=record.metric)
        if collector.alerts.restore(alert):
            done.alerts += 1
        else:
            done.skipped += 1
    return done


_RECORDS: tuple[tuple[str, str, type[BaseModel]], ...] = (
    ("agent", "agents", StaticAgent), ("rule", "rules", AlertRuleSpec), ("alert", "alerts", AlertRecord))


def _validate(document: dict[str, Any]) -> StateDocument:
    """The document's valid records, each checked on its own; StateError when the document itself is bad."""
    if document.get("version") != VERSION:
        raise StateError(f"unknown version {document.get('version')!r}; this service reads version {VERSION}")
    try:
        envelope = _Envelope.model_validate(document)
    except ValidationError as error:
        raise StateError(f"invalid document: {_problems(error)}") from None
    state = StateDocument(version=VERSION)
    for kind, key, model in _RECORDS:
        valid = getattr(state, key)
        for index, raw in enumerate(getattr(envelope, key)):
            try:
                valid.append(model.model_validate(raw))
            except ValidationError as error:
                state.set_aside.append(SetAside(kind, index, _identity(raw), _problems(error, limit=2)))
    return state


def _problems(error: ValidationError, limit: int = 5) -> str:
    return "; ".join(f"{'.'.join(str(part) for part in detail['loc']) or 'record'}: {detail['msg']}"
                     for detail in error.errors(include_url=False)[:limit])


def _identity(raw: Any) -> str:
    """What names a record (its agent and rule ids), shortened: for the log line about it."""
    if not isinstance(raw, dict):
        return f"a {type(raw).__name__}, not an object"
    names = [f"{key}={str(raw[key])[:100]!r}" for key in ("agent_id", "rule_id") if key in raw]
    return ", ".join(names) or "unnamed"


def resolve_orphans(collector: Collector) -> int:
    """Resolve active alerts of agents no longer registered or of rules that no longer exist.

    Nothing else would ever clear them: they come from a restore after the agent went away (or
    the rule left the settings). Returns how many agents and rules were affected.
    """
    now = time.time()
    rule_ids = {rule.rule_id for rule in collector.rules.all()} | {AGENT_DOWN_RULE}
    agents = {alert.agent_id for alert in collector.alerts.active.values() if alert.agent_id not in collector.agents}
    rules = {alert.rule_id for alert in collector.alerts.active.values() if alert.rule_id not in rule_ids}
    for agent_id in agents:
        collector.alerts.forget_agent(agent_id, now)
    for rule_id in rules:
        collector.alerts.forget_rule(rule_id, now)
    if agents or rules:
        log.info("persistence: resolved restored alerts of %d missing agents and %d missing rules",
                 len(agents), len(rules))
    return len(agents) + len(rules)


# --- start-up and the saving loop --------------------------------------------------------------------


async def load(collector: Collector, store: StateStore) -> bool:
    """Restore what `store` holds into `collector`; never raises (but CancelledError).

    True when the store could be read (nothing stored, restored, or a bad document set aside and
    ignored); False when it could not be read at all, in which case nothing may be saved over it yet.
    """
    try:
        text = await store.load()
    except StoreError as error:
        log.error("persistence: state not restored, will retry: %s", error)
        return False
    if text is None:
        log.info("persistence: no saved state")
        return True
    try:
        done = restore(collector, state := parse(text))
    except Exception as error:  # noqa: BLE001 (StateError, or a bug: either way start-up goes on)
        if isinstance(error, StateError):
            log.error("persistence: saved state ignored: %s", error)
        else:
            log.exception("persistence: saved state could not be restored; ignored")
        if await _keep_aside(store, text, str(error) or type(error).__name__):
            store.stats.corrupt += 1
        return True
    if state.set_aside:  # the good records are restored; the document as found is kept for the operator
        for record in state.set_aside:
            store.stats.records_set_aside[record.kind] = store.stats.records_set_aside.get(record.kind, 0) + 1
        first = state.set_aside[0]
        await _keep_aside(store, text, f"{len(state.set_aside)} records set aside, the first {first.kind}s"
                                       f"[{first.index}]: {first.reason}")
    log.info("persistence: restored %d agents, %d rules, %d active alerts (%d skipped)",
             done.agents, done.rules, done.alerts, done.skipped)
    return True


async def _keep_aside(store: StateStore, text: str, reason: str) -> bool:
    """Keep `text` where the operator finds it; False (logged) when the store can't."""
    try:
        await store.set_aside(text, reason)
    except StoreError as aside_error:
        log.error("persistence: could not keep the bad state aside: %s", aside_error)
        return False
    return True


def _serialize(document: dict[str, Any]) -> tuple[str, str]:
    """The text to save, and the fingerprint that decides whether to save it between shutdowns.

    The fingerprint leaves out alert values and descriptions, which change with every scrape of a
    firing series: a save per interval for them would be a write per second to the API server.
    They are saved with any other change and at shutdown.
    """
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    steady = {**document, "alerts": [{key: value for key, value in alert.items()
                                      if key not in ("value", "description")} for alert in document["alerts"]]}
    return text, json.dumps(steady, sort_keys=True, separators=(",", ":"))


async def keep(collector: Collector, store: StateStore, interval: float, *, loaded: bool = True,
               orphans_after: float = ORPHANS_AFTER) -> None:
    """Save the state when it changed, at most once per `interval`, and once more when cancelled.

    `loaded` is what `load` returned: while False, the store is read again each round (and
    restored) before anything is saved over it. After `orphans_after` seconds (time for discovery
    to find its pods again) restored alerts that nothing can clear are resolved.
    """
    loop = asyncio.get_running_loop()
    orphans_at: float | None = loop.time() + orphans_after
    saved_text: str | None = None
    tried: str | None = None  # fingerprint of the last document saved, or refused as too large
    refused_text: str | None = None

    async def save(final: bool) -> None:
        nonlocal saved_text, tried, refused_text
        text, fingerprint = _serialize(snapshot(collector))
        if text in (saved_text, refused_text) or (not final and fingerprint == tried):
            return
        try:
            await store.save(text)
        except StateTooLarge:
            # Logged and counted by the store; not tried again until the state changes. Registrations
            # and rules must not be lost to an alert storm: they are saved without the alerts.
            tried, refused_text = fingerprint, text
            with contextlib.suppress(StateTooLarge):
                await store.save(_serialize(snapshot(collector, with_alerts=False))[0])
            return
        saved_text, tried, refused_text = text, fingerprint, None

    try:
        while True:
            await asyncio.sleep(interval)
            if not loaded:
                loaded = await load(collector, store)
                if not loaded:
                    continue
            if orphans_at is not None and loop.time() >= orphans_at:
                resolve_orphans(collector)
                orphans_at = None
            try:
                await save(final=False)
            except StoreError as error:
                log.warning("persistence: state not saved, will retry: %s", error)
            except Exception:  # noqa: BLE001 (the loop must survive one bad round, as periodic.every)
                log.exception("persistence: state not saved")
    except asyncio.CancelledError:
        if loaded:
            try:
                async with asyncio.timeout(FINAL_SAVE_TIMEOUT):
                    await save(final=True)
            except (StoreError, TimeoutError) as error:
                log.error("persistence: final save failed; changes since the last save are lost: %r", error)
        raise
