"""Alert delivery: Alertmanager's v2 API, a generic JSON webhook, and the dispatcher between them.

The dispatcher queues changes (bounded) and delivers them from a background task, so a
slow receiver never stalls scraping, and one failing handler never stops the others. Each
alert is encoded on its own: one that can't be (a time no date can show, say) is left out of
its batch, logged and counted (`unencodable`), and the others are sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import aiohttp

from .alerts import Alert, iso
from .json_answers import dumps

log = logging.getLogger(__name__)

Handler = Callable[[Sequence[Alert]], Awaitable[None]]
Item = TypeVar("Item")
JSON_HEADERS = {"Content-Type": "application/json"}


def encode_each(alerts: Sequence[Alert], encode: Callable[[Alert], Any], receiver: str) -> tuple[list[str], int]:
    """Each alert's JSON text (through `encode`), leaving out (and logging) those that can't be encoded; with
    how many were left out. One alert never fails the batch, so valid alerts keep reaching the receiver."""
    encoded, left_out = [], 0
    for alert in alerts:
        try:
            encoded.append(dumps(encode(alert), separators=(",", ":")))  # a NaN value as "NaN": valid JSON
        except (ValueError, OverflowError, OSError, TypeError) as error:  # dates out of range, unencodable values
            left_out += 1
            log.warning("alert %s on %s not sent to %s: it can't be encoded (%s)", alert.rule_id[:128],
                        alert.agent_id[:253], receiver, error)
    return encoded, left_out


class AlertmanagerNotifier:
    """POSTs alerts to `<url>/api/v2/alerts`, as Prometheus does."""

    name = "alertmanager"

    def __init__(self, session: aiohttp.ClientSession, url: str, resend_interval: float, timeout: float,
                 generator_url: str = "") -> None:
        self._session = session
        self._endpoint = url.rstrip("/") + "/api/v2/alerts"
        self._resend_interval = resend_interval
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._generator_url = generator_url

        self.unencodable = 0  # alerts left out of a batch: they could not be encoded

    def payload(self, alerts: Sequence[Alert], now: float) -> list[dict[str, object]]:
        """Alertmanager's postable alerts; firing ones expire unless re-sent (4 resend intervals)."""
        return [self.item(alert, now) for alert in alerts]

    def item(self, alert: Alert, now: float) -> dict[str, object]:
        """One postable alert; raises (ValueError, OverflowError, OSError) for a time no date can show."""
        labels = {"alertname": alert.rule_id, "agent_id": alert.agent_id, "severity": alert.severity.value,
                  **dict(alert.labels), **({"metric": alert.metric} if alert.metric else {})}
        ends = alert.resolved_at if alert.resolved_at is not None else now + 4 * self._resend_interval
        item: dict[str, object] = {
            "labels": labels,
            "annotations": {"summary": f"{alert.rule_id} on {alert.agent_id}", "description": alert.description},
            "startsAt": iso(alert.started_at), "endsAt": iso(ends)}
        if self._generator_url:
            item["generatorURL"] = self._generator_url
        return item

    async def __call__(self, alerts: Sequence[Alert]) -> None:
        now = time.time()
        encoded, left_out = encode_each(alerts, lambda alert: self.item(alert, now), self.name)
        self.unencodable += left_out
        if not encoded:
            return
        async with self._session.post(self._endpoint, data="[" + ",".join(encoded) + "]", headers=JSON_HEADERS,
                                      timeout=self._timeout) as response:
            if response.status >= 300:
                raise RuntimeError(f"Alertmanager answered {response.status}: {(await response.text())[:200]}")


class WebhookNotifier:
    """POSTs `{"alerts": [...]}` (each alert's JSON view) to a URL, with an optional bearer token."""

    name = "webhook"

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str | None, timeout: float) -> None:
        self._session = session
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.unencodable = 0  # alerts left out of a batch: they could not be encoded

    async def __call__(self, alerts: Sequence[Alert]) -> None:
        encoded, left_out = encode_each(alerts, Alert.as_dict, self.name)
        self.unencodable += left_out
        if not encoded:
            return
        async with self._session.post(self._url, data='{"alerts":[' + ",".join(encoded) + "]}",
                                      headers={**JSON_HEADERS, **self._headers}, timeout=self._timeout) as response:
            if response.status >= 300:
                raise RuntimeError(f"webhook answered {response.status}")


class Dispatcher(Generic[Item]):
    """Bounded queue of alert changes, delivered in batches to every handler by one worker.

    Items are the service's Alerts (the course's API queues its SystemAlerts through the same code).
    """

    def __init__(self, handlers: Sequence[Callable[[Sequence[Item]], Awaitable[None]]], queue_size: int = 10_000,
                 batch_size: int = 100) -> None:
        self.handlers = list(handlers)
        self._queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self.delivered: dict[str, int] = {}
        self.failed: dict[str, int] = {}
        self.dropped = 0

    def submit(self, alert: Item) -> None:
        """Queue an alert change; drop (and count) it when the queue is full."""
        if not self.handlers:
            return
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            self.dropped += 1

    async def send_now(self, alerts: Sequence[Item]) -> None:
        """Deliver a batch to every handler concurrently; failures are logged and counted."""
        results = await asyncio.gather(*(handler(alerts) for handler in self.handlers), return_exceptions=True)
        for handler, result in zip(self.handlers, results):
            name = getattr(handler, "name", type(handler).__name__)
            if isinstance(result, BaseException):
                self.failed[name] = self.failed.get(name, 0) + 1
                log.warning("alert handler %s failed: %s", name, result or type(result).__name__)
            else:
                self.delivered[name] = self.delivered.get(name, 0) + len(alerts)

    async def run(self) -> None:
        """Worker loop: take what is queued (up to a batch) and deliver it."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self.send_now(batch)
