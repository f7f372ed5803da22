"""An independent scanner over every rendered stack: checkov (`--framework kubernetes`) finds nothing
failed, and every check it skips carries the reason the program wrote on the object.

checkov can't share the project's virtualenv (its pins conflict with the Pulumi SDK's), so `./run test`
installs it into .venv-checkov; the test skips, saying why, when it isn't there (or set CHECKOV).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from components.render.cli import render_stack, write_output

from ..conftest import PROJECT_DIR, STACKS

CHECKOV = Path(os.environ.get("CHECKOV", PROJECT_DIR / ".venv-checkov" / "bin" / "checkov"))


@pytest.mark.parametrize("stack", STACKS)
def test_checkov_finds_nothing_and_every_skip_has_a_reason(stack: str, tmp_path: Path) -> None:
    if not CHECKOV.exists():
        pytest.skip(f"checkov not installed at {CHECKOV} (./run test installs it; or set CHECKOV)")
    out = tmp_path / stack
    write_output(render_stack(stack), out)
    scan = subprocess.run([str(CHECKOV), "-d", str(out), "--skip-path", "all.yaml", "--framework", "kubernetes",
                           "-o", "json"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    assert scan.returncode in (0, 1), scan.stderr[-2000:]  # 2: checkov itself failed
    report = json.loads(scan.stdout)
    report = report[0] if isinstance(report, list) else report
    results = report["results"]
    failed = [(check["check_id"], check["resource"]) for check in results.get("failed_checks", [])]
    assert failed == [], failed
    assert report["summary"]["passed"] > 100 and report["summary"]["failed"] == 0
    skipped = results.get("skipped_checks", [])
    assert len(skipped) == report["summary"]["skipped"] > 0  # e.g. the agents' OTLP headers from the environment
    for check in skipped:
        reason = check.get("check_result", {}).get("suppress_comment", "")
        assert reason and reason != "No comment provided", check["check_id"]

