"""The imports of the project's own Python files, read statically (ast), for the dependency tests."""

from __future__ import annotations

import ast
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


def module_name(path: Path, root: Path = PROJECT_DIR) -> str:
    """`components/config/agent.py` -> `components.config.agent` (packages by their own name)."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, root: Path = PROJECT_DIR, members: bool = True) -> set[str]:
    """Every module name `path` imports, anywhere in the file (functions and TYPE_CHECKING blocks too).

    Relative imports are resolved; `from a import b` yields both `a` and `a.b`, since `b` may be
    a submodule (callers keep the names that are modules), or only `a` with `members=False`.
    """
    tree = ast.parse(path.read_text())
    name = module_name(path, root).split(".")
    package = name if path.name == "__init__.py" else name[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            if members:
                names |= {f"{module}.{alias.name}" for alias in node.names}
    return names


def module_file(name: str) -> Path | None:
    """The project file of module `name`, or None when it is not the project's own."""
    parts = name.split(".")
    for candidate in (PROJECT_DIR.joinpath(*parts).with_suffix(".py"), PROJECT_DIR.joinpath(*parts, "__init__.py")):
        if candidate.exists():
            return candidate
    return None


def own_imports(path: Path) -> set[str]:
    """The project's own modules that `path` imports (submodules named in `from a import b` included)."""
    return {module_name(found) for name in imported_names(path) if (found := module_file(name)) is not None}
