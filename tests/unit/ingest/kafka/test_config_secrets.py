"""Kafka connection settings: password files, empty variables, placeholders, addresses."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.errors import ConfigError
from ingest.kafka.config import load_settings

PASSWORD = "f1le-pa55word-for-producer"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "CONSENTGATE_SASL_PASSWORD",
        "CONSENTGATE_SASL_PASSWORD_FILE",
        "CONSENTGATE_SASL_USERNAME",
        "CONSENTGATE_SASL_MECHANISM",
        "CONSENTGATE_BOOTSTRAP_SERVERS",
        "KAFKA_BOOTSTRAP_SERVERS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONSENTGATE_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("CONSENTGATE_SASL_USERNAME", "producer")


def _secret_file(tmp_path: Path, mode: int, text: str = PASSWORD) -> Path:
    path = tmp_path / "sasl-password"
    path.write_text(text + "\n", encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666])
def test_a_password_file_readable_by_group_or_others_is_refused_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    path = _secret_file(tmp_path, mode)
    monkeypatch.setenv("CONSENTGATE_SASL_PASSWORD_FILE", str(path))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert str(path) in message and f"chmod 600 {path}" in message
    assert PASSWORD not in message


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_an_owner_only_password_file_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    monkeypatch.setenv("CONSENTGATE_SASL_PASSWORD_FILE", str(_secret_file(tmp_path, mode)))
    settings = load_settings()
    assert settings.sasl_password is not None
    assert settings.sasl_password.get_secret_value() == PASSWORD


def test_an_empty_password_variable_does_not_override_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSENTGATE_SASL_PASSWORD", "")
    monkeypatch.setenv("CONSENTGATE_SASL_PASSWORD_FILE", str(_secret_file(tmp_path, 0o600)))
    settings = load_settings()
    assert settings.sasl_password is not None
    assert settings.sasl_password.get_secret_value() == PASSWORD


def test_an_empty_password_variable_alone_is_a_missing_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONSENTGATE_SASL_PASSWORD", "")
    with pytest.raises(ConfigError, match="SASL needs CONSENTGATE_SASL_USERNAME and a password"):
        load_settings()


def test_a_password_and_a_password_file_together_conflict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSENTGATE_SASL_PASSWORD", "an0ther-pa55word-xyz")
    monkeypatch.setenv("CONSENTGATE_SASL_PASSWORD_FILE", str(_secret_file(tmp_path, 0o600)))
    with pytest.raises(ConfigError, match="not both") as caught:
        load_settings()
    assert "an0ther-pa55word-xyz" not in str(caught.value)


def test_a_missing_password_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope"
    monkeypatch.setenv("CONSENTGATE_SASL_PASSWORD_FILE", str(missing))
    with pytest.raises(ConfigError, match=f"cannot read CONSENTGATE_SASL_PASSWORD_FILE {missing}"):
        load_settings()


@pytest.mark.parametrize(
    "password", ["changeme", "PLACEHOLDER", "password123", "0000000000000000", "secret"]
)
def test_a_placeholder_sasl_password_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    monkeypatch.setenv("CONSENTGATE_SASL_PASSWORD", password)
    with pytest.raises(ConfigError, match="placeholder") as caught:
        load_settings()
    assert password not in str(caught.value).replace("placeholder", "")


@pytest.mark.parametrize(
    "bootstrap", ["localhost:70000", "localhost:0", "localhost:", ":9092", "a:9092,b:99999"]
)
def test_a_bootstrap_port_outside_the_range_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, bootstrap: str
) -> None:
    monkeypatch.setenv("CONSENTGATE_SECURITY_PROTOCOL", "PLAINTEXT")
    with pytest.raises(ConfigError, match="bootstrap_servers"):
        load_settings(bootstrap_servers=bootstrap)


@pytest.mark.parametrize(
    "bootstrap", ["127.0.0.1:9092", "a:1,b:65535", "broker", "[::1]:9092", "PLAINTEXT://b:9092"]
)
def test_a_valid_bootstrap_list_is_kept(monkeypatch: pytest.MonkeyPatch, bootstrap: str) -> None:
    monkeypatch.setenv("CONSENTGATE_SECURITY_PROTOCOL", "PLAINTEXT")
    assert load_settings(bootstrap_servers=bootstrap).bootstrap_servers == bootstrap
