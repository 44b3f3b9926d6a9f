"""Free-text scrubbing: personal data hidden in log messages and URLs becomes type tokens.

`scrub` runs every recognizer of `consumers.recognizers.RECOGNIZERS` (each skips the
text at once when its prefilter finds nothing), resolves overlapping findings (longer
wins, then the more specific entity) and replaces each kept span by `<ENTITY>`.
A text with nothing to replace comes back as the same object. `scrub` is pure: no
state, no I/O; `CleanTextMemo` wraps it with a bounded memory of the clean texts.

The work is linear in the length of the text, whatever it holds: every recognizer's
regexes are structurally linear (see `consumers.recognizers.base`) and overlaps are
resolved in time linear in the total length of the findings. Free text longer than
`MAX_TEXT_CHARS` (64 KiB characters) is never scrubbed: the anonymizer withholds such a
field (releases it as None, reason `too_long`) instead of scrubbing part of it or
releasing it unscrubbed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from consumers.recognizers import RECOGNIZERS, Finding, Recognizer

MAX_PASSES = 8
MAX_TEXT_CHARS = 64 * 1024
"""Longest free-text value the anonymizer scrubs; a longer one is withheld, never released."""
CLEAN_MEMO_TEXTS = 4096
"""Clean texts a `CleanTextMemo` remembers before it starts over."""
CLEAN_MEMO_MAX_CHARS = 1024
"""Longest text a `CleanTextMemo` remembers: at most 4 Mi characters in all."""


@dataclass(frozen=True, slots=True)
class ScrubResult:
    """The scrubbed text and how many spans of each entity type were replaced."""

    text: str
    found: dict[str, int] = field(default_factory=dict)


def token(entity: str) -> str:
    """The placeholder that replaces a span of `entity`, e.g. `<IMEI>`."""
    return f"<{entity}>"


def _rank(finding: Finding) -> tuple[int, int, int]:
    return (finding.start - finding.end, -finding.priority, finding.start)


def resolve_overlaps(candidates: list[Finding]) -> list[Finding]:
    """The findings that win over every overlapping one, in text order.

    Ranked longest first, then higher priority, then earlier start, each candidate is
    kept unless it overlaps one kept before it. `covered` marks the characters of kept
    spans, so a non-empty candidate is checked by one scan of its own span; the findings
    of one pattern never overlap each other, so these scans add up to at most the text
    length per pattern. An empty span has no character: it loses only to a kept span
    strictly around it (its position is covered but is not where that span starts), and
    it ranks after every non-empty span, so it never blocks one.
    """
    if len(candidates) <= 1:
        return list(candidates)
    ranked = sorted(candidates, key=_rank)
    covered = bytearray(max(f.end for f in ranked) + 1)
    kept_starts: set[int] = set()
    kept: list[Finding] = []
    for finding in ranked:
        start, end = finding.start, finding.end
        if start < end:
            if covered.find(1, start, end) >= 0:
                continue
            covered[start:end] = b"\x01" * (end - start)
            kept_starts.add(start)
        elif covered[start] and start not in kept_starts:
            continue
        kept.append(finding)
    kept.sort(key=lambda f: f.start)
    return kept


def find(text: str, recognizers: tuple[Recognizer, ...] = RECOGNIZERS) -> list[Finding]:
    """Non-overlapping findings in `text`, in text order (longest, then most specific, wins)."""
    candidates: list[Finding] = []
    for rec in recognizers:
        if rec.may_hold(text):  # most skip here, without making a generator
            candidates.extend(rec.findings(text))
    return resolve_overlaps(candidates)


def _replace(text: str, findings: list[Finding], found: dict[str, int]) -> str:
    parts: list[str] = []
    position = 0
    for finding in findings:
        parts.append(text[position : finding.start])
        parts.append(token(finding.entity))
        found[finding.entity] = found.get(finding.entity, 0) + 1
        position = finding.end
    parts.append(text[position:])
    return "".join(parts)


def scrub(text: str, recognizers: tuple[Recognizer, ...] = RECOGNIZERS) -> ScrubResult:
    """Replace every recognized personal-data span of `text` by its type token.

    A token is a word boundary, so a replacement can expose a span that was glued to
    the replaced one (`2001:db8::1alice@example.com`); scrub repeats until a pass finds
    nothing, which makes it idempotent. No pattern matches `<` or `>`, so each pass
    shrinks the untokenized text and the loop ends; `MAX_PASSES` bounds it anyway.
    """
    findings = find(text, recognizers)
    if not findings:
        return ScrubResult(text, {})
    found: dict[str, int] = {}
    for _ in range(MAX_PASSES):
        text = _replace(text, findings, found)
        findings = find(text, recognizers)
        if not findings:
            break
    return ScrubResult(text, found)


class CleanTextMemo:
    """A scrubber that remembers the texts it found nothing in, and answers those at once.

    Free text repeats: a URL template names a page, not a visit, and log messages come
    from a few format strings. Only a text with nothing to replace is remembered: by the
    scrubber's own judgment it holds no personal data, and it is released as it is. A
    text with findings is scrubbed again each time and never kept. Bounded: at most
    CLEAN_MEMO_TEXTS texts of at most CLEAN_MEMO_MAX_CHARS characters (then it starts
    over), and a lookup hashes the text once, so the work stays linear in its length.
    Its answers equal the scrubber's.
    """

    def __init__(
        self,
        scrubber: Callable[[str], ScrubResult] = scrub,
        texts: int = CLEAN_MEMO_TEXTS,
        max_chars: int = CLEAN_MEMO_MAX_CHARS,
    ) -> None:
        self._scrubber = scrubber
        self._texts = texts
        self._max_chars = max_chars
        self._clean: set[str] = set()

    def __call__(self, text: str) -> ScrubResult:
        """`scrubber(text)`, without scrubbing a remembered clean text again."""
        short = len(text) <= self._max_chars
        if short and text in self._clean:
            return ScrubResult(text, {})
        result = self._scrubber(text)
        if short and not result.found:
            if len(self._clean) >= self._texts:
                self._clean.clear()
            self._clean.add(text)
        return result

    def __contains__(self, text: object) -> bool:
        return text in self._clean

    def __len__(self) -> int:
        return len(self._clean)
