"""Pipeline settings: the person key is the operator's own outside demo mode, and never shown."""

from __future__ import annotations

import secrets

import pytest

from consumers.settings import DEMO_PERSON_KEY, load_pipeline_settings
from ingest.errors import ConfigError

SETTING = "CONSENTGATE_KANON_PERSON_KEY"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SETTING, raising=False)
    monkeypatch.delenv("CONSENTGATE_DEMO_MODE", raising=False)


def test_a_missing_person_key_refuses_to_start_outside_demo_mode() -> None:
    with pytest.raises(ConfigError, match=f"{SETTING}.*is not set"):
        load_pipeline_settings()


# Refused keys, with the reason the message must give (written out by hand).
REFUSED = [
    (DEMO_PERSON_KEY, "public demo key"),
    ("0000000000000000", "placeholder"),
    ("0" * 40, "placeholder"),
    ("1234567890123456789", "placeholder"),
    ("changeme-changeme-changeme", "placeholder"),
    ("CHANGE_ME_CHANGE_ME_2024", "placeholder"),
    ("PLACEHOLDER", "placeholder"),
    ("password-password-123", "placeholder"),
    ("secret-key-example-123", "placeholder"),
    ("test test test test test", "placeholder"),
    ("short-key", "shorter than 16"),
    ("Zq8#vT2!pL", "shorter than 16"),
    ("k" * 32, "fewer than 10 distinct"),
    ("abcabcabcabcabcabcabcabc", "fewer than 10 distinct"),
    ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabcdefghij", "too predictable"),
]


@pytest.mark.parametrize(("key", "reason"), REFUSED)
def test_a_demo_placeholder_or_weak_key_is_refused_naming_the_setting_not_the_value(
    key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_pipeline_settings(kanon_person_key=key)
    message = str(caught.value)
    assert SETTING in message and reason in message
    assert key not in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "key",
    [
        "k3y-from-the-vault-0123456789",
        "correct horse battery staple",
        "TA4Mat8zfLMYZ9NKX_uXlo6X3xXm6cjvXUGJD_xN49o",  # secrets.token_urlsafe(32)
        "d00e4b2c93d425e23184bf4f7ad76114",  # secrets.token_hex(16)
        "0123456789abcdefghij",
    ],
)
def test_a_random_or_long_varied_key_is_accepted(key: str) -> None:
    assert load_pipeline_settings(kanon_person_key=key).person_key() == key.encode()


def test_demo_mode_uses_the_built_in_key() -> None:
    settings = load_pipeline_settings(demo_mode=True)
    assert settings.person_key() == DEMO_PERSON_KEY.encode()


def test_demo_mode_keeps_an_operator_key() -> None:
    key = secrets.token_urlsafe(24)
    assert load_pipeline_settings(demo_mode=True, kanon_person_key=key).person_key() == key.encode()


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SETTING, "")
    with pytest.raises(ConfigError, match="is not set"):
        load_pipeline_settings()
    monkeypatch.setenv("CONSENTGATE_K", "")
    assert load_pipeline_settings(demo_mode=True).k == 10  # the default, not a parse error


def test_a_real_key_from_the_environment_is_used_and_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "k3y-from-the-vault-0123456789"
    monkeypatch.setenv(SETTING, secret)
    settings = load_pipeline_settings()
    assert settings.person_key() == secret.encode()
    assert secret not in repr(settings) and secret not in str(settings.model_dump())


def test_contradictory_values_fail_with_one_clear_message() -> None:
    with pytest.raises(ConfigError, match="guardian_age"):
        load_pipeline_settings(demo_mode=True, guardian_age=19)
