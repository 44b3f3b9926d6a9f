"""Pipeline settings: secrets are required outside demo mode and never shown."""

from __future__ import annotations

import pytest

from consumers.settings import DEMO_PERSON_KEY, load_pipeline_settings
from ingest.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSENTGATE_KANON_PERSON_KEY", raising=False)
    monkeypatch.delenv("CONSENTGATE_DEMO_MODE", raising=False)


def test_a_missing_person_key_refuses_to_start_outside_demo_mode() -> None:
    with pytest.raises(ConfigError, match="kanon_person_key is missing or a placeholder"):
        load_pipeline_settings()


@pytest.mark.parametrize("placeholder", ["changeme", "PLACEHOLDER", "short-key"])
def test_a_placeholder_or_short_key_is_refused(placeholder: str) -> None:
    with pytest.raises(ConfigError):
        load_pipeline_settings(kanon_person_key=placeholder)


def test_demo_mode_uses_the_built_in_key() -> None:
    settings = load_pipeline_settings(demo_mode=True)
    assert settings.person_key() == DEMO_PERSON_KEY.encode()


def test_a_real_key_from_the_environment_is_used_and_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "k3y-from-the-vault-0123456789"
    monkeypatch.setenv("CONSENTGATE_KANON_PERSON_KEY", secret)
    settings = load_pipeline_settings()
    assert settings.person_key() == secret.encode()
    assert secret not in repr(settings) and secret not in str(settings.model_dump())


def test_contradictory_values_fail_with_one_clear_message() -> None:
    with pytest.raises(ConfigError, match="guardian_age"):
        load_pipeline_settings(demo_mode=True, guardian_age=19)
