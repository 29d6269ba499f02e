"""Time the identifier screen on 200-character strings.

    .venv/bin/python bench/identifiers.py [--strings 20000]

1. Builds strings of 200 characters from the labelled corpus
   (``tests/corpora/identifiers/corpus.csv``): benign lab text joined until
   200 characters, and as many with one identifier planted at a random
   place (seeded, so every run times the same strings).
2. Times ``find_identifier`` on each string once after a warm-up, on one
   core, and prints p50, p99 and the maximum per string, for clean
   strings (the whole screen runs) and planted ones (it stops at the
   first kind found). It times with the thread's CPU clock (what the
   screen costs) and the wall clock (what a caller waits, including time
   the scheduler gave to other processes on a busy machine).
3. Times importing the module in a fresh interpreter (the name lists and
   patterns are built once, at import).

Target (issue 15): p99 at most 1 ms for a 200-character string.
"""

import argparse
import csv
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from registry3d.lib.identifiers import find_identifier  # noqa: E402

CORPUS = ROOT / "tests" / "corpora" / "identifiers" / "corpus.csv"


def strings(count: int) -> tuple[list[str], list[str]]:
    rng = random.Random(15)
    with CORPUS.open(encoding="utf-8", newline="") as f:
        rows = [(r["kind"], r["text"]) for r in csv.DictReader(f)]
    benign = [t for k, t in rows if k == "benign"]
    planted = [t for k, t in rows if k != "benign"]

    def filler(length: int) -> str:
        text = ""
        while len(text) < length:
            text += rng.choice(benign) + "; "
        return text[:length]

    clean = [filler(200) for _ in range(count)]
    dirty = []
    for _ in range(count):
        secret = rng.choice(planted)
        at = rng.randint(0, max(0, 198 - len(secret)))
        text = filler(200)
        dirty.append((text[:at] + " " + secret + " " + text[at:])[:200])
    return clean, dirty


def timings(texts: list[str], clock) -> list[float]:
    for text in texts[:500]:
        find_identifier(text)
    out = []
    for text in texts:
        start = clock()
        find_identifier(text)
        out.append((clock() - start) / 1000)
    return sorted(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strings", type=int, default=20000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    clean, dirty = strings(args.strings)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    clocks = (("CPU", time.thread_time_ns), ("wall", time.perf_counter_ns))
    for label, texts in (("clean", clean), ("with an identifier", dirty)):
        for clock_name, clock in clocks:
            t = timings(texts, clock)
            p99 = t[int(0.99 * (len(t) - 1))]
            print(
                f"{label:20} {clock_name:4} n={len(t)} p50={statistics.median(t):.0f} µs "
                f"p99={p99:.0f} µs max={t[-1]:.0f} µs"
            )
    code = "import time; s=time.perf_counter(); import registry3d.lib.identifiers; "
    code += "print(f'{(time.perf_counter()-s)*1000:.0f}')"
    ms = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"import (fresh interpreter): {ms} ms")


if __name__ == "__main__":
    main()
