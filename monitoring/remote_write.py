"""Prometheus remote-write in: `POST /api/v1/write` (snappy-compressed protobuf `WriteRequest`, remote-write
1.0), so Prometheus (sharded by the Prometheus Operator as it grows) scrapes the agents and the service
receives what it scraped, instead of scraping them a second time.

Series map to agents by a label (`remote_write.agent_label`, default `agent_id`, which the ServiceMonitor's
relabeling sets); an agent is registered the first time it appears (within `max_agents`) and is never
scraped by the service. What a scrape would tell, Prometheus' `up` tells: 1 is a successful scrape,
0 a failed one, and a staleness marker on `up` (the target is gone) a failed one too. Every other sample
feeds the same store, rules, alerts and health score as a scrape.

Refused whole (a 4xx, nothing stored, counted): a body over `max_request_bytes` compressed or
`max_decompressed_bytes` expanded (checked from snappy's header before decompressing), over
`max_series_per_request` series, `max_samples_per_request` samples or `max_label_bytes_per_request` bytes of
labels, and malformed bodies.

Left out, one series at a time (counted in `monitoring_remote_write_rejected_total{reason}`), as Prometheus' own
receiver leaves out out-of-bounds samples: a series beyond the label limits (`label_limit` and
`max_labels_per_series`, every label counted, `__name__` and the target labels too; `label_name_length_limit`,
`label_value_length_limit`) or whose agent label is no agent id (both also
`monitoring_bodies_refused_total{source="remote_write",reason}`), and a series with a sample stamped more than
`max_sample_age` in the past or `max_sample_future` ahead (its samples also
`monitoring_samples_out_of_bounds_total{source="remote_write"}`). The rest is stored and the answer is a 400
naming what was left out (below). A series' labels are counted before any is read; in a body over
COUNT_NESTED_ABOVE_BYTES, a series over the label count is cut out of the wire before protobuf parses the rest.

Credentials and namespaces (monitoring/ownership.py): the admin token, or an ingestion token. An agent
belongs to one namespace: the one discovery sees it in, else the one the `namespace` label of its series bound
it to. A namespace's token (`mi2.ns.<namespace>.…`) may write only series of its namespace, for agents of its
namespace or nobody's yet (which it then only claims), never for an agent registered from the settings or the
API: anything else refuses the request (403, counted). The token of the role `prometheus-remote-write`
(`python -m monitoring.credentials --role prometheus-remote-write`) is Prometheus', for every namespace, and
trusted like the admin token and discovery: its namespace label overrides a namespace token's claim on an
agent (what the claimant wrote for it is dropped), and its series for an agent bound by a trusted source to
another namespace are dropped and counted.

Room: new agents and series beyond a namespace's quota (`max_agents_per_namespace`,
`max_series_per_namespace`, `max_bytes_per_namespace`, by default a quarter of `max_series_bytes`), beyond
`max_agents`, an agent's caps (`max_series_per_agent`, `max_series_bytes_per_agent`) or the store's global
budget (`max_series_bytes`) are left out here and counted, never dropped silently by the store; a new series is
charged to its namespace (with the store's own byte estimate) once the store has made its window, so a series
of staleness markers only costs nothing. As Prometheus' own receiver does, what fits is stored and the answer
is a 400 naming what was left out and why (Prometheus does not resend a 400), so one series' or one
namespace's trouble costs the others nothing and shows.

A request (at most `max_samples_per_request` samples) is taken in slices of `SLICE` units of work (a series,
a sample) that yield to the event loop in between, one request at a time (its checks and its changes see the
same state), so the loop never stalls on a big one.
"""

from __future__ import annotations

import asyncio
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import cramjam
from aiohttp import web
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from .collector import REMOTE_WRITE_SOURCE, Collector
from .credentials import PROMETHEUS_SCOPE
from .http_bodies import read_body
from .label_limits import BODY_SIZE, LabelLimits
from .proto_wire import Malformed, fields
from .parsing import Sample
from .remote_write_stats import RemoteWriteStats
from .settings import MonitoringSettings, agent_id_problem
from .state import COLLECTOR, INGEST_NAMESPACE, SETTINGS
from .tracing.cycle_gc import paused

