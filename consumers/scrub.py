"""Free-text scrubbing: personal data hidden in log messages and URLs becomes type tokens.

`scrub` runs every recognizer of `consumers.recognizers.RECOGNIZERS` (each skips the
text at once when its prefilter finds nothing), resolves overlapping findings (longer
wins, then the more specific entity) and replaces each kept span by `<ENTITY>`.
A text with nothing to replace comes back as the same object. Pure: no state, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consumers.recognizers import RECOGNIZERS, Finding, Recognizer

MAX_PASSES = 8


@dataclass(frozen=True, slots=True)
class ScrubResult:
    """The scrubbed text and how many spans of each entity type were replaced."""

    text: str
    found: dict[str, int] = field(default_factory=dict)


def token(entity: str) -> str:
    """The placeholder that replaces a span of `entity`, e.g. `<IMEI>`."""
    return f"<{entity}>"


def find(text: str, recognizers: tuple[Recognizer, ...] = RECOGNIZERS) -> list[Finding]:
    """Non-overlapping findings in `text`, in text order (longest, then most specific, wins)."""
    candidates = [finding for rec in recognizers for finding in rec.find(text)]
    if len(candidates) <= 1:
        return candidates
    candidates.sort(key=lambda f: (f.start - f.end, -f.priority, f.start))
    kept: list[Finding] = []
    for candidate in candidates:
        if all(candidate.end <= k.start or candidate.start >= k.end for k in kept):
            kept.append(candidate)
    kept.sort(key=lambda f: f.start)
    return kept


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
