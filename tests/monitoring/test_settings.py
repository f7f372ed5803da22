"""Settings: defaults, file, environment (MONITORING_ prefix), CLI errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitoring.settings import SettingsError, load_settings

PROJECT_DIR = Path(__file__).resolve().parents[2]


def test_defaults_run_on_a_laptop(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert (settings.host, settings.port, settings.collection_interval) == ("127.0.0.1", 8000, 15.0)
    assert settings.auth.missing() == ["admin_token", "read_token", "ingest_key"] and settings.alertmanager.url is None
    assert settings.local  # so the scopes are open: nothing to set up on a laptop


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "settings.yaml"
    file.write_text("collection_interval: 30\nalertmanager: {url: 'http://am:9093'}\n")
    monkeypatch.setenv("MONITORING_COLLECTION_INTERVAL", "1")
    monkeypatch.setenv("MONITORING_API_TOKEN", "t0ken-of-sixteen-chars")  # the admin token's former name
    monkeypatch.setenv("MONITORING_HEALTH__LOST_AFTER", "60")
    settings = load_settings(file, port=9000)
    assert settings.collection_interval == 1.0
    admin = settings.auth.admin_token
    assert admin is not None and admin.get_secret_value() == "t0ken-of-sixteen-chars"
    assert str(settings.alertmanager.url) == "http://am:9093/"
    assert settings.health.lost_after == 60.0 and settings.port == 9000


def test_bad_file_names_the_fields(tmp_path: Path) -> None:
    file = tmp_path / "settings.yaml"
    file.write_text("collection_interval: -1\nalert_rules: [{rule_id: r, metric: m, threshold: 1, operator: '=>'}]\n"
                    "colection_interval: 3\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(file)
    message = str(caught.value)
    assert "collection_interval: Input should be greater than 0" in message
    assert "alert_rules.0.operator" in message
    assert "colection_interval: Extra inputs are not permitted" in message


def test_cli_rejects_bad_settings_without_traceback(tmp_path: Path) -> None:
    file = tmp_path / "settings.yaml"
    file.write_text("port: 99999\n")
    result = subprocess.run([sys.executable, "-m", "monitoring", "--config", str(file)], cwd=PROJECT_DIR,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "port: Input should be less than or equal to 65535" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_help() -> None:
    result = subprocess.run([sys.executable, "-m", "monitoring", "--help"], cwd=PROJECT_DIR, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "MONITORING_" in result.stdout and "--config" in result.stdout
