"""The exit-status rule: a user mistake is one line and 2, a runtime failure one line and 1.

Every case here fails before any network call, so no broker is needed. The expected
statuses are the README's rule written out, not read from `ingest.cli.main`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.cli import topics
from ingest.cli.main import main
from ingest.errors import (
    AuthenticationError,
    BrokerError,
    CommandError,
    ConfigError,
    DeliveryError,
    UsageError,
)
from ingest.kafka.errors import AuthorizationError, UnreachableError
from schemas.errors import SchemaError

REPO = Path(__file__).resolve().parents[4]
GOOD_KEY = "k3y-from-the-vault-0123456789"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "CONSENTGATE_KANON_PERSON_KEY",
        "CONSENTGATE_DEMO_MODE",
        "CONSENTGATE_METRICS_PORT",
        "CONSENTGATE_SECURITY_PROTOCOL",
        "CONSENTGATE_SASL_USERNAME",
        "CONSENTGATE_SASL_PASSWORD",
        "CONSENTGATE_SASL_PASSWORD_FILE",
        "CONSENTGATE_BOOTSTRAP_SERVERS",
        "KAFKA_BOOTSTRAP_SERVERS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONSENTGATE_RUN_DIR", str(tmp_path / "no-broker"))


def _consentgate(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    """Run the CLI in this process: (exit status, stderr lines)."""
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse mistakes leave through SystemExit
        status = int(exc.code or 0)
    return status, capsys.readouterr().err.splitlines()


USER_MISTAKES = [
    ("consent", "grant", "U", "--birth-year", "-5"),
    ("consent", "grant", "U", "--birth-year", "0"),
    ("consent", "grant", "U", "--birth-year", "9999"),
    ("consent", "grant", "U", "--birth-date", "3000-01-01"),
    ("consent", "grant", "U", "--birth-date", "1899-12-31"),
    ("consent", "grant", "U", "--birth-date", "2001-02-30"),
    ("consent", "grant", "U", "--birth-date", "2000-05-01", "--birth-year", "1999"),
    ("consent", "grant", "U", "--policy-version", "0"),
    ("consent", "grant", "U", "--policy-version", "99999999999999999999"),
    ("consent", "grant", "U", "--purpose", "analytics", "--at", "2999-01-01"),
    ("consent", "grant", "U", "--purpose", "analytics", "--at", "1969-12-31"),
    ("consent", "grant", "U", "--purpose", "analytics", "--timeout", "nan"),
    ("consent", "grant", "U", "--purpose", "analytics", "--timeout", "-1"),
    ("consent", "grant", "U", "--purpose", "analytics", "--change-id", ""),
    ("consent", "grant", "", "--purpose", "analytics"),
    ("consent", "grant", "U" * 513, "--purpose", "analytics"),
    ("consent", "grant", "U"),
    ("consent", "withdraw", "U", "--purpose", "no-such-purpose"),
    ("simulate", "--metrics-port", "70000"),
    ("simulate", "--metrics-port", "0"),
    ("simulate", "--rate", "inf"),
    ("simulate", "--rate", "0"),
    ("simulate", "--duration", "nan"),
    ("simulate", "--users", "0"),
    ("simulate", "--events", "-1"),
    ("simulate", "--out", "-", "--start", "1969-01-01"),
    ("topics", "create", "--partitions", "0"),
    ("topics", "create", "--partitions", "-3"),
    ("topics", "check", "--replication", "0"),
    ("topics", "check", "--bootstrap", "localhost:70000"),
    ("topics", "check"),  # no cluster given and no local broker
    ("run", "--workers", "0"),
    ("run", "--metrics-port", "70000"),
    ("run", "--metrics-port", "-1"),
    ("run", "--max-delay", "inf"),
    ("run", "--demo", "--k", "1"),
    ("run", "--demo", "--guardian-age", "19"),
    ("run", "--demo", "--workers", "2", "--metrics-port", "65535"),
    ("run", "--demo", "--policy", "no-such-policy.toml"),
    ("run",),  # no person key
    ("demo", "--metrics-port", "70000"),
    ("demo", "--workers", "3", "--metrics-port", "65534"),
    ("demo", "--k", "1"),
    ("demo", "--duration", "0"),
    ("tail", "device", "--timeout", "-1"),
    ("tail", "device", "--max", "-1"),
    ("tail", "raw.device-events"),
    ("broker", "start", "--port", "70000"),
    ("publish", "no-such-file.jsonl"),
    ("publish", "."),
    ("no-such-command",),
    ("consent",),
]


@pytest.mark.parametrize("argv", USER_MISTAKES, ids=" ".join)
def test_a_user_mistake_is_one_line_and_exit_status_2(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = _consentgate(capsys, *argv)
    assert status == 2, err
    assert len(err) == 1, err
    assert err[0].startswith("consentgate")
    assert "Traceback" not in err[0]


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (("consent", "grant", "U", "--birth-year", "-5"), "--birth-year"),
        (("consent", "grant", "U", "--birth-date", "3000-01-01"), "--birth-date"),
        (("consent", "grant", "U", "--purpose", "analytics", "--at", "2999-01-01"), "--at"),
        (("simulate", "--metrics-port", "70000"), "--metrics-port"),
        (("topics", "create", "--partitions", "0"), "--partitions"),
        (("run", "--max-delay", "inf"), "--max-delay"),
        (("run",), "CONSENTGATE_KANON_PERSON_KEY"),
    ],
)
def test_the_line_names_the_option_or_setting(
    argv: tuple[str, ...], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = _consentgate(capsys, *argv)
    assert status == 2 and named in err[0], err


def test_a_mistake_is_one_line_in_a_real_process_too() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ingest.cli.main", "simulate", "--metrics-port", "70000"],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_an_unknown_variable_stops_run_with_one_line_naming_it_never_its_value(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSENTGATE_KANON_PERSONKEY", GOOD_KEY)
    status, err = _consentgate(capsys, "run")
    assert status == 2 and len(err) == 1, err
    assert "CONSENTGATE_KANON_PERSONKEY" in err[0] and GOOD_KEY not in err[0]


def test_a_person_key_mistake_never_shows_the_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSENTGATE_KANON_PERSON_KEY", "changeme-changeme-changeme")
    status, err = _consentgate(capsys, "run")
    assert status == 2 and len(err) == 1
    assert "CONSENTGATE_KANON_PERSON_KEY" in err[0]
    assert "changeme" not in err[0]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (UsageError("bad option"), 2),
        (ConfigError("bad setting"), 2),
        (UnreachableError("cannot connect producer: KafkaTimeoutError"), 1),
        (DeliveryError("3 record(s) not delivered", failed=3), 1),
        (AuthorizationError("describe topics failed: TopicAuthorizationFailedError"), 1),
        (AuthenticationError("cannot connect: SaslAuthenticationFailedError"), 1),
        (BrokerError("the broker did not start"), 1),
        (CommandError("pipeline workers did not become ready"), 1),
        (SchemaError("schema file\nmissing"), 1),
        (PermissionError(13, "Permission denied", "/var/lib/x"), 1),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_each_error_class_maps_to_its_exit_status_and_one_line(
    error: Exception,
    status: int,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fail(args: argparse.Namespace) -> int:
        raise error

    monkeypatch.setattr(topics, "run", fail)
    got, err = _consentgate(capsys, "topics", "list")
    assert got == status
    assert len(err) == 1 and err[0].startswith("consentgate topics: "), err


def test_an_authentication_failure_names_the_principal_and_settings_never_the_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSENTGATE_SASL_USERNAME", "producer")
    monkeypatch.setenv("CONSENTGATE_SASL_PASSWORD", "w0rong-pa55word-xyz")

    def fail(args: argparse.Namespace) -> int:
        raise AuthenticationError("list topics failed: _AUTHENTICATION")

    monkeypatch.setattr(topics, "run", fail)
    status, err = _consentgate(capsys, "topics", "list")
    assert status == 1 and len(err) == 1
    assert "authentication failed for principal 'producer'" in err[0]
    assert "CONSENTGATE_SASL_USERNAME" in err[0] and "CONSENTGATE_SASL_PASSWORD" in err[0]
    assert "w0rong-pa55word-xyz" not in err[0]


def test_a_timeout_under_sasl_points_at_the_credentials_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSENTGATE_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("CONSENTGATE_SASL_USERNAME", "producer")

    def fail(args: argparse.Namespace) -> int:
        raise UnreachableError("cannot connect admin client: KafkaTimeoutError")

    monkeypatch.setattr(topics, "run", fail)
    status, err = _consentgate(capsys, "topics", "list")
    assert status == 1 and len(err) == 1
    assert "KafkaTimeoutError" in err[0] and "'producer'" in err[0]


def test_a_command_status_passes_through_unchanged(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(topics, "run", lambda args: 1)
    assert _consentgate(capsys, "topics", "list") == (1, [])
