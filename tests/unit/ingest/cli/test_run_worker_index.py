"""Each worker its own index: --worker-index, else CONSENTGATE_WORKER_INDEX (deploy files)."""

from __future__ import annotations

import pytest

from ingest.cli import run
from ingest.cli.main import build_parser


def _settings(argv: list[str]) -> int:
    args = build_parser([run]).parse_args(["run", "--demo", *argv])
    return run.worker_settings(args).worker_index


def test_the_environment_gives_the_index_when_the_flag_is_absent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONSENTGATE_WORKER_INDEX", "1")
    assert _settings([]) == 1
    assert _settings(["--worker-index", "2"]) == 2


def test_the_index_is_zero_when_neither_gives_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSENTGATE_WORKER_INDEX", raising=False)
    assert _settings([]) == 0
