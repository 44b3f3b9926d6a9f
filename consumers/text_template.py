"""Free text as analysts may see it: a template, then a category (SPEC section 7).

A scrubbed log message still singles people out by its numbers, ids and quoted
values ("queue depth 729 of 5034"). `template` masks each of them with `<*>`,
so "queue depth 729 of 5034" and "queue depth 12 of 80" become one value that
many persons share. `category` is the next rung up: the template's first line
up to its first colon (an exception class, an event name), or its first words.
Both are linear in the text and capped in size. Pure: no state, no I/O.
"""

from __future__ import annotations

import re

MASK = "<*>"
MAX_TEMPLATE_LINES = 8
"""A stack trace keeps its first lines: the exception and the frames nearest to it."""
MAX_TEMPLATE_CHARS = 512
"""Longer templates are cut here (and end with `...`)."""
MAX_CATEGORY_CHARS = 100
CATEGORY_WORDS = 3

_MASKED = re.compile(
    r"'[^'\n]{0,200}'"  # a quoted value
    r'|"[^"\n]{0,200}"'
    r"|\b0[xX][0-9A-Fa-f]+\b"  # a hex literal
    r"|\b(?=\w*\d\w*\d)\w+"  # a word with two or more digits: ids, builds, order numbers
    r"|(?<!\w)[-+]?\d+(?:[.,]\d+)*"  # a number, version or decimal on its own
)
_REPEATED = re.compile(r"<\*>(?:[.:/_-]?<\*>)+")


def template(text: str) -> str:
    """`text` with every number, hex literal, quoted value and id-like word masked."""
    lines = text.split("\n", MAX_TEMPLATE_LINES)[:MAX_TEMPLATE_LINES]
    head = "\n".join(line.rstrip() for line in lines)
    if len(head) > 4 * MAX_TEMPLATE_CHARS:
        head = head[: 4 * MAX_TEMPLATE_CHARS]
    masked = _REPEATED.sub(MASK, _MASKED.sub(MASK, head))
    if len(masked) > MAX_TEMPLATE_CHARS:
        masked = masked[: MAX_TEMPLATE_CHARS - 3] + "..."
    return masked


def category(text: str) -> str:
    """The coarse kind of a template: its first line up to a colon, or its first words."""
    first = text.split("\n", 1)[0].strip()
    head, colon, _rest = first.partition(":")
    if colon and head.strip() and len(head) <= MAX_CATEGORY_CHARS:
        return head.strip()
    return " ".join(first.split()[:CATEGORY_WORDS])[:MAX_CATEGORY_CHARS]
