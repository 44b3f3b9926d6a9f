"""A one-line progress display on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Redraws `label: done/total (rate/s)` at most a few times a second."""

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None):
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.done = 0
        self._start = time.monotonic()
        self._last = 0.0

    def advance(self, n: int = 1, **extra: object) -> None:
        """Count n more items and redraw if due."""
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._last >= 0.2:
            self._last = now
            self._draw(now, extra)

    def _draw(self, now: float, extra: dict[str, object]) -> None:
        elapsed = max(now - self._start, 1e-6)
        total = f"/{self.total}" if self.total else ""
        tail = "".join(f"  {k}={v}" for k, v in extra.items())
        rate = self.done / elapsed
        self.stream.write(f"\r{self.label}: {self.done}{total} ({rate:,.0f}/s){tail}\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        """End the progress line."""
        if self.enabled:
            self._draw(time.monotonic(), {})
            self.stream.write("\n")
            self.stream.flush()
