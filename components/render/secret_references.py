"""Which Secrets the rendered objects read, which Secrets operators make from them, and which are left for the
user to create. Pure: rendered objects (Kubernetes wire format) in, records out.

A Secret is read from the reading object's own namespace. Pod templates are found wherever they sit (any
mapping with a `containers` list), so every workload kind counts, custom resources embedding one too
(an Argo Rollout, an agent-sandbox Sandbox, a KEDA ScaledJob).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator

# A docker-registry Secret's key (`kubectl create secret docker-registry` writes it).
DOCKER_CONFIG_KEY = ".dockerconfigjson"
# CloudNativePG reads the application owner's credentials from this Secret when the Cluster names one.
CNPG_OWNER_KEYS = ("password", "username")
_POD_SPEC_CONTAINERS = ("containers", "initContainers", "ephemeralContainers")


@dataclass(frozen=True)
class SecretUse:
    """One object reading one Secret of its namespace."""

    namespace: str
    name: str
    keys: tuple[str, ...]  # the keys read; () when it reads the whole Secret (envFrom, a volume without items)
    reader: str  # `Deployment agents-dev/coordinator`
    optional: bool = False  # the workload starts without it


@dataclass(frozen=True)
class MadeSecret:
    """A Secret an operator writes from a rendered object."""

    namespace: str
    name: str
    maker: str  # `KafkaUser kafka/coordinator (the Strimzi User Operator)`


@dataclass(frozen=True)
class SecretToProvide:
    """A Secret the rendered objects read that nothing rendered makes: the user creates it."""

    namespace: str
    name: str
    keys: tuple[str, ...]  # every key some reader names, sorted
    whole: bool  # some reader takes every key it holds
    readers: tuple[str, ...]
    optional: bool  # every reader starts without it
    copy_of: MadeSecret | None  # an operator makes one of this name elsewhere: copy that one here


def _label(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata", {})
    return f"{obj['kind']} {metadata.get('namespace', '-')}/{metadata.get('name', '')}"


def _pod_specs(value: Any) -> Iterator[dict[str, Any]]:
    """Every pod spec inside an object, at any depth."""
    if isinstance(value, dict):
        if isinstance(value.get("containers"), list):
            yield value
            return
        for item in value.values():
            yield from _pod_specs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _pod_specs(item)


def _pod_spec_uses(pod: dict[str, Any]) -> Iterator[tuple[str, tuple[str, ...], bool]]:
    """(Secret, keys, optional) of every Secret one pod spec reads."""
    for field in _POD_SPEC_CONTAINERS:
        for container in pod.get(field) or []:
            for item in container.get("env") or []:
                ref = (item.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    yield ref["name"], (ref["key"],), bool(ref.get("optional"))
            for item in container.get("envFrom") or []:
                if item.get("secretRef"):
                    yield item["secretRef"]["name"], (), bool(item["secretRef"].get("optional"))
    for secret in pod.get("imagePullSecrets") or []:
        yield secret["name"], (DOCKER_CONFIG_KEY,), False
    for volume in pod.get("volumes") or []:
        if volume.get("secret"):
            source = volume["secret"]
            yield source["secretName"], _item_keys(source), bool(source.get("optional"))
        for projected in (volume.get("projected") or {}).get("sources") or []:
            if projected.get("secret"):
                source = projected["secret"]
                yield source["name"], _item_keys(source), bool(source.get("optional"))


def _item_keys(source: dict[str, Any]) -> tuple[str, ...]:
    return tuple(item["key"] for item in source.get("items") or [])


def _key_selectors(value: Any) -> Iterator[tuple[str, str]]:
    """The Prometheus Operator's SecretKeySelectors (`{name, key}`) in a spec; ConfigMap selectors skipped."""
    if isinstance(value, dict):
        if set(value) <= {"name", "key", "optional"} and {"name", "key"} <= set(value):
            yield value["name"], value["key"]
            return
        for field, item in value.items():
            if field != "configMap":
                yield from _key_selectors(item)
    elif isinstance(value, list):
        for item in value:
            yield from _key_selectors(item)


