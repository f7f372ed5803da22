"""Kubernetes discovery: follow agent pods in the given namespaces and keep the collector in step.

The standard list-then-watch loop (kubernetes_asyncio): list the pods matching the label
selector, register the running ones, then watch from that list's resourceVersion. A pod
that stops running, loses its IP or is deleted is deregistered. An expired watch (HTTP
410) or a dropped connection leads to a fresh list, so no change is missed for long.
Each pod is one scrape target, with agent id `<pod>.<namespace>`. Discovered pods are trusted
(they come from the Kubernetes API); their IPs are also handed to the scrape-target policy
(`collector.targets`), which lets API clients register agents by those pod IPs in cluster mode.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException
from yarl import URL

from .collector import Collector, RegistrationError
from .health import MEMORY_LIMIT_INFO, quantity_bytes
from .settings import DiscoverySettings

log = logging.getLogger(__name__)
RETRY_SECONDS = 5.0
WATCH_TIMEOUT_SECONDS = 300  # the API server ends each watch after this; we list again


async def watch_pods(settings: DiscoverySettings, collector: Collector,
                     configuration: client.Configuration | None = None) -> None:
    """Run discovery until cancelled; in-cluster service-account auth unless `configuration` is given."""
    if configuration is None:
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
    async with client.ApiClient(configuration) as api:
        core = client.CoreV1Api(api)
        await asyncio.gather(*(_follow_namespace(core, namespace, settings, collector)
                               for namespace in settings.namespaces))


def pod_target(pod: Any, settings: DiscoverySettings) -> tuple[str, str, dict[str, str]] | None:
    """(agent id, metrics URL, info) of a pod that can be scraped now; None otherwise. The info holds the
    metrics container's memory limit (`memory_limit_bytes`) when it has one: the health score's memory share."""
    metadata, status, spec = pod.metadata, pod.status, pod.spec
    if metadata.deletion_timestamp is not None or status is None or status.phase != "Running" or not status.pod_ip:
        return None
    containers = spec.containers or []
    serving = [(container, container_port.container_port) for container in containers
               for container_port in (container.ports or [])
               if container_port.name == settings.metrics_port or container_port.container_port == settings.metrics_port]
    if isinstance(settings.metrics_port, str) and not serving:
        return None
    container, port = serving[0] if serving else (containers[0] if containers else None, settings.metrics_port)
    host = f"[{status.pod_ip}]" if ":" in status.pod_ip else status.pod_ip
    labels = metadata.labels or {}
    info = {"namespace": metadata.namespace, "pod": metadata.name, "node": spec.node_name or "",
            "agent": labels.get(settings.agent_id_label, "")}
    limit = _memory_limit(container)
    if limit is not None:
        info[MEMORY_LIMIT_INFO] = str(limit)
    return f"{metadata.name}.{metadata.namespace}", f"http://{host}:{port}{settings.metrics_path}", info


def _memory_limit(container: Any) -> int | None:
    """Bytes of the container's memory limit (a Kubernetes quantity such as 1Gi or 512M), if it has one."""
    resources = getattr(container, "resources", None)
    limits = (resources.limits if resources is not None else None) or {}
    return quantity_bytes(str(limits["memory"])) if "memory" in limits else None


async def _follow_namespace(core: client.CoreV1Api, namespace: str, settings: DiscoverySettings,
                            collector: Collector) -> None:
    mine: dict[str, str] = {}  # agent id -> metrics URL, for the pods this namespace registered
    while True:
        try:
            listing = await core.list_namespaced_pod(namespace, label_selector=settings.label_selector)
            seen = {}
            for pod in listing.items:
                target = pod_target(pod, settings)
                if target is not None:
                    seen[target[0]] = target
            for agent_id in set(mine) - set(seen):
                await _remove(collector, mine, agent_id)
            for target in seen.values():
                _add(collector, mine, target)
            stream = watch.Watch()
            async for event in stream.stream(core.list_namespaced_pod, namespace,
                                             label_selector=settings.label_selector,
                                             resource_version=listing.metadata.resource_version,
                                             timeout_seconds=WATCH_TIMEOUT_SECONDS):
                pod = event["object"]
                agent_id = f"{pod.metadata.name}.{pod.metadata.namespace}"
                target = None if event["type"] == "DELETED" else pod_target(pod, settings)
                if target is None:
                    await _remove(collector, mine, agent_id)
                else:
                    _add(collector, mine, target)
        except asyncio.CancelledError:
            raise
        except ApiException as error:
            if error.status != 410:  # 410 Gone: the watch expired; list again at once
                log.warning("discovery in %s: Kubernetes API error %s %s", namespace, error.status, error.reason)
                await asyncio.sleep(RETRY_SECONDS)
        except Exception as error:  # noqa: BLE001 (network trouble must not end discovery)
            log.warning("discovery in %s failed: %s; retrying", namespace, error)
            await asyncio.sleep(RETRY_SECONDS)


def _add(collector: Collector, mine: dict[str, str], target: tuple[str, str, dict[str, str]]) -> None:
    agent_id, url, info = target
    previous = mine.get(agent_id)
    if previous == url:
        return  # unchanged: keep its schedule and history
    try:
        collector.register(agent_id, url, info=info, source="discovery")
    except RegistrationError as error:
        log.warning("discovered pod %s not registered: %s", agent_id, error)
        return
    mine[agent_id] = url
    if previous is not None:
        collector.targets.pod_gone(info["namespace"], _pod_ip(previous))
    collector.targets.pod_seen(info["namespace"], _pod_ip(url))


async def _remove(collector: Collector, mine: dict[str, str], agent_id: str) -> None:
    url = mine.pop(agent_id, None)
    if url is not None:
        collector.targets.pod_gone(agent_id.rsplit(".", 1)[-1], _pod_ip(url))  # ids are <pod>.<namespace>
        await collector.deregister(agent_id)


def _pod_ip(url: str) -> str:
    return URL(url).raw_host or ""
