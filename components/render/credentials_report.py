"""What whoever applies the offline render must provide, in an order that works, and where encrypted config
values went. Pure: rendered objects and the stack's credential inventory in, text out.

The Secrets live in namespaces `all.yaml` itself creates, so the report says to apply the rendered Namespace
files first, then create the Secrets, then apply `all.yaml`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..config.lookups import credentials_secret_name
from ..config.monitoring import SecretStoreRef
from ..config.system import SystemConfig
from .manifests import file_name
from .secret_references import SecretToProvide, operator_made, secrets_to_provide
from .stack_files import secret_placeholder

ORDER_HEADING = "Order (all.yaml creates the namespaces these Secrets live in; a Secret needs its namespace first):"
PROGRAM_HEADING = "Secrets `pulumi up` makes (the render writes no credentials; create them yourself):"
USER_HEADING = "Secrets your config references (create them yourself; the program never does):"
OPERATOR_HEADING = "Secrets operators make from rendered objects (don't create them):"
CREATE_EXAMPLE = "kubectl -n <namespace> create secret generic <secret> --from-literal=<key>=<value> ..."


def _namespace_files(objects: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Namespace name -> the file the render writes it to (same numbering as write_manifests)."""
    return {obj["metadata"]["name"]: file_name(obj, position) for position, obj in enumerate(objects, start=1)
            if obj["kind"] == "Namespace"}


def _order(objects: Sequence[dict[str, Any]], namespaces: Iterable[str], copies: bool, stored: bool,
           directory: Path) -> list[str]:
    files = _namespace_files(objects)
    missing = sorted(set(namespaces) - set(files))
    lines = [ORDER_HEADING]
    if files:
        lines.append("  1. kubectl apply " + " ".join(f"-f {directory / name}" for name in files.values()))
    else:
        lines.append("  1. (the render creates no Namespace)")
    which = "under the heading \"Secrets your config references\"" if stored else "below"  # the store makes the rest
    lines.append(f"  2. create the Secrets {which}: {CREATE_EXAMPLE}")
    if missing:
        lines.append(f"     (namespace{'s' if len(missing) > 1 else ''} {', '.join(missing)}: not rendered, "
                     f"must exist already)")
    lines.append(f"  3. kubectl apply -f {directory / 'all.yaml'}")
    if copies:
        lines.append("  4. make each Secret marked 'a copy of' once its operator has written the original (External "
                     "Secrets or a reflector keeps a copy current)")
    lines.append("  In another order the pods wait (CreateContainerConfigError, or ContainerCreating for a Secret "
                 "volume) until their Secrets exist.")
    return lines


def _program(entries: Sequence[Mapping[str, str]]) -> list[str]:
    lines = [PROGRAM_HEADING]
    for namespace, secret in dict.fromkeys((entry["namespace"], entry["secret"]) for entry in entries):
        lines.append(f"  Secret {namespace}/{secret}:")
        lines += [f"    {entry['key']}: {entry['value']}" for entry in entries
                  if (entry["namespace"], entry["secret"]) == (namespace, secret)]
    return lines


def _store(store: SecretStoreRef, entries: Sequence[Mapping[str, str]]) -> list[str]:
    lines = [f"The {store.kind} '{store.name}' must hold these keys (the rendered ExternalSecrets read them; "
             f"nothing secret is in the manifests):"]
    lines += [f"  {entry['remote_key']}: {entry['value']}  -> Secret {entry['namespace']}/{entry['secret']} "
              f"key {entry['key']}" for entry in entries]
    return lines


def _user(needed: Sequence[SecretToProvide]) -> list[str]:
    lines = [USER_HEADING]
    for secret in needed:
        optional = "; optional: they start without it" if secret.optional else ""
        lines.append(f"  Secret {secret.namespace}/{secret.name} (read by {', '.join(secret.readers)}{optional}):")
        lines += [f"    {key}" for key in secret.keys]
        if secret.whole:
            lines.append("    (and every other key it holds: read whole, by envFrom or a volume without items)")
        if secret.copy_of is not None:
            lines.append(f"    a copy of {secret.copy_of.namespace}/{secret.copy_of.name}, which "
                         f"{secret.copy_of.maker} writes once all.yaml is applied")
    return lines


