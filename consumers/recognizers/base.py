r"""The shape every recognizer shares: a regex, a validator beside it, and a cheap prefilter.

Every regex here (pattern, prefilter, context check) runs in time linear in the text,
whatever the text holds, by construction:

1. An unbounded repeat (`*`, `+`, `{n,}`) is possessive (`*+`, `++`, `{n,}+`): it never
   gives characters back, so a failed attempt scans its run once. A repeat that must give
   back (the e-mail domain's last label is its top-level domain) starts each iteration
   with a delimiter the iteration cannot hold and is followed by bounded items only.
2. An unbounded repeat starts a bounded distance after a required character it cannot
   consume (`=\s*+`), or after a lookbehind excluding its characters, so a run is scanned
   from a few start positions, not from each of its characters (`lat[A-Za-z]*` scanned
   "latlatlat..." once per `l`: quadratic).
3. No unbounded repeat sits inside another repeat.

Validators do constant work per match or work linear in the match. Adversarial inputs
and a check of these rules on every pattern: tests/unit/consumers/test_scrub_scaling.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

# A digit-based identifier cannot start or end inside a run of ASCII letters or digits.
# ASCII only on purpose: CJK characters are `\w` in Python and often sit right beside
# a phone number ("手机号13800138000"), which must still be found.
NOT_AFTER_ALNUM = r"(?<![0-9A-Za-z])"
NOT_BEFORE_ALNUM = r"(?![0-9A-Za-z])"
DIGITS = "0123456789"


@dataclass(frozen=True, slots=True)
class Finding:
    """One span of personal data: where it is, what it is, how specific the recognizer is."""

    start: int
    end: int
    entity: str
    priority: int


@dataclass(frozen=True, slots=True)
class Recognizer:
    """A pattern whose matches a validator confirms (and names), as Presidio's PatternRecognizer.

    `check` receives the match (its `.string` is the whole text, for context) and returns
    the entity to report, or None to reject the match. When a pattern has a group named
    `value`, only that group is reported, so a label such as `idfa=` stays readable.
    Two cheap gates run first (`may_hold`): a text holding none of the characters of
    `triggers` (when given) cannot hold this entity, nor can a text `prefilter` does not
    match.
    """

    entity: str
    patterns: tuple[re.Pattern[str], ...]
    check: Callable[[re.Match[str]], str | None]
    prefilter: re.Pattern[str]
    priority: int
    triggers: str = ""
    _any_trigger: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # One character-class search in C: a third cheaper than testing each trigger in a
        # generator (the scrubber asks every recognizer about every free-text value).
        gate = re.compile(f"[{re.escape(self.triggers)}]") if self.triggers else None
        object.__setattr__(self, "_any_trigger", gate)

    def may_hold(self, text: str) -> bool:
        """False when `text` certainly holds no finding: no trigger, or no prefilter match."""
        gate = self._any_trigger
        if gate is not None and gate.search(text) is None:
            return False
        return self.prefilter.search(text) is not None

    def find(self, text: str) -> Iterator[Finding]:
        """Yield every validated finding of this recognizer in `text`."""
        if self.may_hold(text):
            yield from self.findings(text)

    def findings(self, text: str) -> Iterator[Finding]:
        """`find` without the gates, for a caller that asked `may_hold` already."""
        for pattern in self.patterns:
            has_value_group = "value" in pattern.groupindex
            for match in pattern.finditer(text):
                entity = self.check(match)
                if entity is None:
                    continue
                start, end = match.span("value") if has_value_group else match.span()
                yield Finding(start, end, entity, self.priority)
