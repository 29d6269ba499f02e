"""Benchmark: a bulk import of N synthetic cases, rows per second and peak memory.

    .venv/bin/python bench/import_rows.py --rows 100000            # SQLite in a temp folder
    DATABASE_URL=postgres://... .venv/bin/python bench/import_rows.py --rows 100000

Writes a CSV of realistic complete cases (cached in bench/.cache/), creates
a fresh registry (migrations, a site with printers), then runs the import
as `registry3d import` does: pass 1 checks every row and spools the valid
ones, pass 2 writes them in batches through the cases' bulk write path with
history and audit. On PostgreSQL it also times, in the same run, a plain
COPY of the same rows' JSON into a scratch table (at most --copy-rows of
them), the limit any import can approach.

For each pass it prints the CPU time the import (this process and the
checking processes it forks) used per row, and what the rest of the
machine used meanwhile (the database, on a local PostgreSQL, and anything
else). It also measures, for 3 seconds before and after, how busy the
machine is without us: above 10% the run is disturbed.
"""

import argparse
import csv
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "bench" / ".cache"
TECHNOLOGIES = [
    "material_jetting",
    "vat_photopolymerization",
    "material_extrusion",
    "powder_bed_fusion",
    "binder_jetting",
]
LABELS = {t: f"P-{t[:10]}" for t in TECHNOLOGIES}


def make_csv(rows: int) -> Path:
    from registry3d.dictionary import flat, registry
    from registry3d.dictionary.examples import synthetic_case

    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"cases-{rows}.csv"
    if path.exists():
        return path
    dictionary = registry.current().dictionary
    columns = flat.columns(
        dictionary, items={"imaging": 2, "anatomic_parts": 6, "prints": 3, "cpt_lines": 2}
    )
    rng = random.Random(1)
    partial = path.with_name(path.name + ".partial")  # a run stopped half-way leaves no CSV
    with partial.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="raise")
        writer.writeheader()
        for number in range(1, rows + 1):
            data = synthetic_case(dictionary, rng, printer_labels=LABELS)
            writer.writerow(
                flat.write_row(
                    dictionary, {"case_uid": f"B-{number // 10000:04d}-{number % 10000:04d}"}, data
                )
            )
    partial.replace(path)
    return path


def _machine_busy() -> float:
    """Seconds of CPU time the whole machine has used, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int | None) -> float:
    """Seconds of CPU time used by a process (this one and its children when pid is None)."""
    if pid is None:  # with the processes it started that have ended (the checkers)
        return sum(
            usage.ru_utime + usage.ru_stime
            for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        )
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Clock:
    """Wall time, the import's CPU time and the rest of the machine's."""

    def __init__(self):
        self.marks = [self._now()]

    @staticmethod
    def _now():
        return time.perf_counter(), _process_cpu(None), _machine_busy()

    def lap(self) -> tuple[float, float, float]:
        """(wall, the import's CPU, the rest of the machine's CPU) since the last lap."""
        self.marks.append(self._now())
        (w0, c0, m0), (w1, c1, m1) = self.marks[-2], self.marks[-1]
        return w1 - w0, c1 - c0, max(0.0, (m1 - m0) - (c1 - c0))


def quiet(seconds: float = 3.0) -> float:
    """The share of the machine's CPUs busy while nothing of ours runs."""
    clock = Clock()
    time.sleep(seconds)
    wall, _own, rest = clock.lap()
    return rest / (wall * os.cpu_count())


def _describe(name: str, rows: int, lap, rest_is: str) -> str:
    wall, own, rest = lap
    return (
        f"{name}: {rows / wall:,.0f} rows/s ({1e6 * wall / rows:.0f} µs a row; CPU a row: "
        f"the import {1e6 * own / rows:.0f} µs, {rest_is} {1e6 * rest / rows:.0f} µs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--copy-rows",
        type=int,
        default=200_000,
        help="rows for the plain COPY comparison (kept in memory; the rate is per row)",
    )
    parser.add_argument(
        "--check-processes",
        type=int,
        default=0,
        help="processes that check rows (default: as the import chooses, one per CPU up to 3)",
    )
    parser.add_argument(
        "--write-connections",
        type=int,
        default=0,
        help="PostgreSQL: batches written at once (default: as the import chooses, 2)",
    )
    args = parser.parse_args()
    var = tempfile.mkdtemp(prefix="registry3d-bench-")
    os.environ.setdefault("REGISTRY3D_VAR_DIR", var)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry3d.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from registry3d.intake import services as intake
    from registry3d.sites import services as sites

    call_command("migrate", verbosity=0)
    path = make_csv(args.rows)
    site = sites.add_site(f"BENCH{random.randint(1000, 9999)}", "Benchmark Hospital")
    for technology, label in LABELS.items():
        sites.add_printer(site, label=label, manufacturer="M", model="X", technology=technology)
    if args.check_processes:
        intake.MAX_CHECK_PROCESSES = args.check_processes
    if args.write_connections:
        intake.WRITE_CONNECTIONS = args.write_connections
    print(
        f"checking processes: {intake.check_processes(path)}, "
        f"writing connections: {intake.write_connections()}"
    )
    batch = intake.create_import(site, path)
    busy = quiet()
    print(
        f"before the import, others kept {100 * busy:.0f}% of the machine busy"
        + (" (disturbed: over 10%)" if busy > 0.10 else "")
    )
    clock = Clock()
    intake.check_import(batch)
    check = clock.lap()
    intake.write_import(batch)
    write = clock.lap()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    checker_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    total_rate = batch.written / (check[0] + write[0])
    print(
        f"database: {connection.vendor}, rows: {batch.rows}, written: {batch.written}, "
        f"invalid: {batch.invalid}, spool left: {intake.spool_path(batch).exists()}"
    )
    rest = "the database and anything else"
    print(_describe("check pass", batch.rows, check, "anything else"))
    print(_describe("write pass", batch.written, write, rest))
    print(f"whole import: {total_rate:,.0f} validated rows/s")
    print(
        f"peak memory: {peak:.0f} MB"
        + (f" (and {checker_peak:.0f} MB in each checking process)" if checker_peak else "")
    )
    if connection.vendor == "postgresql":
        import json

        from registry3d.cases.models import Case

        datas = [
            json.dumps(d)
            for d in Case.objects.filter(site=site)
            .order_by("id")
            .values_list("data", flat=True)[: args.copy_rows]
            .iterator(chunk_size=5000)
        ]
        with connection.cursor() as cursor:
            cursor.execute("create temporary table copy_bench (uid text, data jsonb)")
            clock = Clock()
            with cursor.copy("copy copy_bench (uid, data) from stdin") as copy:
                for number, data in enumerate(datas):
                    copy.write_row((f"C-{number}", data))
            lap = clock.lap()
        copy_rate = len(datas) / lap[0]
        print(_describe(f"plain COPY of {len(datas):,} of the same rows", len(datas), lap, rest))
        busy = quiet()
        print(f"after it, others kept {100 * busy:.0f}% of the machine busy")
        print(f"the import reaches {100 * total_rate / copy_rate:.0f}% of the plain COPY rate")


if __name__ == "__main__":
    main()