def credentials_report(objects: Sequence[dict[str, Any]], entries: Sequence[Mapping[str, str]],
                       store: SecretStoreRef | None, withheld: Iterable[str], directory: Path) -> str:
    """The report: the order, the credentials `pulumi up` makes (or the keys the secret store must hold), the
    Secrets the config references, the Secrets operators make. `entries` is the stack's credential inventory,
    `withheld` the `namespace/name` of the Secrets the program registers and the render doesn't write, `directory`
    where the manifests are. Empty when there is nothing to say."""
    program_made = {(entry["namespace"], entry["secret"]) for entry in entries}
    program_made |= {(namespace, name) for namespace, _, name in (item.partition("/") for item in withheld)}
    needed = secrets_to_provide(objects, program_made)
    made = operator_made(objects)
    by_hand = [] if store is not None else list(entries)
    sections = []
    if by_hand or needed:
        namespaces = [entry["namespace"] for entry in by_hand] + [secret.namespace for secret in needed]
        copies = any(secret.copy_of for secret in needed)
        sections.append(_order(objects, namespaces, copies, store is not None, directory))
    if entries:
        sections.append(_store(store, entries) if store is not None else _program(entries))
    if needed:
        sections.append(_user(needed))
    if made:
        sections.append([OPERATOR_HEADING] + [f"  Secret {secret.namespace}/{secret.name}: {secret.maker}"
                                              for secret in made])
    return "\n".join("\n".join(lines) + "\n" for lines in sections)  # a blank line between sections


def placeholder_notes(paths: Iterable[str], objects: Sequence[dict[str, Any]], system: SystemConfig | None,
                      withheld: Iterable[str]) -> list[str]:
    """One note per encrypted config value (`project:key` path): the rendered objects that hold its `<secret ...>`
    placeholder, else the Secret that holds it at `pulumi up` (one of `withheld`, which the render doesn't write),
    else that nothing the render writes holds it."""
    texts = [(obj, json.dumps(obj, ensure_ascii=False)) for obj in objects]
    unwritten = set(withheld)
    held = {config_key: place for config_key, place in _credential_keys_by_config_key(system).items()
            if place[0] in unwritten}
    notes = []
    for path in paths:
        placeholder = secret_placeholder(path)
        where = [f"{obj['kind']} {obj.get('metadata', {}).get('namespace', '-')}/{obj['metadata']['name']}"
                 for obj, text in texts if placeholder in text]
        config_key = path.split(":", 1)[-1]
        if where:
            notes.append(f"note: {path} is encrypted; written as `<secret ...>` in {', '.join(where)} (pulumi up "
                         f"uses the real value)")
        elif config_key in held:
            secret, keys = held[config_key]
            notes.append(f"note: {path} is encrypted; not in the rendered files: only the Secret {secret} holds it "
                         f"(key{'s' if len(keys) > 1 else ''} {', '.join(keys)}), which the render doesn't write "
                         f"(pulumi up fills it with the real value)")
        else:
            notes.append(f"note: {path} is encrypted; not in the rendered files (nothing the render writes holds it)")
    return notes


def _credential_keys_by_config_key(system: SystemConfig | None) -> dict[str, tuple[str, list[str]]]:
    """Pulumi secret config key -> (`namespace/name` of the credentials Secret, its keys holding that value)."""
    if system is None:
        return {}
    secret = f"{system.monitoring.namespace}/{credentials_secret_name(system)}"
    held: dict[str, tuple[str, list[str]]] = {}
    for _, config_key, secret_key in system.monitoring.secret_references():
        held.setdefault(config_key, (secret, []))[1].append(secret_key)
    return held
