"""Pipeline settings: the person key is the operator's own, never shown; unknown keys stop."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from pydantic import ValidationError

from consumers.settings import (
    DEMO_PERSON_KEY,
    PipelineSettings,
    load_pipeline_settings,
    unknown_settings,
)
from ingest.errors import ConfigError

SETTING = "CONSENTGATE_KANON_PERSON_KEY"
REPO = Path(__file__).resolve().parents[3]
VARIABLE = re.compile(r"\bCONSENTGATE_[A-Z0-9_]*[A-Z0-9]")


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


def test_an_unknown_keyword_is_refused_naming_the_key_never_its_value() -> None:
    secret = "k3y-from-the-vault-0123456789"
    with pytest.raises(ConfigError) as caught:
        load_pipeline_settings(demo_mode=True, kanon_person_secret=secret)
    message = str(caught.value)
    assert message.startswith("unknown pipeline setting: kanon_person_secret")
    assert secret not in message and "\n" not in message


def test_a_misspelt_keyword_names_the_nearest_setting() -> None:
    with pytest.raises(ConfigError) as caught:
        load_pipeline_settings(demo_mode=True, kanon_max_delay=5, commit_intrval_ms=4)
    message = str(caught.value)
    assert "commit_intrval_ms (did you mean commit_interval_ms?)" in message
    assert "kanon_max_delay (did you mean kanon_max_delay_ms?)" in message


def test_a_settings_dict_with_an_unknown_key_is_refused_by_the_model_too() -> None:
    with pytest.raises(ValidationError, match="no_such_setting"):
        PipelineSettings.model_validate({"demo_mode": True, "no_such_setting": 1})


def test_a_misspelt_person_key_variable_is_named_not_reported_as_a_missing_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "k3y-from-the-vault-0123456789"
    monkeypatch.setenv("CONSENTGATE_KANON_PERSONKEY", secret)
    with pytest.raises(ConfigError) as caught:
        load_pipeline_settings()
    message = str(caught.value)
    assert "CONSENTGATE_KANON_PERSONKEY (did you mean CONSENTGATE_KANON_PERSON_KEY?)" in message
    assert "is not set" not in message and secret not in message


def test_a_variable_nothing_reads_is_refused_and_an_empty_one_counts_as_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONSENTGATE_NO_SUCH_THING", "")
    assert load_pipeline_settings(demo_mode=True).k == 10
    monkeypatch.setenv("CONSENTGATE_NO_SUCH_THING", "1")
    with pytest.raises(ConfigError, match="unknown pipeline setting: CONSENTGATE_NO_SUCH_THING"):
        load_pipeline_settings(demo_mode=True)


# Every CONSENTGATE_* variable the code, the docs and the deploy manifests use, written
# out by hand: the pipeline's, the Kafka connection's, and those read directly.
USED_VARIABLES = [
    "CONSENTGATE_BOOTSTRAP_SERVERS",
    "CONSENTGATE_CLIENT",
    "CONSENTGATE_CLIENT_ID",
    "CONSENTGATE_SECURITY_PROTOCOL",
    "CONSENTGATE_SASL_MECHANISM",
    "CONSENTGATE_SASL_USERNAME",
    "CONSENTGATE_SASL_PASSWORD",
    "CONSENTGATE_SASL_PASSWORD_FILE",
    "CONSENTGATE_TOPIC_PREFIX",
    "CONSENTGATE_RUN_DIR",
    "CONSENTGATE_CACHE",
    "CONSENTGATE_TEST_DOCKER",
    "CONSENTGATE_GROUP_ID",
    "CONSENTGATE_WORKER_INDEX",
    "CONSENTGATE_TRANSACTIONAL_ID_PREFIX",
    "CONSENTGATE_K",
    "CONSENTGATE_KANON_MAX_DELAY_MS",
    "CONSENTGATE_KANON_MAX_HELD",
    "CONSENTGATE_KANON_GROUPING",
    "CONSENTGATE_KANON_PERSON_KEY",
    "CONSENTGATE_MIN_POLICY_VERSION",
    "CONSENTGATE_GUARDIAN_AGE",
    "CONSENTGATE_RESIDENCY_ALLOW",
    "CONSENTGATE_RESIDENCY_RECHECK_MS",
    "CONSENTGATE_METRICS_HOST",
    "CONSENTGATE_METRICS_PORT",
    "CONSENTGATE_DEMO_MODE",
    "consentgate_k",  # read case-insensitively, like the settings themselves
]


def test_every_variable_the_project_uses_is_known() -> None:
    assert unknown_settings((), environ=dict.fromkeys(USED_VARIABLES, "x")) == []


def test_every_variable_named_in_the_code_docs_or_manifests_is_known() -> None:
    texts = [*REPO.glob("*.md"), REPO / "tests" / "conftest.py"]
    for pattern in ("deploy/**/*.*", "ingest/**/*.py", "consumers/**/*.py", "benchmarks/*.py"):
        texts += REPO.glob(pattern)
    named = {m for path in texts for m in VARIABLE.findall(path.read_text(encoding="utf-8"))}
    assert {"CONSENTGATE_SASL_PASSWORD_FILE", "CONSENTGATE_TOPIC_PREFIX"} <= named
    assert unknown_settings((), environ=dict.fromkeys(named, "x")) == []
