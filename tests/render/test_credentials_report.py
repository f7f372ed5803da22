"""The offline render's "what to create" report, followed as a new user would: its order works, it lists every
Secret the rendered workloads read, its notes about encrypted values say where they went, and the README's
examples name what the render creates."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.render.cli import CREDENTIALS_FILE
from components.render.stack_files import secret_placeholder

from ..conftest import PROJECT_DIR
from ..monitored_system import RAW
from .test_render import ENCRYPTED_ENVIRONMENT_STACK, project_copy, render

USER_HEADING = "Secrets your config references (create them yourself; the program never does):"
README = (PROJECT_DIR / "README.md").read_text()


def _render(tmp_path: Path, *args: str) -> tuple[Path, str, str, list[dict[str, Any]]]:
    """Render into tmp_path/out: (out, the listing file, stdout, the rendered objects)."""
    out = tmp_path / "out"
    result = render(*args, "--out", str(out))
    assert result.returncode == 0, result.stderr
    listing = (out / CREDENTIALS_FILE).read_text()
    assert listing.strip() in result.stdout  # printed and written alike
    return out, listing, result.stdout, [doc for doc in yaml.safe_load_all((out / "all.yaml").read_text()) if doc]


def _sections(listing: str) -> dict[str, list[str]]:
    """The listing's sections: each heading (a line not indented) with its indented lines."""
    sections: dict[str, list[str]] = {}
    heading = ""
    for line in listing.splitlines():
        if line and not line.startswith(" "):
            heading = line
            sections[heading] = []
        elif line:
            sections[heading].append(line)
    return sections


def _secrets(lines: list[str]) -> dict[str, list[str]]:
    """`namespace/name` of each `  Secret ...` line with the lines below it (up to the next Secret)."""
    found: dict[str, list[str]] = {}
    current = None
    for line in lines:
        match = re.match(r"  Secret (\S+?/\S+?)[: ]", line)
        if match:
            current = match.group(1)
            found[current] = [line]
        elif current is not None and line.startswith("    "):
            found[current].append(line)
        else:
            current = None
    return found


def _section(sections: dict[str, list[str]], start: str) -> list[str]:
    matching = [lines for heading, lines in sections.items() if heading.startswith(start)]
    assert matching, f"no section starting {start!r} in {list(sections)}"
    return matching[0]


def _namespace_files(out: Path) -> list[str]:
    return sorted(path.name for path in out.glob("*.yaml")
                  if path.name != "all.yaml" and yaml.safe_load(path.read_text())["kind"] == "Namespace")


def test_the_report_creates_the_namespaces_before_the_secrets_and_applies_all_yaml_last(tmp_path: Path) -> None:
    """`kubectl -n agents-dev create secret` fails until the namespace exists, and all.yaml is what creates it: the
    report's steps are namespace files (named as written), then the Secrets, then all.yaml."""
    out, listing, _, _ = _render(tmp_path, "--stack", "dev")
    assert "before `kubectl apply`" not in listing
    files = _namespace_files(out)
    assert files == ["001-namespace-agents-dev.yaml"]
    apply_namespaces = "kubectl apply " + " ".join(f"-f {out / name}" for name in files)
    create = "kubectl -n <namespace> create secret generic"
    apply_all = f"kubectl apply -f {out / 'all.yaml'}"
    positions = [listing.find(text) for text in (apply_namespaces, create, apply_all)]
    assert -1 not in positions and positions == sorted(positions), listing
    assert listing.find(apply_all) < listing.find("Secret agents-dev/multi-agent-system-monitoring-credentials")
    # The README tells the same order, with the file names the render writes.
    assert "001-namespace-agents-dev.yaml" in README and "kubectl apply -f build/manifests/001-namespace-" in README


def test_prod_report_lists_every_secret_the_workloads_read_and_who_makes_it(tmp_path: Path) -> None:
    out, listing, _, documents = _render(tmp_path, "--stack", "prod")
    sections = _sections(listing)
    program = _secrets(_section(sections, "Secrets `pulumi up` makes"))
    user = _secrets(sections[USER_HEADING])
    operators = _secrets(_section(sections, "Secrets operators make"))

    # What the config names and nothing creates, in every namespace that reads it, with its keys.
    llm = user["agents-orchestration/llm-credentials"]
    assert "    openai-api-key" in llm and "Deployment agents-orchestration/coordinator" in llm[0]
    assert "    anthropic-api-key" in llm and "    openai-api-key" in user["agents-research/llm-credentials"]
    assert "    api-key" in user["agents-research/search-credentials"]
    assert "    dsn" in user["agents-tools/warehouse-credentials"]
    assert "    ca.crt" in user["agents-orchestration/agents-kafka-cluster-ca"]
    # Made by an operator from a rendered object, so not the user's; a copy elsewhere is.
    assert "KafkaUser kafka/research-assistant-coordinator" in operators["kafka/research-assistant-coordinator"][0]
    assert "Cluster agents-research/agent-state" in operators["agents-research/agent-state-app"][0]
    copied = "\n".join(user["agents-orchestration/research-assistant-coordinator"])
    assert "    password" in copied and "copy of kafka/research-assistant-coordinator" in copied
    assert not set(user) & (set(program) | set(operators)), set(user) & (set(program) | set(operators))

    # Every Secret key a Deployment reads is somewhere in the report (an independent, simple scan).
    listed = {**program, **user, **operators}
    for doc in documents:
        if doc["kind"] != "Deployment":
            continue
        namespace, pod = doc["metadata"]["namespace"], doc["spec"]["template"]["spec"]
        refs = [(item["valueFrom"]["secretKeyRef"]["name"], item["valueFrom"]["secretKeyRef"]["key"])
                for container in pod["containers"] for item in container.get("env", [])
                if "secretKeyRef" in item.get("valueFrom", {})]
        refs += [(volume["secret"]["secretName"], item["key"]) for volume in pod.get("volumes", [])
                 if "secret" in volume for item in volume["secret"].get("items", [])]
        for name, key in refs:
            where = f"{namespace}/{name}"
            assert where in listed, f"{doc['metadata']['name']} reads {where}, which the report doesn't list"
            if where not in operators:
                assert any(line.strip().split(":")[0] == key for line in listed[where][1:]), (where, key)

    # The order names the namespaces the render doesn't create but the Secrets live in.
    order = "\n".join(_section(sections, "Order"))
    assert "monitoring" in order and "must exist" in order
    assert " ".join(f"-f {out / name}" for name in _namespace_files(out)) in order


