"""The worker process's garbage-collector settings."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from consumers.runtime import GC_YOUNG_THRESHOLD, tune_gc_for_streaming


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_gc")
def test_tuning_freezes_what_exists_and_spaces_young_collections() -> None:
    _young, middle, old = gc.get_threshold()
    kept = [object() for _ in range(10)]
    tune_gc_for_streaming()
    assert gc.get_freeze_count() > len(kept)
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, middle, old)
