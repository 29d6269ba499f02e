"""Benchmark: exports of many cases, their time and peak memory.

    .venv/bin/python bench/export.py --cases 1000000            # SQLite, cached
    DATABASE_URL=postgres://postgres@127.0.0.1:PORT/NAME \\
      .venv/bin/python bench/export.py --cases 1000000           # an empty PostgreSQL database

1. Fills a registry with --cases realistic synthetic cases
   (``registry3d.dictionary.examples``, a third with the physician's answers)
   over 10 sites, written with ``bulk_create``. On SQLite the database is
   kept in bench/.cache/ and reused by later runs.
2. Runs each export in a child process of its own, as ``registry3d export``
   would (``exports.services.write_export``), and prints its wall time,
   cases a second, the child's peak resident memory and the files' size:
   the research export as CSV and as Parquet (every site, Safe Harbor) and
   the largest site's own export as CSV (the import template's columns).

The machine's load from other processes is printed before and after; over
10% of the machine marks a run as disturbed.
"""

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "bench" / ".cache"
SITES = 10


def _machine_busy() -> float:
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def others_busy(seconds: float = 3.0) -> float:
    """The share of the machine in use over ``seconds`` (this process sleeps meanwhile)."""
    before = _machine_busy()
    time.sleep(seconds)
    return (_machine_busy() - before) / (seconds * os.cpu_count())


def setup(var_dir: Path) -> None:
    os.environ["REGISTRY3D_VAR_DIR"] = str(var_dir)
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 40)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry3d.settings")
    import django

    django.setup()


def fill(cases: int) -> None:
    """Write ``cases`` synthetic submitted cases over 10 sites (sizes 1:2:...:10)."""
    from django.core.management import call_command
    from django.utils import timezone

    from registry3d.cases.models import Case
    from registry3d.dictionary import registry
    from registry3d.dictionary.examples import synthetic_case
    from registry3d.lib.pseudonym import patient_key
    from registry3d.sites import services

    call_command("migrate", verbosity=0)
    dictionary = registry.current().dictionary
    sites = [
        services.add_site(f"EXP{n:02d}", f"Export {n}", region="Ohio", facility_type="academic")
        for n in range(SITES)
    ]
    technologies = (
        "material_jetting",
        "vat_photopolymerization",
        "material_extrusion",
        "powder_bed_fusion",
        "binder_jetting",
    )
    labels = {t: f"P-{t[:10]}" for t in technologies}
    weights = list(range(1, SITES + 1))
    rng = random.Random(1)
    now = timezone.now()
    batch, started = [], time.perf_counter()
    for n in range(cases):
        site = rng.choices(sites, weights)[0]
        data = synthetic_case(dictionary, rng, printer_labels=labels, with_questionnaire=n % 3 == 0)
        batch.append(
            Case(
                site=site,
                case_uid=f"B-{n // 10000:04d}-{n % 10000:04d}",
                patient_key=patient_key(site.code, f"M{n}"),
                status="submitted",
                dictionary_version=dictionary.version,
                data=data,
                case_month=data["case_year_month"],
                object_type=data["object_type"],
                organ_system=data["organ_system"],
                technology=data["prints"][0]["technology"],
                submitted_at=now,
            )
        )
        if len(batch) == 10_000 or n == cases - 1:
            Case.objects.bulk_create(batch, batch_size=2000)
            batch = []
            if (n + 1) % 100_000 == 0:
                print(
                    f"  {n + 1:,} cases written ({time.perf_counter() - started:.0f} s)", flush=True
                )


def run_one(kind: str, fmt: str, out: Path) -> None:
    """In the child: one export, its result as one JSON line on standard output."""
    from registry3d.cases.models import Case
    from registry3d.exports import services
    from registry3d.sites.models import Site

    if kind == "research":
        export = services.request_research_export(
            None, services.ResearchOptions(), fmt, enqueue=False
        )
    else:
        largest = Site.objects.filter(code__startswith="EXP").order_by("-code").first()
        export = services.request_site_export(None, largest, fmt, enqueue=False)
    started = time.perf_counter()
    manifest = services.write_export(export, out)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cases": manifest["cases"],
                "bytes": sum(f["bytes"] for f in manifest["files"]),
                "files": len(manifest["files"]),
                "peak_mb": usage.ru_maxrss / 1024,
                "cpu": usage.ru_utime + usage.ru_stime,
                "all_cases": Case.objects.count(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument(
        "--runs",
        default="research:csv,research:parquet,site:csv",
        help="the exports to measure, KIND:FORMAT, comma-separated",
    )
    parser.add_argument(
        "--child", nargs=3, metavar=("KIND", "FORMAT", "OUT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--var-dir", help=argparse.SUPPRESS)
    parser.add_argument("--fill", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill:
        setup(Path(args.var_dir))
        fill(args.cases)
        return
    if args.child:
        setup(Path(args.var_dir))
        run_one(args.child[0], args.child[1], Path(args.child[2]))
        return

    postgres = os.environ.get("DATABASE_URL", "").startswith("postgres")
    CACHE.mkdir(exist_ok=True)
    var_dir = CACHE / f"export-{args.cases}" if not postgres else Path(tempfile.mkdtemp())
    ready = var_dir / "filled"
    if not ready.exists():
        shutil.rmtree(var_dir, ignore_errors=True)
        var_dir.mkdir(parents=True)
        print(f"filling a registry with {args.cases:,} cases (once; cached on SQLite)…", flush=True)
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--cases",
                str(args.cases),
                "--fill",
                "--var-dir",
                str(var_dir),
            ],
            check=True,
        )
        ready.write_text("yes")
        print(f"  filled in {time.perf_counter() - started:.0f} s", flush=True)
    print(
        f"date {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]}, database {'PostgreSQL' if postgres else 'SQLite'}, "
        f"{args.cases:,} cases over {SITES} sites"
    )
    print(f"others busy before: {100 * others_busy():.0f}%")
    for kind, fmt in (run.split(":") for run in args.runs.split(",")):
        out = Path(tempfile.mkdtemp(prefix="registry3d-bench-export-"))
        load = os.getloadavg()[0]
        busy0, wall0 = _machine_busy(), time.perf_counter()
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                kind,
                fmt,
                str(out / "files"),
                "--var-dir",
                str(var_dir),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - wall0
        result = json.loads(child.stdout.strip().splitlines()[-1])
        others = max(0.0, (_machine_busy() - busy0) - result["cpu"]) / (wall * os.cpu_count())
        flag = ", DISTURBED" if others > 0.10 else ""
        print(
            f"{kind} export, {fmt}: {result['cases']:,} cases in {result['seconds']:.1f} s = "
            f"{result['cases'] / result['seconds']:,.0f} cases/s; peak memory "
            f"{result['peak_mb']:,.0f} MB; {result['files']} files, "
            f"{result['bytes'] / 1e6:,.0f} MB (load {load:.2f}, others {100 * others:.0f}%{flag})",
            flush=True,
        )
        shutil.rmtree(out, ignore_errors=True)
    print(f"others busy after: {100 * others_busy():.0f}%")
    if postgres:
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
