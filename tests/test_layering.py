"""The layers of ARCHITECTURE.md, checked on every import of every module (read with ast, so
imports inside functions and TYPE_CHECKING blocks count too).

    config -> builders (kubernetes, istio, prometheus, kafka, keda, data; independent of each other)
           -> components (registration, pulumi_config, the three ComponentResources) -> render

A module may import its own layer and the layers before it, never a later one; and the
project's own modules form no import cycle.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from .imports import (PROJECT_DIR, defined_names, imported_members, imported_names, module_file, module_name,
                      own_imports)

BUILDERS = ("components.kubernetes", "components.istio", "components.prometheus", "components.kafka",
            "components.keda", "components.data", "components.secrets")
COMPONENTS = ("components.registration", "components.pulumi_config", "components.agent_deployment",
              "components.agent_mesh", "components.monitoring_stack")
# Third-party packages each layer may use (beyond the standard library and the project's own).
ALLOWED_THIRD_PARTY = {
    "components.config": {"pydantic", "re2"},  # re2: routing-rule regexes checked by Envoy's engine
    "builders": {"yaml"},
    "components": {"pulumi", "pulumi_kubernetes", "pulumi_random", "yaml"},
    "render": {"pulumi", "yaml", "pydantic", "google"},
}


def _layer(module: str) -> str:
    if module == "components" or module.startswith("components.config"):
        return "components.config"
    if module.startswith(BUILDERS):
        return "builders"
    if module in COMPONENTS:
        return "components"
    if module.startswith("components.render"):
        return "render"
    if module.startswith("monitoring"):
        return "monitoring"
    raise AssertionError(f"{module} is in no layer; add it to tests/test_layering.py")


ORDER = ["components.config", "builders", "components", "render"]
SERVICE_MODULES_FOR_THE_POD = {"monitoring.settings", "monitoring.credentials"}


def _python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (PROJECT_DIR / folder).rglob("*.py"))


def _project_modules() -> dict[str, set[str]]:
    return {module_name(path): own_imports(path) for path in _python_files("components", "monitoring")}


def _api(module: str) -> str:
    return ".".join(module.split(".")[:2])


def layer_violations(path: Path, root: Path = PROJECT_DIR) -> list[str]:
    """What is wrong with the project imports of one `components` module, one line each."""
    module = module_name(path, root)
    layer = _layer(module)
    found = []
    for imported in sorted(own_imports(path, root) - {module}):
        if imported.startswith("monitoring"):
            # The monitoring pod's settings are produced by the service's own settings model, and the
            # agents' ingestion tokens by the service's own derivation.
            if module != "components.kubernetes.monitoring_pod" or imported not in SERVICE_MODULES_FOR_THE_POD:
                found.append(f"{module} imports {imported}; only the monitoring pod builder may use the service's "
                             f"settings and credentials")
            continue
        imported_layer = _layer(imported)
        if ORDER.index(imported_layer) > ORDER.index(layer):
            found.append(f"{module} ({layer}) imports {imported} ({imported_layer}), a later layer")
        elif layer == imported_layer == "builders" and _api(imported) != _api(module):
            found.append(f"{module} imports {imported}: builders of one API never import another's; move the "
                         f"shared fact to components/config")
    return found


@pytest.mark.parametrize("path", _python_files("components"), ids=lambda path: module_name(path))
def test_components_import_only_earlier_layers(path: Path) -> None:
    assert layer_violations(path) == []


@pytest.mark.parametrize("path", _python_files("components"), ids=lambda path: module_name(path))
def test_layers_use_only_their_libraries(path: Path) -> None:
    layer = _layer(module_name(path))
    third_party = {name.split(".")[0] for name in imported_names(path)} - set(sys.stdlib_module_names)
    third_party -= {"components", "monitoring", "__future__"}
    extra = sorted(third_party - ALLOWED_THIRD_PARTY[layer])
    assert extra == [], f"{module_name(path)} ({layer}) imports {extra}"


def test_monitoring_never_imports_the_program() -> None:
    for path in _python_files("monitoring"):
        roots = {name.split(".")[0] for name in imported_names(path)}
        assert not roots & {"pulumi", "pulumi_kubernetes", "components"}, f"{module_name(path)} imports {roots}"


def test_no_product_module_imports_the_render_tooling() -> None:
    product = [path for path in _python_files("components") if _layer(module_name(path)) != "render"]
    product.append(PROJECT_DIR / "__main__.py")
    for path in product:
        assert not any(name.startswith("components.render") for name in own_imports(path)), path


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles of a module graph, each as the list of modules around it."""
    cycles = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(graph.get(module, set()) - {module}):
            # A submodule importing its own package (`from . import sibling`) while the package's
            # __init__ re-exports it is not a cycle between modules.
            if module.startswith(imported + "."):
                continue
            if state.get(imported) == 1:
                cycles.append(path[path.index(imported):] + [imported])
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return cycles


def test_no_import_cycles() -> None:
    cycles = find_cycles(_project_modules())
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_the_checks_catch_a_layer_violation(tmp_path: Path) -> None:
    """The rules above can fail: a config module importing a builder, builders of two APIs, a cycle."""
    for package in ("components/config", "components/kubernetes", "components/istio"):
        (tmp_path / package).mkdir(parents=True)
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "components/kubernetes/workload.py").write_text("def deployment(): ...\n")
    (tmp_path / "components/config/bad.py").write_text("from ..kubernetes.workload import deployment\n")
    (tmp_path / "components/istio/bad.py").write_text("from ..kubernetes import workload\n")
    assert layer_violations(tmp_path / "components/config/bad.py", tmp_path) == [
        "components.config.bad (components.config) imports components.kubernetes.workload (builders), a later layer"]
    assert layer_violations(tmp_path / "components/istio/bad.py", tmp_path)[-1].startswith(
        "components.istio.bad imports components.kubernetes.workload: builders of one API never import another's")
    assert find_cycles({"a.model": {"a.analysis"}, "a.analysis": {"a.model"}, "a": {"a.model"}}) == [
        ["a.model", "a.analysis", "a.model"]]


def test_every_import_of_the_project_resolves() -> None:
    """Benchmarks, tests and the program import modules and names by path, some inside functions:
    a move must update them all."""
    files = _python_files("components", "monitoring", "benchmarks", "tests", "examples") + [PROJECT_DIR / "__main__.py"]
    dangling = []
    for path in files:
        for name in imported_names(path, members=False):
            if name.split(".")[0] in ("components", "monitoring", "tests") and module_file(name) is None:
                dangling.append(f"{module_name(path)}: module {name}")
        for module, member in imported_members(path):
            source = module_file(module)
            if module.split(".")[0] in ("components", "monitoring", "tests") and source is not None \
                    and member not in defined_names(source) and module_file(f"{module}.{member}") is None:
                dangling.append(f"{module_name(path)}: {member} from {module}")
    assert dangling == []


def test_only_pulumi_config_reads_the_pulumi_config() -> None:
    readers = []
    for path in _python_files("components") + [PROJECT_DIR / "__main__.py"]:
        if module_name(path) in ("components.pulumi_config",) or module_name(path).startswith("components.render"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "Config" and \
                    isinstance(node.value, ast.Name) and node.value.id == "pulumi":
                readers.append(f"{module_name(path)}:{node.lineno}")
        if ("pulumi", "Config") in imported_members(path):
            readers.append(module_name(path))
    assert readers == [], "read config through components.pulumi_config"
