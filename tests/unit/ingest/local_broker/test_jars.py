"""The jar cache's key: what the pom asks for, not how it is commented."""

from __future__ import annotations

from pathlib import Path

from ingest.local_broker.jars import POM_PATH, pom_digest


def _variant(tmp_path: Path, name: str, old: str, new: str) -> Path:
    text = POM_PATH.read_text()
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1))
    return path


def test_a_comment_edit_keeps_the_cached_jars(tmp_path: Path) -> None:
    edited = _variant(tmp_path, "comment.xml", "<!--", "<!-- another remark, and")
    assert pom_digest(edited) == pom_digest(POM_PATH)


def test_another_dependency_version_gets_its_own_folder(tmp_path: Path) -> None:
    version = POM_PATH.read_text().split("<kafka.version>", 1)[1].split("<", 1)[0]
    bumped = _variant(tmp_path, "bumped.xml", f">{version}<", f">{version}.1<")
    assert pom_digest(bumped) != pom_digest(POM_PATH)
