"""Offline render: evaluate `__main__.py` under Pulumi mocks for a stack and write its objects as YAML.

    python -m components.render --stack dev --out build/manifests

Same program, same config, same objects as `pulumi preview` / `pulumi up`; only the engine
and the Kubernetes provider are replaced by mocks, so no cluster, CLI or account is needed.
Invalid config prints the validation messages, exits 1 and writes nothing.

The render writes no Secret: credentials exist only at `pulumi up`. It prints the Secrets and keys to
create (or, with `monitoring.credentials.secret_store`, the keys the store must hold for the ExternalSecrets it
renders), the Secrets the config references that nothing creates, those operators make, and the order that
works (Namespace files, Secrets, all.yaml), and writes that report to CREDENTIALS_FILE beside the manifests.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

from ..config import ConfigError, SystemConfig
from .credentials_report import credentials_report, placeholder_notes
from .diagram import system_of_values, write_diagrams
from .manifests import kubernetes_objects, preview_table, withheld_secrets, write_manifests
from .mock_runtime import run_program
from .stack_files import StackFileError, read_stack_config

PROJECT_DIR = Path(__file__).resolve().parents[2]
# Marks a directory as the render's own, so re-rendering may replace it (and nothing else).
MARKER = ".rendered-by-multi-agent-system"
# The credentials to provide, beside the manifests (not .yaml: `kubectl apply -f <dir>` must not read it).
CREDENTIALS_FILE = "credentials-to-create.txt"
CREDENTIALS_EXPORT = "monitoring_credentials"

EXIT_INVALID_CONFIG = 1
EXIT_USAGE = 2


class RenderError(Exception):
    """The render could not run; `exit_code` says why (1 invalid config, 2 usage/files)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Rendered:
    """The objects of one stack, in apply order, and the stack's exports."""

    stack: str
    objects: list[dict[str, Any]]
    exports: dict[str, Any]
    secret_placeholders: list[str]
    system: SystemConfig | None = None  # the validated config (for the pictures)
    withheld: list[str] = field(default_factory=list)  # `namespace/name` of the Secrets not written

    def credentials_report(self, directory: Path) -> str:
        """What to provide when applying the manifests written to `directory`, in an order that works (see
        credentials_report.py). Empty when the stack needs nothing."""
        store = self.system.monitoring.credentials.secret_store if self.system is not None else None
        return credentials_report(self.objects, self.exports.get(CREDENTIALS_EXPORT) or [], store, self.withheld,
                                  directory)

    def placeholder_notes(self) -> list[str]:
        """Where each encrypted config value went: a rendered object's `<secret ...>` placeholder, or nowhere."""
        return placeholder_notes(self.secret_placeholders, self.objects, self.system, self.withheld)


def render_stack(stack: str, project_dir: Path = PROJECT_DIR) -> Rendered:
    """Evaluate the program for `stack`; raise RenderError on bad files or invalid config."""
    try:
        config = read_stack_config(project_dir, stack)
    except StackFileError as error:
        raise RenderError(str(error), EXIT_USAGE) from None
    try:
        run = run_program(project_dir / "__main__.py", config)
    except (pulumi.RunError, ConfigError, pulumi.ConfigMissingError) as error:
        raise RenderError(str(error), EXIT_INVALID_CONFIG) from None
    system = system_of_values(config.values, project_dir)  # valid: the program took it
    return Rendered(stack, kubernetes_objects(run.registrations), run.exports, config.placeholders, system,
                    withheld_secrets(run.registrations))


def write_output(rendered: Rendered, out: Path) -> None:
    """Replace `out` with the rendered files; refuse to touch a directory the render didn't make."""
    if out.exists() and not out.is_dir():
        raise RenderError(f"{out} is a file; --out needs a directory", EXIT_USAGE)
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise RenderError(f"{out} exists and was not written by the render; choose another --out "
                          f"or empty it first", EXIT_USAGE)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        write_manifests(rendered.objects, staging)
        report = rendered.credentials_report(out)
        if report:
            (staging / CREDENTIALS_FILE).write_text(report)
        if rendered.system is not None:
            write_diagrams(rendered.system, staging)
        (staging / MARKER).write_text(f"stack: {rendered.stack}\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m components.render",
        description="Render a stack's Kubernetes objects offline (Pulumi mocks; no cluster or Pulumi CLI).")
    parser.add_argument("--stack", default="dev", help="stack name: reads Pulumi.<stack>.yaml (default: dev)")
    parser.add_argument("--out", type=Path, default=Path("build/manifests"),
                        help="output directory, replaced on each render (default: build/manifests)")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR,
                        help="directory holding Pulumi.yaml (default: this project)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary line")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        rendered = render_stack(args.stack, args.project_dir.resolve())
        write_output(rendered, args.out)
    except RenderError as error:
        print(f"render of stack '{args.stack}' failed:\n{error}", file=sys.stderr)
        return error.exit_code
    table = preview_table(rendered.objects)
    print(table.splitlines()[-1] if args.quiet else f"Stack {rendered.stack}:\n{table}")
    if not args.quiet:
        print("\nOutputs:\n" + yaml.safe_dump(rendered.exports, sort_keys=True, width=120).rstrip())
    report = rendered.credentials_report(args.out)
    if report:
        print("\n" + report.rstrip() + f"\n(also in {args.out / CREDENTIALS_FILE})")
    for note in rendered.placeholder_notes():
        print(note)
    extra = f", {CREDENTIALS_FILE}" if report else ""
    print(f"\nwrote {len(rendered.objects)} files, all.yaml{extra} and system.svg (.dot, .mmd) to {args.out}")
    return 0
