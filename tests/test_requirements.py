"""`pulumi up` installs only requirements.txt: every third-party module the program imports must be in it."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from .conftest import PROJECT_DIR

# Import name -> distribution name, where they differ.
DISTRIBUTIONS = {"yaml": "pyyaml", "pulumi_kubernetes": "pulumi-kubernetes", "pydantic_settings": "pydantic-settings",
                 "prometheus_client": "prometheus-client", "kubernetes_asyncio": "kubernetes-asyncio",
                 "google": "protobuf", "opentelemetry": "opentelemetry-proto"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                package = path.parent.relative_to(PROJECT_DIR).parts
                base = ".".join(package[: len(package) - node.level + 1])
                names.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                names.add(node.module)
    return names


def _module_file(name: str) -> Path | None:
    parts = name.split(".")
    for candidate in (PROJECT_DIR.joinpath(*parts).with_suffix(".py"), PROJECT_DIR.joinpath(*parts, "__init__.py")):
        if candidate.exists():
            return candidate
    return None


def program_third_party_imports(entry: str = "__main__.py") -> set[str]:
    """Top-level third-party modules reachable from `entry` through the project's own modules."""
    seen: set[Path] = set()
    pending = [PROJECT_DIR / entry]
    third_party: set[str] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            own = _module_file(name) or _module_file(name.rsplit(".", 1)[0])
            if own is not None:
                pending.append(own)
                package_init = _module_file(name.split(".")[0])  # importing a.b runs a/__init__.py too
                if package_init is not None:
                    pending.append(package_init)
            elif name.split(".")[0] not in sys.stdlib_module_names:
                third_party.add(name.split(".")[0])
    return third_party


def _listed(requirements: str) -> set[str]:
    return {re.split(r"[=<>~ ]", line.strip(), maxsplit=1)[0].lower()
            for line in (PROJECT_DIR / requirements).read_text().splitlines()
            if line.strip() and not line.startswith("#")}


def test_service_imports_are_all_in_its_image_requirements() -> None:
    """The Dockerfile installs only monitoring/requirements.txt."""
    imported = program_third_party_imports("monitoring/__main__.py")
    imported |= program_third_party_imports("monitoring/discovery.py")  # imported lazily when discovery is on
    assert {"aiohttp", "prometheus_client", "opentelemetry", "kubernetes_asyncio"} <= imported
    assert "pulumi" not in imported  # the service never imports pulumi
    listed = _listed("monitoring/requirements.txt")
    missing = sorted(name for name in imported if DISTRIBUTIONS.get(name, name).lower() not in listed)
    assert missing == [], f"add to monitoring/requirements.txt: {missing}"


def test_program_imports_are_all_in_requirements_txt() -> None:
    listed = _listed("requirements.txt")
    imported = program_third_party_imports()
    assert {"pulumi", "pydantic", "pydantic_settings", "yaml"} <= imported  # the walk reaches the monitoring model
    missing = sorted(name for name in imported if DISTRIBUTIONS.get(name, name).lower() not in listed)
    assert missing == [], f"add to requirements.txt: {missing}"
