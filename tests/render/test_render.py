"""The offline render end to end: the real command, on every stack file in the repo and on broken ones."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.render.cli import CREDENTIALS_EXPORT, CREDENTIALS_FILE, MARKER, RenderError, render_stack
from components.render.stack_files import secret_placeholder

from ..conftest import PROJECT_DIR, STACKS
from ..crd import validate_custom_resource
from ..monitored_system import RAW


def render(*args: str, cwd: Path = PROJECT_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "components.render", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(PROJECT_DIR), "PATH": "/usr/bin:/bin"})


def project_copy(tmp_path: Path, stack: str, system: dict[str, Any] | str) -> Path:
    """A project directory with this repo's program and one extra stack file."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(PROJECT_DIR / name, project / name)
    body = system if isinstance(system, str) else yaml.safe_dump({"config": {"multi-agent-system:system": system}})
    (project / f"Pulumi.{stack}.yaml").write_text(body)
    return project


def floats_in(value: Any, path: str = "") -> list[str]:
    if isinstance(value, float):
        return [path]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in floats_in(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in floats_in(item, f"{path}[{index}]")]
    return []


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_renders(stack: str, tmp_path: Path) -> None:
    out = tmp_path / "manifests"
    result = render("--stack", stack, "--out", str(out))
    assert result.returncode == 0, result.stderr
    documents = [doc for doc in yaml.safe_load_all((out / "all.yaml").read_text()) if doc]
    files = sorted(path for path in out.glob("*.yaml") if path.name != "all.yaml")
    assert len(files) == len(documents) > 0
    # One file per object, identical to its document in all.yaml, in apply order.
    assert [yaml.safe_load(path.read_text()) for path in files] == documents
    kinds = [doc["kind"] for doc in documents]
    assert kinds[0] == "Namespace" and kinds.index("Deployment") > kinds.index("ServiceAccount")
    assert all(kind != "Namespace" for kind in kinds[kinds.count("Namespace"):])
    # Integers stay integers through the engine's float-only wire format.
    assert [path for doc in documents for path in floats_in(doc)] == []
    # The preview table lists every object and the count per kind.
    assert f"{len(documents)} objects: " in result.stdout
    assert f"{kinds.count('Deployment')} Deployment" in result.stdout
    assert (out / MARKER).exists()


def test_dev_stack_is_the_embedded_default(tmp_path: Path) -> None:
    out = tmp_path / "manifests"
    result = render("--out", str(out))
    assert result.returncode == 0, result.stderr
    deployments = [doc for doc in yaml.safe_load_all((out / "all.yaml").read_text()) if doc["kind"] == "Deployment"]
    roles = sorted(doc["metadata"]["labels"]["component"] for doc in deployments)
    assert roles == ["coordinator", "monitoring", "worker", "worker"]  # 3 agents and the monitoring pod
    assert "Outputs:" in result.stdout and "service_host: coordinator.agents-dev.svc.cluster.local" in result.stdout


