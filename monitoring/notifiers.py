"""Alert delivery: Alertmanager's v2 API, a generic JSON webhook, and the dispatcher between them.

The dispatcher queues changes (bounded) and delivers them from a background task, so a
slow receiver never stalls scraping, and one failing handler never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import aiohttp

from .alerts import Alert, iso
from .json_answers import dumps

log = logging.getLogger(__name__)

Handler = Callable[[Sequence[Alert]], Awaitable[None]]
Item = TypeVar("Item")
_JSON = {"Content-Type": "application/json"}


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

    def payload(self, alerts: Sequence[Alert], now: float) -> list[dict[str, object]]:
        """Alertmanager's postable alerts; firing ones expire unless re-sent (4 resend intervals)."""
        body = []
        for alert in alerts:
            labels = {"alertname": alert.rule_id, "agent_id": alert.agent_id, "severity": alert.severity.value,
                      **dict(alert.labels), **({"metric": alert.metric} if alert.metric else {})}
            ends = alert.resolved_at if alert.resolved_at is not None else now + 4 * self._resend_interval
            item: dict[str, object] = {
                "labels": labels,
                "annotations": {"summary": f"{alert.rule_id} on {alert.agent_id}", "description": alert.description},
                "startsAt": iso(alert.started_at), "endsAt": iso(ends)}
            if self._generator_url:
                item["generatorURL"] = self._generator_url
            body.append(item)
        return body

    async def __call__(self, alerts: Sequence[Alert]) -> None:
        async with self._session.post(self._endpoint, json=self.payload(alerts, time.time()),
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

    async def __call__(self, alerts: Sequence[Alert]) -> None:
        body = dumps({"alerts": [alert.as_dict() for alert in alerts]})  # a NaN value as "NaN": valid JSON
        async with self._session.post(self._url, data=body, headers={**self._headers, **_JSON},
                                      timeout=self._timeout) as response:
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
