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


def module_file(name: str, root: Path = PROJECT_DIR) -> Path | None:
    """The project file of module `name`, or None when it is not the project's own."""
    parts = name.split(".")
    for candidate in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
        if candidate.exists():
            return candidate
    return None


def own_imports(path: Path, root: Path = PROJECT_DIR) -> set[str]:
    """The project's own modules that `path` imports (submodules named in `from a import b` included)."""
    return {module_name(found, root) for name in imported_names(path, root)
            if (found := module_file(name, root)) is not None}


def imported_members(path: Path, root: Path = PROJECT_DIR) -> set[tuple[str, str]]:
    """(module, name) of every `from module import name` in `path`, relative imports resolved."""
    name = module_name(path, root).split(".")
    package = name if path.name == "__init__.py" else name[:-1]
    members: set[tuple[str, str]] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            members |= {(module, alias.name) for alias in node.names}
    return members


def defined_names(path: Path) -> set[str]:
    """Names a module defines or imports at its top level (also inside top-level if/try blocks)."""
    names: set[str] = set()
    pending = list(ast.parse(path.read_text()).body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {name.id for target in node.targets for name in ast.walk(target) if isinstance(name, ast.Name)}
            if any(isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets):
                # Names a module exports lazily (module __getattr__) are listed in a literal __all__.
                names |= {item.value for item in ast.walk(node.value)
                          if isinstance(item, ast.Constant) and isinstance(item.value, str)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.If, ast.Try)):
            pending += [*node.body, *node.orelse, *getattr(node, "finalbody", []),
                        *(item for handler in getattr(node, "handlers", []) for item in handler.body)]
    return names
