"""`pulumi up` installs only requirements.txt: every third-party module the program imports must be in it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .imports import PROJECT_DIR, imported_names, module_file

# Import name -> distribution name, where they differ.
DISTRIBUTIONS = {"yaml": "pyyaml", "pulumi_kubernetes": "pulumi-kubernetes", "pydantic_settings": "pydantic-settings",
                 "prometheus_client": "prometheus-client", "kubernetes_asyncio": "kubernetes-asyncio",
                 "google": "protobuf", "opentelemetry": "opentelemetry-proto", "pulumi_random": "pulumi-random",
                 "re2": "google-re2"}


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
        for name in imported_names(path):
            own = module_file(name)
            if own is not None:
                pending.append(own)
                parts = name.split(".")  # importing a.b.c runs a/__init__.py and a/b/__init__.py too
                pending += [init for depth in range(1, len(parts)) if (init := module_file(".".join(parts[:depth])))]
            elif module_file(name.split(".")[0]) is None and name.split(".")[0] not in sys.stdlib_module_names:
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
