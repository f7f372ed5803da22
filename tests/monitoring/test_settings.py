"""Settings: defaults, file, environment (MONITORING_ prefix), CLI errors."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
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


# Item 14: start-up messages name the setting and its environment variable; flags apply before the check.

def test_a_short_or_empty_credential_names_the_setting_and_its_environment_variable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITORING_AUTH__ADMIN_TOKEN", "")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert ("auth.admin_token (MONITORING_AUTH__ADMIN_TOKEN): must be at least 16 characters" in message
            and "generate one with `openssl rand -hex 24`" in message), message
    assert "- settings:" not in message and "Value error" not in message, message
    monkeypatch.delenv("MONITORING_AUTH__ADMIN_TOKEN")
    monkeypatch.setenv("MONITORING_API_TOKEN", "short")  # the admin token's former name
    with pytest.raises(SettingsError, match=r"api_token \(MONITORING_API_TOKEN\): must be at least 16") as caught:
        load_settings()
    assert "- settings:" not in str(caught.value)
    monkeypatch.delenv("MONITORING_API_TOKEN")
    (tmp_path / "read-token").write_text("tiny\n")  # a mounted Secret's file
    file = tmp_path / "settings.yaml"
    file.write_text(f"credentials_dir: {tmp_path}\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(file)
    message = str(caught.value)
    assert (f"auth.read_token (MONITORING_AUTH__READ_TOKEN, or the file {tmp_path / 'read-token'}): must be at "
            f"least 16 characters") in message and "- settings:" not in message, message


def test_the_host_flag_rescues_a_file_or_environment_that_listens_everywhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "settings.yaml"
    file.write_text("host: 0.0.0.0\n")
    with pytest.raises(SettingsError, match=r"listening on 0\.0\.0\.0 .*MONITORING_AUTH__ADMIN_TOKEN"):
        load_settings(file)
    settings = load_settings(file, host="127.0.0.1")
    assert settings.host == "127.0.0.1" and settings.local
    monkeypatch.setenv("MONITORING_HOST", "0.0.0.0")  # the environment beats the file; the flag beats both
    assert load_settings(file, host="127.0.0.1").local
    with pytest.raises(SettingsError) as caught:
        load_settings(host="0.0.0.0")
    assert "- settings:" not in str(caught.value) and "auth.read_token (MONITORING_AUTH__READ_TOKEN)" in str(caught.value)
    with pytest.raises(SettingsError, match=r"port: Input should be less than or equal to 65535"):
        load_settings(port=70000)  # flags are validated like every other setting


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_cli_host_flag_rescues_a_settings_file_that_listens_everywhere(tmp_path: Path) -> None:
    file = tmp_path / "settings.yaml"
    file.write_text("host: 0.0.0.0\n")
    refused = subprocess.run([sys.executable, "-m", "monitoring", "--config", str(file)], cwd=PROJECT_DIR,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "MONITORING_AUTH__INGEST_KEY" in refused.stderr, refused.stderr
    port = _free_port()
    service = subprocess.Popen([sys.executable, "-m", "monitoring", "--config", str(file), "--host", "127.0.0.1",
                                "--port", str(port)], cwd=PROJECT_DIR, stderr=subprocess.PIPE, text=True)
    try:
        assert service.stderr is not None
        # The service logs where it listens once it does (read line by line: no sleeps).
        lines = []
        for line in service.stderr:
            lines.append(line)
            if "listening on" in line or len(lines) > 200:
                break
        assert f"listening on http://127.0.0.1:{port}" in "".join(lines), "".join(lines)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=10) as answer:
            assert answer.status == 200
    finally:
        service.terminate()
        service.wait(timeout=30)