STALE_NAN = 0x7FF0000000000002                # Prometheus' staleness marker
_UP = "up"
SLICE = 2_000  # series and samples checked or stored between two yields to the event loop (about 10 ms)
# Up to this size (expanded) a body's nested counts are not read before parsing it: protobuf builds its at most
# 500,000 messages in about 15 ms.
COUNT_NESTED_ABOVE_BYTES = 2**20
OWNERSHIP = "agent_of_another_namespace"
# What is left out for lack of room, and the setting that makes room: the answer names both.
ROOM = {"namespace_agent_quota": "remote_write.max_agents_per_namespace",
        "namespace_series_quota": "remote_write.max_series_per_namespace",
        "namespace_bytes_quota": "remote_write.max_bytes_per_namespace", "agent_limit": "max_agents",
        "agent_series_limit": "max_series_per_agent", "agent_series_bytes": "max_series_bytes_per_agent",
        "series_budget": "max_series_bytes"}
# What one series may be left out for, and what fixes it: the answer names both.
PROBLEMS = {"label_limit": "label_limit and remote_write.max_labels_per_series, all labels counted",
            "label_name_length": "label_name_length_limit", "label_value_length": "label_value_length_limit",
            "agent_id": "its remote_write.agent_label label is no agent id: at most 253 letters, digits, _ . : / -", "too_old": "max_sample_age: check the sender's clock",
            "too_far_in_future": "max_sample_future: check the sender's clock"}
LEFT_OUT = {**ROOM, **PROBLEMS}


