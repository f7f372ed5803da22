"""Rules for the Kafka backbone, event-driven scaling and the data layer, each at the field to fix."""

from __future__ import annotations

from collections.abc import Iterator

from .agent_checks import suggest
from .errors import ConfigProblem
from .releases import controller
from .system import SystemConfig
from .traffic import ReleaseController


def _duplicates(names: list[str], path: str) -> Iterator[ConfigProblem]:
    for index, name in enumerate(names):
        if name in names[:index]:
            yield ConfigProblem(path.format(index=index), f"'{name}' is listed twice")


def _setting_problems(system: SystemConfig) -> Iterator[ConfigProblem]:
    kafka = system.messaging.kafka
    if kafka is not None:
        names = [topic.name for topic in kafka.topics]
        yield from _duplicates(names, "messaging.kafka.topics[{index}].name")
        if kafka.dlq_topic is not None and kafka.dlq_topic not in names:
            yield ConfigProblem("messaging.kafka.dlq_topic", f"'{kafka.dlq_topic}' is not one of the topics "
                                                             f"({', '.join(names)}); add it or set dlq_topic: null")
    yield from _duplicates([store.name for store in system.data.stores], "data.stores[{index}].name")
    for index, store in enumerate(system.data.stores):
        pg = store.cloudnative_pg
        if pg is not None and pg.synchronous_replicas > pg.instances - 1:
            yield ConfigProblem(f"data.stores[{index}].cloudnative_pg.synchronous_replicas",
                                f"{pg.synchronous_replicas} needs that many replicas besides the primary; raise "
                                f"instances to {pg.synchronous_replicas + 1} or lower it")
        api_names = {api.name for api in system.mesh.external_apis}
        if f"store-{store.name}" in api_names:
            yield ConfigProblem(f"data.stores[{index}].name", f"its ServiceEntry 'store-{store.name}' would clash "
                                                              f"with the external API of that name; rename one")


def backbone_problems(system: SystemConfig) -> Iterator[ConfigProblem]:
    yield from _setting_problems(system)
    kafka = system.messaging.kafka
    topics = [topic.name for topic in kafka.topics] if kafka is not None else []
    stores = [store.name for store in system.data.stores]
    for index, agent in enumerate(system.agents):
        where = f"agents[{index}]"
        for field in ("consumes", "produces"):
            names = getattr(agent, field)
            if names and kafka is None:
                yield ConfigProblem(f"{where}.{field}", "no Kafka cluster is configured; set messaging.kafka "
                                                        "(cluster, bootstrap, topics) or remove it")
                continue
            yield from _duplicates(list(names), f"{where}.{field}[{{index}}]")
            for position, name in enumerate(names):
                if name not in topics:
                    yield ConfigProblem(f"{where}.{field}[{position}]",
                                        f"unknown topic '{name}'; {suggest(name, topics)}add it to "
                                        f"messaging.kafka.topics (defined: {', '.join(topics)})")
        event_driven = agent.scaling.event_driven
        if event_driven is not None:
            if event_driven.trigger == "kafka" and not agent.consumes:
                yield ConfigProblem(f"{where}.scaling.event_driven.trigger",
                                    "the kafka trigger scales on the lag of the topics the agent consumes, and it "
                                    "consumes none; list them in `consumes`, or use trigger: prometheus")
            if event_driven.trigger == "prometheus" and event_driven.scale_to_zero:
                yield ConfigProblem(f"{where}.scaling.event_driven.scale_to_zero",
                                    "a Prometheus query on the agent's own pods returns nothing at zero replicas, so "
                                    "KEDA would never scale it up again; keep one replica (scale_to_zero: false)")
            if controller(agent) is not ReleaseController.PULUMI:
                yield ConfigProblem(f"{where}.scaling.event_driven",
                                    f"the release controller ({controller(agent).value}) scales the agent's "
                                    f"Deployments itself; event-driven scaling works with releases the program "
                                    f"drives")
        for position, name in enumerate(agent.uses):
            store = system.data.store(name)
            if store is None:
                yield ConfigProblem(f"{where}.uses[{position}]",
                                    f"no data store is named '{name}'; {suggest(name, stores)}define it under "
                                    f"data.stores (defined: {', '.join(stores) or 'none'})")
            elif (store.cloudnative_pg is not None and store.credentials_secret is None
                  and store.namespace != system.agent_namespace(agent)):
                yield ConfigProblem(f"{where}.uses[{position}]",
                                    f"the operator writes the credentials of '{name}' into the Secret "
                                    f"'{store.secret}' in namespace {store.namespace}, and this agent runs in "
                                    f"{system.agent_namespace(agent)}; copy it there and set "
                                    f"data.stores[{stores.index(name)}].credentials_secret to its name")