def test_prod_stack_is_a_realistic_production_system(tmp_path: Path) -> None:
    out = tmp_path / "manifests"
    assert render("--stack", "prod", "--out", str(out)).returncode == 0
    documents = list(yaml.safe_load_all((out / "all.yaml").read_text()))
    deployments = [doc for doc in documents if doc["kind"] == "Deployment"]
    assert len(deployments) >= 10
    roles = {doc["metadata"]["labels"]["component"] for doc in deployments}
    assert len(roles) >= 5
    assert all(not doc["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":latest")
               for doc in deployments)
    assert {doc["kind"] for doc in documents} >= {"ResourceQuota", "LimitRange", "HorizontalPodAutoscaler",
                                                  "VirtualService", "DestinationRule", "AuthorizationPolicy",
                                                  "PeerAuthentication", "Sidecar", "ServiceEntry", "NetworkPolicy"}
    # The render shows a canary and a blue-green agent.
    names = {doc["metadata"]["name"] for doc in deployments}
    assert {"researcher", "researcher-canary", "summarizer-blue", "summarizer-green"} <= names
    routes = next(doc for doc in documents if doc["kind"] == "VirtualService"
                  and doc["metadata"]["name"] == "researcher")["spec"]["http"]
    assert [(dest["destination"]["subset"], dest["weight"]) for dest in routes[-1]["route"]] == [("stable", 95),
                                                                                              ("canary", 5)]


def test_invalid_config_exits_non_zero_and_writes_nothing(tmp_path: Path) -> None:
    broken = {"agents": [{"agent_id": "Bad_Id", "image": "x/a", "scalling": {}},
                         {"agent_id": "b", "image": "x/b", "resources": {"cpu_request": "2", "cpu_limit": "1"}}]}
    project = project_copy(tmp_path, "broken", broken)
    out = tmp_path / "out"
    result = render("--stack", "broken", "--out", str(out), "--project-dir", str(project))
    assert result.returncode == 1
    assert "agents[0].agent_id: 'Bad_Id' is not a valid agent id" in result.stderr
    assert "agents[0].scalling: unknown field; did you mean 'scaling'?" in result.stderr
    # The sound agent's own rule is reported in the same run.
    assert "agents[1].resources.cpu_request: '2' is above cpu_limit '1'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not out.exists()


def test_cross_field_problems_also_stop_the_render(tmp_path: Path) -> None:
    broken = {"agents": [{"agent_id": "b", "image": "x/b", "resources": {"cpu_request": "2", "cpu_limit": "1"}}]}
    project = project_copy(tmp_path, "broken", broken)
    result = render("--stack", "broken", "--out", str(tmp_path / "out"), "--project-dir", str(project))
    assert result.returncode == 1
    assert "agents[0].resources.cpu_request: '2' is above cpu_limit '1'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_stack_lists_the_known_ones(tmp_path: Path) -> None:
    result = render("--stack", "nope", "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "no stack file Pulumi.nope.yaml" in result.stderr and "dev" in result.stderr


# A stack whose agent reads an encrypted Pulumi config value into its environment.
ENCRYPTED_ENVIRONMENT_STACK = """
config:
  multi-agent-system:system:
    agents:
      - agent_id: a
        image: x/a
        environment:
          API_KEY:
            secure: v1:c2VjcmV0IGlzIG5vdCBkZWNyeXB0ZWQ=
"""


def test_encrypted_values_become_placeholders(tmp_path: Path) -> None:
    project = project_copy(tmp_path, "secret", ENCRYPTED_ENVIRONMENT_STACK)
    out = tmp_path / "out"
    result = render("--stack", "secret", "--out", str(out), "--project-dir", str(project))
    assert result.returncode == 0, result.stderr
    deployment = next(doc for doc in yaml.safe_load_all((out / "all.yaml").read_text()) if doc["kind"] == "Deployment")
    env = {item["name"]: item.get("value") for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    placeholder = secret_placeholder("multi-agent-system:system.agents[0].environment.API_KEY")
    assert env["API_KEY"] == placeholder
    assert "v1:c2Vj" not in (out / "all.yaml").read_text()
    note = "agents[0].environment.API_KEY is encrypted; written as `<secret ...>` in Deployment agents/a"
    assert note in result.stdout


def test_render_replaces_its_own_output_but_not_foreign_directories(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert render("--out", str(out)).returncode == 0
    (out / "stale.yaml").write_text("old")
    assert render("--out", str(out)).returncode == 0
    assert not (out / "stale.yaml").exists()

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    result = render("--out", str(foreign))
    assert result.returncode == 2 and "was not written by the render" in result.stderr
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_out_must_be_a_directory(tmp_path: Path) -> None:
    target = tmp_path / "file.yaml"
    target.write_text("mine")
    result = render("--out", str(target))
    assert result.returncode == 2 and "needs a directory" in result.stderr
    assert target.read_text() == "mine"


def test_missing_secret_config_is_a_clear_error(tmp_path: Path) -> None:
    raw = copy.deepcopy(RAW)
    project = project_copy(tmp_path, "nosecret", raw)
    result = render("--stack", "nosecret", "--out", str(tmp_path / "out"), "--project-dir", str(project))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    # Reported at the field naming it, before any object is registered (no partial deployment).
    assert ("monitoring.receivers[0].slack.webhook_url_secret: names the Pulumi secret 'slackUrl', which is not "
            "set; run `pulumi config set --secret slackUrl <value>`") in result.stderr
    assert "monitoring.receivers[0].pagerduty.routing_key_secret: names the Pulumi secret 'pdKey'" in result.stderr
    assert not (tmp_path / "out").exists()


def test_missing_secret_stops_the_program_before_any_object(tmp_path: Path, registered_kinds: list[str]) -> None:
    with pytest.raises(RenderError, match="slackUrl"):
        render_stack("nosecret", project_copy(tmp_path, "nosecret", copy.deepcopy(RAW)))
    assert registered_kinds == []
    render_stack("dev")  # the spy sees what a good config registers
    assert "kubernetes:apps/v1:Deployment" in registered_kinds


def test_readme_shows_what_the_dev_render_prints(tmp_path: Path) -> None:
    result = render("--stack", "dev", "--out", str(tmp_path / "out"), "--quiet")
    assert result.returncode == 0, result.stderr
    summary = result.stdout.splitlines()[0]
    assert " objects: " in summary, result.stdout
    assert summary in (PROJECT_DIR / "README.md").read_text(), f"update the README's render example: {summary}"


def _monitoring_secret_references(documents: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(namespace, Secret, key) of every monitoring credential a rendered workload reads."""
    found = set()
    for doc in documents:
        if doc["kind"] != "Deployment":
            continue
        namespace, pod = doc["metadata"]["namespace"], doc["spec"]["template"]["spec"]
        for container in pod["containers"]:
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    found.add((namespace, ref["name"], ref["key"]))
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                found |= {(namespace, volume["secret"]["secretName"], item["key"])
                          for item in volume["secret"].get("items", [])}
    return {ref for ref in found if ref[1].startswith("multi-agent-system-monitoring-")}


def test_the_render_writes_no_credential_and_lists_the_secrets_to_create(tmp_path: Path) -> None:
    """Applying the render must not hand anyone a working credential: no Secret is written (their values exist
    only at pulumi up), and every Secret and key the workloads read is listed (stdout, a file, the outputs)."""
    out = tmp_path / "manifests"
    result = render("--stack", "dev", "--out", str(out))
    assert result.returncode == 0, result.stderr
    manifests = "".join(path.read_text() for path in out.glob("*.yaml"))
    documents = [doc for doc in yaml.safe_load_all((out / "all.yaml").read_text()) if doc]
    assert [doc for doc in documents if doc["kind"] == "Secret"] == []
    for text in ("generated by", "RandomPassword", "mi2.", "stringData"):  # no placeholder, token or Secret data
        assert text not in manifests, text
    listing = (out / CREDENTIALS_FILE).read_text()
    assert listing.strip() in result.stdout
    needed = _monitoring_secret_references(documents)
    assert {key for _, _, key in needed} >= {"api-token", "read-token", "ingest-key", "otlp-headers"}
    exported = {(entry["namespace"], entry["secret"], entry["key"])
                for entry in render_stack("dev").exports[CREDENTIALS_EXPORT]}
    assert needed <= exported
    for namespace, secret, key in needed:
        assert f"Secret {namespace}/{secret}:" in listing and f"    {key}: " in listing
    assert "openssl rand -hex 24" in listing and "python -m monitoring.credentials agents-dev" in listing


def test_with_a_secret_store_the_render_writes_external_secrets_for_every_credential(tmp_path: Path) -> None:
    """GitOps: with monitoring.credentials.secret_store every monitoring Secret a workload reads (the credentials,
    each agent namespace's ingestion token, Prometheus' remote-write token) is an ExternalSecret against that
    store, valid for the External Secrets Operator's CRD; the store's keys are listed."""
    raw = copy.deepcopy(RAW)
    raw["monitoring"]["service"] = {"source": "remote_write"}
    raw["monitoring"]["credentials"] = {"secret_store": {"name": "vault-backend", "kind": "ClusterSecretStore"}}
    project = project_copy(tmp_path, "gitops", raw)
    out = tmp_path / "out"
    result = render("--stack", "gitops", "--out", str(out), "--project-dir", str(project))
    assert result.returncode == 0, result.stderr
    documents = [doc for doc in yaml.safe_load_all((out / "all.yaml").read_text()) if doc]
    assert [doc for doc in documents if doc["kind"] == "Secret"] == []
    external = [doc for doc in documents if doc["kind"] == "ExternalSecret"]
    for doc in external:
        validate_custom_resource(doc)
        assert doc["spec"]["secretStoreRef"] == {"name": "vault-backend", "kind": "ClusterSecretStore"}
    made = {(doc["metadata"]["namespace"], doc["spec"]["target"]["name"], key) for doc in external
            for key in (doc["spec"]["target"].get("template", {}).get("data")
                        or [item["secretKey"] for item in doc["spec"]["data"]])}
    needed = _monitoring_secret_references(documents) | {
        ("monitoring", "multi-agent-system-monitoring-remote-write", "token")}  # Prometheus reads it
    assert needed <= made, needed - made
    listing = (out / CREDENTIALS_FILE).read_text()
    for doc in external:
        for item in doc["spec"]["data"]:
            assert f"  {item['remoteRef']['key']}: " in listing
    assert "ClusterSecretStore 'vault-backend'" in listing and listing.strip() in result.stdout
