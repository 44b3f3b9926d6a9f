"""Scrubbing cost per KB on adversarial free text of 10 KB, 100 KB and 1 MB.

A linear scrubber shows about the same µs/KB in every column; a quadratic step shows
a cost per KB that grows tenfold per column (issue 13: 100 KB of e-mail addresses
took 9 s). Times are CPU time of this process (process_time), best of `--repeat`
runs. The fields the anonymizer scrubs are capped at `MAX_TEXT_CHARS` (64 KiB); the
1 MB column shows what an uncapped caller of `scrub` would pay.

    python -m benchmarks.scrub_scaling [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from consumers.scrub import scrub

SIZES_KB = (10, 100, 1000)
INPUTS: dict[str, str] = {
    "e-mails back to back": "alice@example.com ",
    "phone inside each e-mail": "13800138000@139.com ",
    "IMEIs": "490154203237518 ",
    "IPv6 addresses": "2001:db8::8a2e:370:7334 ",
    "IPv4 inside IPv6": "::ffff:192.0.2.1 ",
    "labelled ad ids": "idfa=6D92078A-8246-4BA4-AE5B-76104861E7DC ",
    "labelled coordinates": "lat=39.90 ",
    "log line, mixed": "imei=490154203237518 mac=3C:22:FB:12:34:56 ip 10.20.30.40 "
    "user alice@example.com lat=39.9042 ",
    "one run of digits": "1",
    "one run of hex": "deadbeef",
    "colons": ":",
    "the word latlatlat...": "lat",
}


def field(unit: str, kilobytes: int) -> str:
    """`unit` repeated to about `kilobytes` KB (one dot ahead, so every prefilter runs)."""
    return "." + unit * max(1, kilobytes * 1000 // len(unit))


def per_kb_us(fn: Callable[[str], Any], text: str, repeat: int) -> float:
    """Best CPU time of `fn(text)` over `repeat` runs, in µs per KB of text."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn(text)
        best = min(best, time.process_time() - start)
    return best * 1e6 / (len(text) / 1000)


def run(
    fn: Callable[[str], Any] = scrub,
    sizes_kb: tuple[int, ...] = SIZES_KB,
    repeat: int = 3,
) -> list[dict[str, Any]]:
    """One row per input: its µs/KB at each size."""
    rows = []
    for name, unit in INPUTS.items():
        row: dict[str, Any] = {"input": name}
        for kilobytes in sizes_kb:
            row[f"{kilobytes}KB"] = round(per_kb_us(fn, field(unit, kilobytes), repeat), 1)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Time every input at every size and print a table (or JSON)."""
    parser = argparse.ArgumentParser(prog="benchmarks.scrub_scaling", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = run(repeat=args.repeat)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    columns = [f"{kilobytes}KB" for kilobytes in SIZES_KB]
    print(f"{'µs per KB':<28}" + "".join(f"{c:>10}" for c in columns))
    for row in rows:
        print(f"{row['input']:<28}" + "".join(f"{row[c]:>10.1f}" for c in columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
