"""Prometheus remote-write in: `POST /api/v1/write` (snappy-compressed protobuf `WriteRequest`, remote-write
1.0), so Prometheus (sharded by the Prometheus Operator as it grows) scrapes the agents and the service
receives what it scraped, instead of scraping them a second time.

Series map to agents by a label (`remote_write.agent_label`, default `agent_id`, which the ServiceMonitor's
relabeling sets); an agent is registered the first time it appears (within `max_agents`) and is never
scraped by the service. What a scrape would tell, Prometheus' `up` tells: 1 is a successful scrape,
0 a failed one, and a staleness marker on `up` (the target is gone) a failed one too. Every other sample
feeds the same store, rules, alerts and health score as a scrape. Bounded: the compressed body
(`max_request_bytes`), the decompressed size (checked from snappy's header before decompressing), the
series per request, and the labels per series; malformed bodies are 400s.

Credentials: the admin token, or an ingestion token. A namespace's token (`mi1.<namespace>.…`) may write
only series whose `namespace` label is its own; the token of the scope `prometheus-remote-write`
(`python -m monitoring.credentials prometheus-remote-write`) is Prometheus', for every namespace.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import cramjam
from aiohttp import web
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from .credentials import PROMETHEUS_SCOPE
from .http_bodies import read_body
from .parsing import Sample
from .remote_write_stats import RemoteWriteStats
from .state import COLLECTOR, INGEST_NAMESPACE, SETTINGS

REMOTE_WRITE_SOURCE = "remote_write"
STALE_NAN = 0x7FF0000000000002                # Prometheus' staleness marker
_UP = "up"


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


def decode(body: bytes, max_bytes: int) -> Any:
    """The WriteRequest in a snappy-compressed body; 400 for anything else, 413 beyond `max_bytes` expanded."""
    declared = _uncompressed_length(body)
    if declared > max_bytes:
        raise web.HTTPRequestEntityTooLarge(max_size=max_bytes, actual_size=declared)
    try:
        raw = bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError:
        raise web.HTTPBadRequest(text="the body is not valid snappy (block format)") from None
    request = WRITE_REQUEST()
    try:
        request.ParseFromString(raw)
    except Exception:  # noqa: BLE001 (protobuf's DecodeError and friends: anything unparseable is the client's)
        raise web.HTTPBadRequest(text="the body is not a remote-write WriteRequest") from None
    return request


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
    write = decode(await read_body(request, config.max_request_bytes), config.max_decompressed_bytes)
    if len(write.timeseries) > config.max_series_per_request:
        stats.reject("too_many_series")
        raise web.HTTPRequestEntityTooLarge(max_size=config.max_series_per_request, actual_size=len(write.timeseries))
    scope = request.get(INGEST_NAMESPACE)
    namespace_bound = scope is not None and scope != PROMETHEUS_SCOPE
    samples: list[Sample] = []
    ups: list[tuple[str, float, float, dict[str, str]]] = []
    for series in write.timeseries:
        if len(series.labels) > config.max_labels_per_series:
            stats.reject("too_many_labels")
            continue
        labels = {label.name: label.value for label in series.labels}
        agent_id = labels.pop(config.agent_label, "")
        name = labels.pop("__name__", "")
        if not agent_id or not name:
            stats.reject("no_agent_label" if name else "no_name")
            continue
        if namespace_bound and labels.get("namespace") != scope:
            stats.reject("other_namespace")
            continue
        stats.series += 1
        for point in series.samples:
            stats.samples += 1
            timestamp = point.timestamp / 1000
            if name == _UP:
                ups.append((agent_id, point.value, timestamp, labels))
            elif not math.isnan(point.value):  # staleness markers (and NaN) are not readings
                samples.append(Sample(agent_id, name, point.value, timestamp, tuple(sorted(labels.items()))))
    known = {sample.agent_id for sample in samples} | {agent_id for agent_id, *_ in ups}
    refused = collector.ensure_remote_agents(known, {agent_id: info for agent_id, _, _, info in ups})
    if refused:
        stats.reject("agent_limit", len(refused))
    for agent_id, value, timestamp, _ in sorted(ups, key=lambda up: up[2]):
        if agent_id not in refused:
            collector.observe_up(agent_id, value == 1.0, _is_stale(value), timestamp)
    collector.process([sample for sample in samples if sample.agent_id not in refused], collector.clock())
    return web.Response(status=204)
