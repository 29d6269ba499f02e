"""Benchmark: complete cases validated per second on one core.

    .venv/bin/python bench/validate.py [--cases 50000] [--seed 1]

Generates realistic synthetic cases (registry3d.dictionary.examples), half
with the physician questionnaire, and validates each as a submitted case
against the shipped dictionary, pinned to one CPU core. Prints throughput,
per-case latency percentiles and peak memory.
"""

import argparse
import os
import platform
import random
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry3d.dictionary.examples import synthetic_case  # noqa: E402
from registry3d.dictionary.loader import load_dictionary  # noqa: E402
from registry3d.dictionary.registry import DEFAULT_FILE  # noqa: E402
from registry3d.dictionary.validation import Validator  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    dictionary = load_dictionary(DEFAULT_FILE)
    started = time.perf_counter()
    validator = Validator(dictionary)
    compile_ms = (time.perf_counter() - started) * 1000
    rng = random.Random(args.seed)
    cases = [
        synthetic_case(dictionary, rng, with_questionnaire=n % 2 == 0) for n in range(args.cases)
    ]
    labels = sorted({p["printer_label"] for c in cases for p in c["prints"]})
    for case in cases[:1000]:  # warm up
        validator.validate(case, site_printer_labels=labels)

    started = time.perf_counter()
    errors = 0
    for case in cases:
        problems = validator.validate(case, site_printer_labels=labels)
        errors += any(p.severity == "error" for p in problems)
    elapsed = time.perf_counter() - started

    timings = []
    clock = time.perf_counter_ns
    for case in cases[:20_000]:
        t0 = clock()
        validator.validate(case, site_printer_labels=labels)
        timings.append((clock() - t0) / 1000)
    timings.sort()
    quantiles = statistics.quantiles(timings, n=100)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"machine: {platform.machine()}, Python {platform.python_version()}, "
        f"dictionary {dictionary.version} ({len(dictionary.all_elements)} elements, "
        f"{len(dictionary.rules)} rules), compiled in {compile_ms:.0f} ms"
    )
    print(f"cases: {len(cases)}, with errors: {errors}")
    print(f"throughput: {len(cases) / elapsed:,.0f} complete cases/s on one core")
    print(
        f"latency per case: p50 {quantiles[49]:.1f} µs, p99 {quantiles[98]:.1f} µs, "
        f"max {timings[-1]:.1f} µs"
    )
    print(f"peak memory: {peak_mb:.0f} MB (including the generated cases)")


if __name__ == "__main__":
    main()
