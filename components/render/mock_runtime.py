"""Run a Pulumi program in-process under Pulumi's mocks and record what it registers.

The mocks stand in for the engine and the Kubernetes provider: every resource the
program registers is recorded with the exact inputs the provider would receive, and is
"created" with those inputs as its state. Nothing here talks to a cluster or a backend.
"""

from __future__ import annotations

import os
import runpy
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pulumi
from google.protobuf import json_format
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.settings import get_root_resource, set_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from .stack_files import StackConfig


@dataclass
class Registration:
    """One resource the program registered."""

    type: str
    name: str
    inputs: dict[str, Any]
    custom: bool
    parent: str
    ignore_changes: list[str]
    secret_inputs: list[str]
    """Top-level inputs that hold a Pulumi secret (encrypted in state, hidden in previews)."""


RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that create every resource with its inputs as state (what a dry run would show)."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == RANDOM_PASSWORD:
            # Its value exists only once `pulumi up` creates it: unknown here, as in a real preview, so nothing
            # derived from it (a Secret's data, a token) can be written by the render.
            state.pop("result", None)
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class RecordingMonitor(MockMonitor):
    """The mock resource monitor, also keeping each registration's options (parent, ignoreChanges)."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            state = self.resources[response.urn].state if response.urn in self.resources else {}
            self.registrations.append(Registration(
                type=request.type, name=request.name, inputs=state, custom=bool(request.custom),
                parent=request.parent, ignore_changes=list(request.ignoreChanges),
                secret_inputs=_secret_inputs(request.object)))
        return response


def _secret_inputs(serialized: Any) -> list[str]:
    """Names of the inputs whose serialized value is, or contains, a secret."""
    def holds_secret(value: Any) -> bool:
        if isinstance(value, dict):
            return (value.get(rpc._special_sig_key) == rpc._special_secret_sig  # noqa: SLF001 (wire marker)
                    or any(holds_secret(item) for item in value.values()))
        if isinstance(value, list):
            return any(holds_secret(item) for item in value)
        return False

    inputs = json_format.MessageToDict(serialized)
    return sorted(name for name, value in inputs.items() if holds_secret(value))


def install_mocks(project: str, stack: str, config: StackConfig | None = None,
                  mocks: pulumi.runtime.Mocks | None = None, preview: bool = True) -> RecordingMonitor:
    """Point the Pulumi runtime at fresh recording mocks (and the stack's config, if given). Tests of what
    `pulumi up` creates pass mocks that act as the providers do, with `preview=False`."""
    _ensure_event_loop()  # Pulumi's runtime is sync-over-async; a caller may have closed its loop
    set_root_resource(None)  # type: ignore[arg-type]  # a fresh Stack per run
    mocks = mocks or RecordingMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview, monitor=monitor)
    values = config.values if config else {}
    pulumi.runtime.set_all_config(values, config.secret_keys if config else [])
    return monitor


@dataclass
class ProgramRun:
    """What one evaluation of a program produced."""

    registrations: list[Registration]
    exports: dict[str, Any]


def run_program(program: Path, config: StackConfig) -> ProgramRun:
    """Evaluate `program` (a Pulumi `__main__.py`) under mocks with the stack's config.

    Exceptions from the program (including `pulumi.RunError` for invalid config) propagate
    after the runtime has settled.
    """
    monitor = install_mocks(config.project, config.stack, config)
    with _program_directory(program.parent):
        _sync_await(run_pulumi_func(lambda: runpy.run_path(str(program), run_name="__main__")))
    root = get_root_resource()
    raw_exports = dict(getattr(root, "outputs", {}) or {})
    exports = {key: _sync_await(pulumi.Output.from_input(value).future()) for key, value in raw_exports.items()}
    return ProgramRun(monitor.registrations, exports)


@contextmanager
def _program_directory(directory: Path) -> Iterator[None]:
    """Run as `pulumi` does: from the project directory, with it importable."""
    previous_cwd = os.getcwd()
    sys.path.insert(0, str(directory))
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(previous_cwd)
        sys.path.remove(str(directory))