def test_notes_about_encrypted_values_say_where_the_placeholder_is(tmp_path: Path) -> None:
    """The render writes no Secret, so an encrypted value only Secrets hold is nowhere in its files; the note says
    that (and which Secret pulumi up fills) instead of claiming a placeholder was written."""
    out, _, stdout, _ = _render(tmp_path, "--stack", "prod")
    assert "written as a placeholder" not in stdout
    assert not [path.name for path in out.iterdir() if path.suffix == ".yaml" and "<secret" in path.read_text()]
    note = next(line for line in stdout.splitlines() if line.startswith("note: multi-agent-system:slackWebhookUrl "))
    assert "not in the rendered files" in note
    assert "monitoring/research-assistant-monitoring-credentials" in note
    assert "oncall-slack-webhook-url" in note and "team-slack-webhook-url" in note


def test_an_encrypted_value_the_render_writes_is_noted_with_the_object_holding_it(tmp_path: Path) -> None:
    project = project_copy(tmp_path, "secret", ENCRYPTED_ENVIRONMENT_STACK)
    _, _, stdout, documents = _render(tmp_path, "--stack", "secret", "--project-dir", str(project))
    deployment = next(doc for doc in documents if doc["kind"] == "Deployment")
    where = f"Deployment {deployment['metadata']['namespace']}/{deployment['metadata']['name']}"
    path = "multi-agent-system:system.agents[0].environment.API_KEY"
    assert secret_placeholder(path) in str(deployment)
    assert f"note: {path} is encrypted; written as `<secret ...>` in {where}" in stdout


def _readme_remote_write_example() -> tuple[dict[str, Any], str]:
    """The kube-prometheus-stack values in the README's remote-write section, and the text around them."""
    start = README.index("### Prometheus remote-write in")
    section = README[start:README.index("\n### ", start + 1)]
    block = next(block for block in re.findall(r"```yaml\n(.*?)```", section, re.S) if "remoteWrite" in block)
    return yaml.safe_load(block)["prometheus"]["prometheusSpec"]["remoteWrite"][0], section


def test_the_readme_remote_write_example_names_the_secret_the_render_creates(tmp_path: Path) -> None:
    raw = copy.deepcopy(RAW)
    raw["monitoring"]["service"] = {"source": "remote_write"}
    raw["monitoring"]["receivers"] = []  # no Pulumi secrets to set
    project = project_copy(tmp_path, "rw", raw)
    _, listing, _, _ = _render(tmp_path, "--stack", "rw", "--project-dir", str(project))
    example, section = _readme_remote_write_example()
    credentials = example["authorization"]["credentials"]
    namespace = re.match(r"http://agent-monitoring\.([a-z0-9-]+)\.svc", example["url"]).group(1)
    program = _secrets(_section(_sections(listing), "Secrets `pulumi up` makes"))
    assert f"{namespace}/{credentials['name']}" in program, (credentials, list(program))
    assert any(line.startswith(f"    {credentials['key']}: ") for line in program[f"{namespace}/{credentials['name']}"])
    assert "Prometheus' namespace" in section and "<system name>-monitoring-remote-write" in section


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_readme_example_of_the_report_matches_its_headings(stack: str, tmp_path: Path) -> None:
    _, listing, _, _ = _render(tmp_path, "--stack", stack)
    for heading in _sections(listing):
        if heading.startswith(("Order", "Secrets `pulumi up` makes")):
            assert heading in README, f"update the README's report example: {heading}"


def test_with_a_secret_store_only_the_configs_own_secrets_are_created_by_hand(tmp_path: Path) -> None:
    """The store's ExternalSecrets make the program's Secrets (listed as the operator's); the order still puts the
    namespaces before the Secrets the config references."""
    raw = copy.deepcopy(RAW)
    raw["monitoring"]["receivers"] = []
    raw["monitoring"]["service"] = {}
    raw["monitoring"]["credentials"] = {"secret_store": {"name": "vault-backend", "kind": "ClusterSecretStore"}}
    raw["agents"][0]["secret_environment"] = {"OPENAI_API_KEY": {"secret": "llm", "key": "openai-api-key"}}
    project = project_copy(tmp_path, "gitops", raw)
    out, listing, _, _ = _render(tmp_path, "--stack", "gitops", "--project-dir", str(project))
    sections = _sections(listing)
    assert "2. create the Secrets under the heading \"Secrets your config references\"" in listing
    assert list(_secrets(sections[USER_HEADING])) == ["agents/llm"]
    operators = _secrets(_section(sections, "Secrets operators make"))
    assert "ExternalSecret monitoring/multi-agent-system-monitoring-credentials" in \
        operators["monitoring/multi-agent-system-monitoring-credentials"][0]
    assert not [heading for heading in sections if heading.startswith("Secrets `pulumi up` makes")]
    assert f"-f {out / '001-namespace-agents.yaml'}" in listing