def _write_request_class() -> Any:
    """prometheus.WriteRequest and its parts (prompb/remote.proto, types.proto: the fields remote-write 1.0
    sends that are used here), built with protobuf's own descriptors."""
    file = descriptor_pb2.FileDescriptorProto(name="monitoring_prompb.proto", package="monitoring_prompb",
                                              syntax="proto3")
    types = descriptor_pb2.FieldDescriptorProto

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        proto = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            entry = proto.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                entry.type_name = f".monitoring_prompb.{type_name}"

    optional, repeated = types.LABEL_OPTIONAL, types.LABEL_REPEATED
    message("Label", ("name", 1, types.TYPE_STRING, optional, ""), ("value", 2, types.TYPE_STRING, optional, ""))
    message("Sample", ("value", 1, types.TYPE_DOUBLE, optional, ""), ("timestamp", 2, types.TYPE_INT64, optional, ""))
    message("TimeSeries", ("labels", 1, types.TYPE_MESSAGE, repeated, "Label"),
            ("samples", 2, types.TYPE_MESSAGE, repeated, "Sample"))
    message("WriteRequest", ("timeseries", 1, types.TYPE_MESSAGE, repeated, "TimeSeries"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("monitoring_prompb.WriteRequest"))


WRITE_REQUEST = _write_request_class()


def _uncompressed_length(body: bytes) -> int:
    """The length snappy's block format declares up front (a varint), so a bomb is refused before it expands."""
    length = shift = 0
    for index, byte in enumerate(body[:10]):
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return length
        shift += 7
    raise web.HTTPBadRequest(text="the body is not snappy-compressed (no length header)")


def _is_stale(value: float) -> bool:
    return math.isnan(value) and struct.unpack("<Q", struct.pack("<d", value))[0] == STALE_NAN


async def decode(body: bytes, config: Any, collector: Collector) -> tuple[Any, int]:
    """The WriteRequest in a snappy-compressed body, and how many of its series were cut out of it before parsing
    for their label count (over COUNT_NESTED_ABOVE_BYTES only: smaller bodies are checked after parsing); 400 for
    anything else, 413 beyond max_decompressed_bytes expanded or beyond the request's series or samples limits
    (counted). protobuf's parser holds the interpreter lock (8 M empty series in 16 MiB: 0.2 s of a stalled event
    loop), so the counts are read from the wire first: a body over them is refused before anything is built."""
    declared = _uncompressed_length(body)
    if declared > config.max_decompressed_bytes:
        collector.refusals.add(REMOTE_WRITE_SOURCE, BODY_SIZE)
        raise web.HTTPRequestEntityTooLarge(max_size=config.max_decompressed_bytes, actual_size=declared)
    try:
        raw = bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError:
        raise web.HTTPBadRequest(text="the body is not valid snappy (block format)") from None
    try:
        raw, cut = await _count(raw, config, collector)
    except Malformed:
        raise _not_a_write_request() from None
    request = WRITE_REQUEST()
    try:
        request.ParseFromString(raw)
    except Exception:  # noqa: BLE001 (protobuf's DecodeError and friends: anything unparseable is the client's)
        raise _not_a_write_request() from None
    return request, cut


def _not_a_write_request() -> web.HTTPException:
    return web.HTTPBadRequest(text="the body is not a remote-write WriteRequest")


async def _count(raw: bytes, config: Any, collector: Collector) -> tuple[bytes, int]:
    """Refuse a body with more series (or other top-level entries) than max_series_per_request; in a body over
    COUNT_NESTED_ABOVE_BYTES, also one with more samples (exemplars and histograms included) than
    max_samples_per_request, and cut out of it the series of more labels than the label limit, unread (the
    body without them, and how many). Up to those counts, parsing takes milliseconds; the wire is walked in
    slices that yield to the event loop."""
    stats, pacer = collector.remote_write_stats, _Pacer()
    series: list[tuple[int, int, int]] = []
    others = 0
    for number, field_start, start, end in fields(raw, 0, len(raw)):
        await pacer.step()
        if number == 1:
            series.append((field_start, start, end))
        else:
            others += 1
        if len(series) > config.max_series_per_request or others > config.max_series_per_request:
            stats.reject("too_many_series")
            raise web.HTTPRequestEntityTooLarge(
                max_size=config.max_series_per_request, actual_size=max(len(series), others),
                text=f"over {config.max_series_per_request} series (or metadata entries) in one request; "
                     f"remote_write.max_series_per_request is {config.max_series_per_request} (lower the "
                     f"sender's max_samples_per_send)")
    if len(raw) <= COUNT_NESTED_ABOVE_BYTES:
        return raw, 0
    max_labels = _max_labels(config, collector.settings.label_limits)
    samples = 0
    cut: list[tuple[int, int]] = []  # (where, end) of each series over the label limit
    for field_start, start, end in series:
        labels = 0
        for number, _, _, _ in fields(raw, start, end):
            await pacer.step()
            if number == 1:
                labels += 1
                if labels > max_labels:  # its samples are not counted: they won't be parsed
                    cut.append((field_start, end))
                    break
            else:
                samples += 1
                if samples > config.max_samples_per_request:
                    raise _too_many_samples(stats, config, samples)
    if not cut:
        return raw, 0
    kept, at = [], 0
    for where, end in cut:
        kept.append(raw[at:where])
        at = end
    kept.append(raw[at:])
    return b"".join(kept), len(cut)


def _max_labels(config: Any, limits: LabelLimits) -> int:
    """Labels a remote-written series may have, all of them counted (__name__ and the target labels too)."""
    return min(config.max_labels_per_series, limits.max_labels)


LABELS_PER_UNIT = 4  # labels that cost about as much to check as one sample to take


class _Pacer:
    """Yields to the event loop once every SLICE units of work."""

    def __init__(self) -> None:
        self.work = 0

    async def step(self, units: int = 1) -> None:
        self.work += units
        if self.work >= SLICE:
            self.work = 0
            await asyncio.sleep(0)


@dataclass(slots=True)
class Series:
    """One series of a request that passed the checks: its agent, namespace, name, labels and samples."""

    agent_id: str
    namespace: str
    name: str
    labels: tuple[tuple[str, str], ...]  # sorted, without the agent label and __name__
    points: list[tuple[float, float]]    # (value, timestamp in seconds)
    size: int = 0                        # estimated bytes, when this entry creates a series (charged to quotas)


@dataclass
class Batch:
    """What a request brings, after the checks; `dropped` counts the series left out, by reason."""

    series: list[Series] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str, count: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + count


async def remote_write(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    collector = request.app[COLLECTOR]
    config = settings.remote_write
    stats: RemoteWriteStats = collector.remote_write_stats
    stats.requests += 1
    if settings.source != REMOTE_WRITE_SOURCE:
        stats.reject("disabled")
        raise web.HTTPNotFound(text="remote-write is off: set source: remote_write")
    encoding = request.headers.get("Content-Encoding", "").lower()
    if encoding != "snappy":
        stats.reject("encoding")
        raise web.HTTPUnsupportedMediaType(text="remote-write bodies are snappy-compressed protobuf "
                                                "(Content-Encoding: snappy)")
    # aiohttp leaves an unknown Content-Encoding alone: the body arrives as sent.
    try:
        body = await read_body(request, config.max_request_bytes)
    except web.HTTPRequestEntityTooLarge:
        collector.refusals.add(REMOTE_WRITE_SOURCE, BODY_SIZE)
        raise
    scope = request.get(INGEST_NAMESPACE)
    # One request at a time (requests waiting hold only their compressed body): its checks hold while its
    # slices are stored. Its many short-lived objects make no cycles: with the cycle collector paused they are
    # never promoted, so no full collection (tens of ms with a large store) lands in a slice.
    async with stats.lock:
        write, cut = await decode(body, config, collector)
        _check_size(write, config, stats)
        with paused():
            await _take(write, settings, collector, scope, cut)
    return web.Response(status=204)


def _check_size(write: Any, config: Any, stats: RemoteWriteStats) -> None:
    """413 (counted) for a request over max_series_per_request or max_samples_per_request."""
    if len(write.timeseries) > config.max_series_per_request:
        stats.reject("too_many_series")
        raise web.HTTPRequestEntityTooLarge(
            max_size=config.max_series_per_request, actual_size=len(write.timeseries),
            text=f"{len(write.timeseries)} series in one request; remote_write.max_series_per_request is "
                 f"{config.max_series_per_request} (lower the sender's max_samples_per_send)")
    samples = sum(len(series.samples) for series in write.timeseries)
    if samples > config.max_samples_per_request:
        raise _too_many_samples(stats, config, samples)


def _too_many_samples(stats: RemoteWriteStats, config: Any, samples: int) -> web.HTTPException:
    """The 413 of a request over max_samples_per_request (counted)."""
    stats.reject("too_many_samples")
    return web.HTTPRequestEntityTooLarge(
        max_size=config.max_samples_per_request, actual_size=samples,
        text=f"{samples} samples in one request; remote_write.max_samples_per_request is "
             f"{config.max_samples_per_request} (lower the sender's max_samples_per_send)")


async def _take(write: Any, settings: MonitoringSettings, collector: Collector, scope: str | None,
                cut: int = 0) -> None:
    """Check the request's series, leave out those with a problem of their own (`cut` were already cut out of the
    body for their label count) and those there is no room for, store the rest; a 4xx when nothing was taken,
    a 400 naming what was left out and why after storing the rest."""
    stats, config = collector.remote_write_stats, settings.remote_write
    trusted = scope is None or scope == PROMETHEUS_SCOPE  # the admin token, Prometheus' (or no credential set)
    batch = await _checked(write, settings, collector, None if trusted else scope)
    if cut:
        _leave_out(batch, collector, "label_limit", cut)
    if trusted:  # what the trusted writer reports closes namespace tokens' claims on those agents
        for agent_id, namespace in {entry.agent_id: entry.namespace for entry in batch.series}.items():
            collector.override_claim(agent_id, namespace)
    await _charge_quotas(batch, config, collector)
    for reason, count in batch.dropped.items():
        stats.reject(reason, count)
    left_out = {reason: count for reason, count in batch.dropped.items() if reason in LEFT_OUT}
    if not batch.series and (left_out or OWNERSHIP in batch.dropped):
        raise _nothing_taken(batch)
    await _store(batch, collector, trusted)
    if left_out:
        raise _left_out(left_out, len(batch.series))


async def _checked(write: Any, settings: MonitoringSettings, collector: Collector, scope: str | None) -> Batch:
    """The request's series that pass the checks, and those left out (counted) for a problem of their own: labels
    beyond the limits, an agent label that is no agent id, a sample outside the time window. A 4xx (counted)
    for what refuses it whole: label bytes per request, a series of another namespace for a namespace's token.
    `scope` is the namespace of a namespace's token (None for the trusted ones: Prometheus' and the admin token).
    """
    config, limits, stats = settings.remote_write, settings.label_limits, collector.remote_write_stats
    oldest, latest = collector.sample_window(collector.clock())
    max_labels = _max_labels(config, limits)
    batch, label_bytes = Batch(), 0
    bound: dict[str, str] = {}  # agent -> namespace, of agents this request names first
    pacer = _Pacer()
    for series in write.timeseries:
        labels_sent = len(series.labels)  # counted before any is read: a series may carry a million
        await pacer.step(1 + len(series.samples) + labels_sent // LABELS_PER_UNIT)
        if labels_sent > max_labels:
            _leave_out(batch, collector, "label_limit")
            continue
        pairs = [(label.name, label.value) for label in series.labels]
        label_bytes += sum(len(name) + len(value) for name, value in pairs)
        if label_bytes > config.max_label_bytes_per_request:
            collector.refusals.add(REMOTE_WRITE_SOURCE, "label_bytes")
            stats.reject("label_bytes")
            raise web.HTTPRequestEntityTooLarge(
                max_size=config.max_label_bytes_per_request, actual_size=label_bytes,
                text=f"over {config.max_label_bytes_per_request} bytes of labels in one request "
                     f"(remote_write.max_label_bytes_per_request); send smaller batches")
        problem = limits.problem(pairs)
        if problem is not None:
            _leave_out(batch, collector, problem)
            continue
        labels = dict(pairs)
        agent_id = labels.pop(config.agent_label, "")
        name = labels.pop("__name__", "")
        if not agent_id or not name:
            batch.drop("no_agent_label" if name else "no_name")
            continue
        if agent_id_problem(agent_id) is not None:  # agents are bounded where they enter (as the label limits)
            _leave_out(batch, collector, "agent_id")
            continue
        namespace = labels.get("namespace", "")
        if scope is not None and namespace != scope:
            stats.reject("other_namespace")
            raise web.HTTPForbidden(text=f"a series of namespace {namespace!r}: this token writes only namespace "
                                         f"{scope!r}; the request is refused whole")
        points = [(point.value, point.timestamp / 1000) for point in series.samples]
        outside = [timestamp for _, timestamp in points if not oldest <= timestamp <= latest]
        if outside:  # as Prometheus' TSDB refuses out-of-bounds samples: the series is left out
            old = sum(1 for timestamp in outside if timestamp < oldest)
            if len(outside) - old:
                collector.count_out_of_bounds(REMOTE_WRITE_SOURCE, False, len(outside) - old)
            if old:
                collector.count_out_of_bounds(REMOTE_WRITE_SOURCE, True, old)
            batch.drop("too_old" if old else "too_far_in_future")
            continue
        if scope is not None:  # a namespace's token: its own agents, or nobody's (a claim)
            refusal = collector.write_refusal(agent_id, scope)
            if refusal is not None:
                reason, text = refusal
                stats.reject(reason)
                raise web.HTTPForbidden(text=f"{text}; the request is refused whole")
        else:  # trusted: agrees with discovery and trusted bindings (claims it overrides), first naming wins
            owners = collector.trusted_namespaces(agent_id) or ({bound[agent_id]} if agent_id in bound else set())
            if owners and namespace not in owners:
                batch.drop(OWNERSHIP)
                continue
        bound.setdefault(agent_id, namespace)
        batch.series.append(Series(agent_id, namespace, name, tuple(sorted(labels.items())), points))
    return batch


async def _charge_quotas(batch: Batch, config: Any, collector: Collector) -> None:
    """Leave out (counted in `batch`) the new agents and new series there is no room for: beyond their
    namespace's quotas, `max_agents`, the agent's series caps or the store's global byte budget (the store
    would drop those silently); note the estimated size of each series the batch creates."""
    ownership, store, settings = collector.ownership, collector.store, collector.settings
    agents: dict[str, int] = {}  # namespace -> agents this request binds
    registered = 0  # agents this request registers
    series: dict[str, list[int]] = {}  # namespace -> [new series, their bytes] this request adds
    per_agent: dict[str, list[int]] = {}  # agent -> [new series, their bytes in the store] this request adds
    stored = 0  # bytes the store's budget gives the series this request adds
    admitted: dict[str, str | None] = {}  # agent -> why it can't be (or be bound), None when it may
    seen: set[tuple[str, str, tuple[tuple[str, str], ...]]] = set()
    kept = []
    pacer = _Pacer()
    for entry in batch.series:
        await pacer.step()
        namespace, agent_id = entry.namespace, entry.agent_id
        usage = ownership.usage(namespace)
        if agent_id not in admitted:
            unbound, new = ownership.owner(agent_id) is None, agent_id not in collector.agents
            refusal = None
            if unbound and usage.agents + agents.get(namespace, 0) >= config.max_agents_per_namespace:
                refusal = "namespace_agent_quota"
            elif new and len(collector.agents) + registered >= settings.max_agents:
                refusal = "agent_limit"
            else:
                agents[namespace] = agents.get(namespace, 0) + unbound
                registered += new
            admitted[agent_id] = refusal
        refusal = admitted[agent_id]
        if refusal is not None:
            batch.drop(refusal)
            continue
        key = (agent_id, entry.name, entry.labels)
        if entry.name != _UP and key not in seen and not store.has_series(*key):  # (`up` is not stored)
            held, added = per_agent.setdefault(agent_id, [0, 0]), series.setdefault(namespace, [0, 0])
            cost = store.new_series_bytes(entry.name, entry.labels)  # one estimate for quotas and budgets
            if store.series_count(agent_id) + held[0] >= settings.max_series_per_agent:
                refusal = "agent_series_limit"
            elif store.agent_bytes(agent_id) + held[1] + cost > settings.max_series_bytes_per_agent:
                refusal = "agent_series_bytes"
            elif usage.series + added[0] >= config.max_series_per_namespace:
                refusal = "namespace_series_quota"
            elif usage.bytes + added[1] + cost > config.max_bytes_per_namespace:
                refusal = "namespace_bytes_quota"
            elif store.series_bytes + stored + cost > settings.max_series_bytes:
                refusal = "series_budget"
            if refusal is not None:
                batch.drop(refusal)
                continue
            held[0], held[1], added[0], added[1] = held[0] + 1, held[1] + cost, added[0] + 1, added[1] + cost
            stored += cost
            entry.size = cost
            seen.add(key)
        kept.append(entry)
    batch.series = kept


async def _store(batch: Batch, collector: Collector, trusted: bool) -> None:
    """Register and bind the batch's agents (a claim unless a `trusted` writer sent it), feed `up` to the
    heartbeats, then charge the new series and feed every other sample to the store and rules, a slice at a
    time."""
    namespaces = {entry.agent_id: entry.namespace for entry in batch.series}
    infos = {entry.agent_id: dict(entry.labels) for entry in batch.series if entry.name == _UP}
    refused = collector.ensure_remote_agents(namespaces, infos, trusted)
    if refused:
        collector.remote_write_stats.reject("agent_limit", len(refused))
    taken = [entry for entry in batch.series if entry.agent_id not in refused]
    stats = collector.remote_write_stats
    ups = sorted(((entry.agent_id, value, timestamp) for entry in taken if entry.name == _UP
                  for value, timestamp in entry.points), key=lambda up: up[2])
    pacer = _Pacer()
    for agent_id, value, timestamp in ups:
        collector.observe_up(agent_id, value == 1.0, _is_stale(value), timestamp)
        await pacer.step()
    samples: list[Sample] = []
    new: list[Series] = []  # entries that may create their series: charged once the store has
    for entry in taken:
        stats.series += 1
        stats.samples += len(entry.points)
        if entry.name == _UP:
            continue
        if entry.size:
            new.append(entry)
        # staleness markers (and NaN) are not readings
        samples.extend(Sample(entry.agent_id, entry.name, value, timestamp, entry.labels)
                       for value, timestamp in entry.points if not math.isnan(value))
        if len(samples) >= SLICE // 2:  # storing a sample and checking its rules: about twice a check's work
            collector.process(samples, collector.clock())
            samples = []
            await asyncio.sleep(0)
    collector.process(samples, collector.clock())
    # Charged only when the store made the series' window (by this entry or a later one of the request): a series
    # of staleness markers only makes none, and charged, it would be charged again by every request.
    for entry in new:
        if collector.store.has_series(entry.agent_id, entry.name, entry.labels):
            collector.ownership.add_series(entry.agent_id, 1, entry.size)


def _leave_out(batch: Batch, collector: Collector, reason: str, count: int = 1) -> None:
    """Leave out `count` series for their labels or agent label (`reason`), counted as refused bodies were."""
    collector.refusals.add(REMOTE_WRITE_SOURCE, reason, count)
    batch.drop(reason, count)


def _nothing_taken(batch: Batch) -> web.HTTPException:
    """The answer to a request none of whose series could be taken, for ownership or lack of room."""
    if OWNERSHIP in batch.dropped:
        reasons = ", ".join(f"{count} series: {reason}" for reason, count in sorted(batch.dropped.items()))
        return web.HTTPForbidden(text=f"nothing taken ({reasons}): an agent belongs to one namespace, the one "
                                      f"discovery or a trusted writer put it in")
    return _left_out({reason: count for reason, count in batch.dropped.items() if reason in LEFT_OUT}, 0)


def _left_out(left_out: dict[str, int], taken: int) -> web.HTTPException:
    """The 400 naming the series left out and why (the `taken` others were stored): Prometheus' own receiver
    answers a partly taken batch so, and does not resend it."""
    reasons = ", ".join(f"{count} series: {reason} ({LEFT_OUT[reason]})" for reason, count in sorted(left_out.items()))
    return web.HTTPBadRequest(text=f"{taken} series taken; left out: {reasons}. Fix the sender (shorten or drop "
                                   f"labels with write_relabel_configs, its clock) or raise those settings; resending "
                                   f"won't help")
