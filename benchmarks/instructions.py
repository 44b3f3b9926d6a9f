"""Instructions per record of the hot path's stages, counted by callgrind: repeatable when busy.

`python -m benchmarks.instructions [--events N]` runs the stages of
`benchmarks.stages.HotPath` on N simulated raw records inside
`valgrind --tool=callgrind` and prints the instructions executed (Ir) per raw
record, and per kept or released record where a stage works on those, as JSON.
CPU time swings with what else runs on the machine; an instruction count does not
(the same code on the same input counts within a fraction of a per cent run to
run), so two commits can be compared on a shared machine. Ir is not time: a cache
miss costs more than an add. It counts the interpreter's work, so compare figures
from one Python build only.

How a stage is isolated: before each stage the run calls `os.getppid()`, which
nothing else in it calls, and callgrind writes its counters out on every entry to
`getppid` (`--dump-before=getppid`): each dump file then holds one stage. A full
garbage collection runs before each stage in a dump of its own, so what one stage
left behind is not collected inside the next; hash randomization is off
(PYTHONHASHSEED=0), and the clock is fixed (`CLOCK_MS`), so every run holds and
releases the same records. Simulating the input and building the stages are not counted;
the collector is then tuned as `consentgate run` tunes it (`consumers.startup.settle_heap`).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.stages import STAGES, counts, per_record, simulated
from consumers.startup import settle_heap

DEFAULT_EVENTS = 3_000
CLOCK_MS = 1_796_083_200_000
"""The run's fixed "now" (1 December 2026, 00:00 UTC): the same input whatever the date."""
_TOTALS = re.compile(rb"^totals:\s*(\d+)", re.M)


def _mark() -> None:
    """The boundary between two counted parts: callgrind dumps on entry to getppid."""
    os.getppid()


def run_inside() -> None:
    """Under callgrind: build the stages, run each between two marks, print the counts."""
    events = int(sys.argv[sys.argv.index("--inside") + 1])
    path = simulated(events, now_ms=CLOCK_MS)
    settle_heap()  # as `consentgate run` does once its start-up state is built
    for name, _per in STAGES:
        _mark()  # ends the previous part: the set-up or the previous stage
        gc.collect()
        _mark()  # ends the collection
        getattr(path, name)()
    _mark()
    print(json.dumps(counts(path)))


def count(events: int, valgrind: str = "valgrind") -> dict[str, Any]:
    """Run the stages on `events` records under callgrind; Ir per record of each stage."""
    with tempfile.TemporaryDirectory(prefix="callgrind-") as folder:
        out = Path(folder) / "cg.out"
        cmd = [
            valgrind, "--tool=callgrind", "--dump-before=getppid",
            f"--callgrind-out-file={out}",
            sys.executable, "-m", "benchmarks.instructions", "--inside", str(events),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"callgrind run failed: {done.stderr.strip()[-2000:]}")
        seen: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
        parts = sorted(Path(folder).glob("cg.out.*"), key=lambda p: int(p.suffix[1:]))
        irs = [_ir(p) for p in parts]
    if len(irs) != 2 * len(STAGES) + 1:
        raise RuntimeError(f"expected {2 * len(STAGES) + 1} callgrind dumps, got {len(irs)}")
    # Dump 1 is the set-up; then a collection and a stage, in turn.
    totals = {name: float(irs[2 + 2 * i]) for i, (name, _per) in enumerate(STAGES)}
    return {
        "records": seen["raw"],
        "kept_by_gate": seen["kept"],
        "released_by_kanon": seen["released"],
        "ir_per_record": per_record(totals, seen, 1.0, ndigits=None),
        "collections_ir_per_record": round(sum(irs[1::2]) / max(1, seen["raw"])),
        "setup_ir": irs[0],
        "note": "instructions (Ir) per raw record unless named per_kept / per_released",
    }


def _ir(path: Path) -> int:
    found = _TOTALS.search(path.read_bytes())
    if found is None:
        raise RuntimeError(f"no totals line in {path.name}")
    return int(found.group(1))


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m benchmarks.instructions`: Ir per record of each hot-path stage."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--valgrind", default="valgrind", help="the valgrind executable")
    args = parser.parse_args(argv)
    print(json.dumps(count(args.events, args.valgrind), indent=2))


if __name__ == "__main__":
    if "--inside" in sys.argv:
        run_inside()
    else:
        main()