def _object_uses(obj: dict[str, Any]) -> Iterator[tuple[str, tuple[str, ...], bool]]:
    """(Secret, keys, optional) of every Secret one object reads."""
    group = obj.get("apiVersion", "").split("/")[0]
    spec = obj.get("spec") or {}
    for pod in _pod_specs(obj):
        yield from _pod_spec_uses(pod)
    if group == "keda.sh" and obj["kind"] == "TriggerAuthentication":
        for ref in spec.get("secretTargetRef") or []:
            yield ref["name"], (ref["key"],), False
    elif obj["kind"] == "ServiceAccount" and group == "v1":  # its pods pull with these
        for secret in obj.get("imagePullSecrets") or []:
            yield secret["name"], (DOCKER_CONFIG_KEY,), False
    elif group == "monitoring.coreos.com" and obj["kind"] != "PrometheusRule":  # a rule's labels aren't selectors
        for name, key in _key_selectors(spec):
            yield name, (key,), False
    elif group == "postgresql.cnpg.io" and obj["kind"] == "Cluster":
        owner = ((spec.get("bootstrap") or {}).get("initdb") or {}).get("secret")
        if owner:
            yield owner["name"], CNPG_OWNER_KEYS, False


def secret_uses(objects: Iterable[dict[str, Any]]) -> list[SecretUse]:
    """Every (object, Secret, keys) read among the namespaced objects, each once."""
    uses: dict[SecretUse, None] = {}
    for obj in objects:
        namespace = obj.get("metadata", {}).get("namespace")
        if namespace is None:  # cluster-scoped: no namespace to read a Secret from
            continue
        for name, keys, optional in _object_uses(obj):
            uses[SecretUse(namespace, name, keys, _label(obj), optional)] = None
    return list(uses)


def operator_made(objects: Iterable[dict[str, Any]]) -> list[MadeSecret]:
    """The Secrets operators write beside rendered objects (Strimzi, CloudNativePG, External Secrets)."""
    made = []
    for obj in objects:
        group, kind = obj.get("apiVersion", "").split("/")[0], obj["kind"]
        metadata, spec = obj.get("metadata", {}), obj.get("spec") or {}
        namespace, name = metadata.get("namespace"), metadata.get("name", "")
        if namespace is None:
            continue
        label = _label(obj)
        if group == "kafka.strimzi.io" and kind == "KafkaUser":
            made.append(MadeSecret(namespace, name, f"{label} (the Strimzi User Operator)"))
        elif group == "kafka.strimzi.io" and kind == "Kafka":
            made += [MadeSecret(namespace, f"{name}-{ca}-ca-cert", f"{label} (the Strimzi Cluster Operator)")
                     for ca in ("cluster", "clients")]
        elif group == "postgresql.cnpg.io" and kind == "Cluster":
            initdb = (spec.get("bootstrap") or {}).get("initdb") or {}
            if not initdb.get("secret"):  # else the Cluster reads the owner's Secret the user made
                made.append(MadeSecret(namespace, f"{name}-app", f"{label} (CloudNativePG)"))
            if spec.get("enableSuperuserAccess"):
                made.append(MadeSecret(namespace, f"{name}-superuser", f"{label} (CloudNativePG)"))
        elif group == "external-secrets.io" and kind == "ExternalSecret":
            store = spec.get("secretStoreRef") or {}
            target = (spec.get("target") or {}).get("name") or name
            made.append(MadeSecret(namespace, target, f"{label} (the External Secrets Operator, from "
                                                      f"{store.get('kind', 'SecretStore')} '{store.get('name')}')"))
    return made


def secrets_to_provide(objects: Iterable[dict[str, Any]],
                       program_made: Iterable[tuple[str, str]]) -> list[SecretToProvide]:
    """The Secrets the objects read that neither the program (`(namespace, name)` of the Secrets it makes) nor an
    operator makes, by namespace and name; a Secret an operator makes under the same name in another namespace is
    named as the one to copy."""
    objects = list(objects)
    made = operator_made(objects)
    accounted = {(secret.namespace, secret.name) for secret in made} | set(program_made)
    grouped: dict[tuple[str, str], list[SecretUse]] = {}
    for use in secret_uses(objects):
        if (use.namespace, use.name) not in accounted:
            grouped.setdefault((use.namespace, use.name), []).append(use)
    needed = []
    for (namespace, name), uses in sorted(grouped.items()):
        original = next((secret for secret in made if secret.name == name), None)
        needed.append(SecretToProvide(
            namespace, name, keys=tuple(sorted({key for use in uses for key in use.keys})),
            whole=any(not use.keys for use in uses), readers=tuple(sorted({use.reader for use in uses})),
            optional=all(use.optional for use in uses), copy_of=original))
    return needed
