"""Benchmark: a bulk import of N synthetic cases, rows per second and peak memory.

    .venv/bin/python bench/import_rows.py --rows 100000            # SQLite in a temp folder
    DATABASE_URL=postgres://... .venv/bin/python bench/import_rows.py --rows 100000

Writes a CSV of realistic complete cases (cached in bench/.cache/), creates
a fresh registry (migrations, a site with printers), then runs the import
as `registry3d import` does: pass 1 checks every row, pass 2 writes them in
batches through the cases' bulk write path with history and audit. On
PostgreSQL it also times a plain COPY of the same rows' JSON into a scratch
table, the limit any import can approach.
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
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="raise")
        writer.writeheader()
        for number in range(1, rows + 1):
            data = synthetic_case(dictionary, rng, printer_labels=LABELS)
            writer.writerow(flat.write_row(dictionary, {"case_uid": f"B-{number:07d}"}, data))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
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
    batch = intake.create_import(site, path)
    started = time.perf_counter()
    intake.check_import(batch)
    checked = time.perf_counter()
    intake.write_import(batch)
    written = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    check_rate = batch.rows / (checked - started)
    write_rate = batch.written / (written - checked)
    total_rate = batch.written / (written - started)
    print(
        f"database: {connection.vendor}, rows: {batch.rows}, written: {batch.written}, "
        f"invalid: {batch.invalid}"
    )
    print(
        f"check pass: {check_rate:,.0f} rows/s; write pass: {write_rate:,.0f} rows/s; "
        f"whole import: {total_rate:,.0f} validated rows/s"
    )
    print(f"peak memory: {peak:.0f} MB")
    if connection.vendor == "postgresql":
        import json

        from registry3d.cases.models import Case

        datas = [
            json.dumps(d) for d in Case.objects.filter(site=site).values_list("data", flat=True)
        ]
        with connection.cursor() as cursor:
            cursor.execute("create temporary table copy_bench (uid text, data jsonb)")
            copy_started = time.perf_counter()
            with cursor.copy("copy copy_bench (uid, data) from stdin") as copy:
                for number, data in enumerate(datas):
                    copy.write_row((f"C-{number}", data))
            copy_rate = len(datas) / (time.perf_counter() - copy_started)
        print(
            f"plain COPY of the same rows: {copy_rate:,.0f} rows/s; the import reaches "
            f"{100 * total_rate / copy_rate:.0f}% of it"
        )


if __name__ == "__main__":
    main()
