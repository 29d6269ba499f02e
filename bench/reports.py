"""Benchmark: the reports' snapshot build, the national benchmark table and one site's dashboard.

    .venv/bin/python bench/reports.py --cases 1000000 --sites 6500
    .venv/bin/python bench/reports.py --cases 10000000 --sites 6500 [--skip-build]

1. Generates a snapshot table of --cases synthetic cases over --sites sites
   directly in the schema of ``registry3d.reports.snapshot`` (numpy/polars,
   skewed site sizes, site-level differences, realistic missing values),
   cached in bench/.cache/ (generated in a child process, so the peak
   memory printed below is that of the measurements, not the generation).
2. (a) The snapshot build from a database: --build-cases real cases
   (``registry3d.dictionary.examples``, a third with the questionnaire) are
   written with ``bulk_create`` to SQLite in a temporary VAR_DIR and
   ``snapshot.build(full=True)`` turns them into rows; where the time goes;
   then the incremental refresh after changing 1,000 cases, with the
   generated --cases-row snapshot in place of the small one.
3. (b) The national benchmark table (``metrics.benchmark_table``) against
   the same figures in plain pandas, in the same run, checked equal.
4. (c) One site's dashboard data: ``site_report`` for the default period,
   ``trend`` of two metrics over eight quarters and the ``funnel`` of the
   questionnaire answer rate, with the snapshot in memory and with
   ``pl.read_parquet`` first.

Each measurement prints its wall time (best of --repeat), the load average
and the share of the machine that other processes used meanwhile (over 10%
marks it as disturbed).
"""

import argparse
import atexit
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from registry3d.dictionary import examples  # noqa: E402 - after the path is set

CACHE = ROOT / "bench" / ".cache"
TODAY = date(2026, 11, 28)

# --- generated snapshot -----------------------------------------------------------

FACILITY = (
    ("academic", 0.22),
    ("community", 0.42),
    ("childrens", 0.08),
    ("private_practice", 0.14),
    ("government", 0.08),
    ("other", 0.06),
)
REGIONS = [f"R{n:02d}" for n in range(50)]  # the 50 states; 2% of sites give none
# The organ systems of models, weighted as the registry's synthetic cases are.
MODEL_SYSTEMS = tuple(examples.MODEL_SYSTEMS)
GUIDE_SYSTEMS = (
    ("neurologic", 42),
    ("craniomaxillofacial", 25),
    ("musculoskeletal", 25),
    ("head_and_neck_ent", 5),
    ("other", 3),
)
TECHNOLOGIES = (
    ("material_jetting", 40),
    ("vat_photopolymerization", 27),
    ("material_extrusion", 19),
    ("powder_bed_fusion", 9),
    ("binder_jetting", 5),
)
# (element, share of cases lacking it): the snapshot's completeness elements.
MISSING = (
    ("effort_segmentation_clinician", 0.01),
    ("effort_segmentation_non_clinician", 0.03),
    ("effort_cad_clinician", 0.01),
    ("effort_cad_non_clinician", 0.03),
    ("effort_prep_post_processing_clinician", 0.01),
    ("effort_prep_post_processing_non_clinician", 0.03),
    ("turnaround_days", 0.10),
    ("appropriateness_scenario", 0.40),
    ("procedure_performed", 0.02),
)
MONTHS = [f"{y}-{m:02d}" for y in (2024, 2025, 2026) for m in range(1, 13)][:35]  # to 2026-11


def _pick(rng, pairs, size):
    labels, weights = zip(*pairs, strict=True)
    weights = np.array(weights, dtype=float)
    return rng.choice(len(labels), size=size, p=weights / weights.sum()), list(labels)


def _gather(labels, index) -> pl.Series:
    return pl.Series(labels, dtype=pl.String).gather(pl.Series(index, dtype=pl.UInt32))


def generate_chunk(rng, start: int, size: int, sites: pl.DataFrame, weights) -> pl.DataFrame:
    from registry3d.reports.snapshot import RATES_SCHEMA, ROW_SCHEMA, with_costs

    site = rng.choice(sites.height, size=size, p=weights)
    effect = sites["effect"].to_numpy()[site]  # site-level speed
    answer_rate = sites["answer_rate"].to_numpy()[site]
    growth = np.linspace(1, 2.5, len(MONTHS))
    month = rng.choice(len(MONTHS), size=size, p=growth / growth.sum())
    is_model = rng.random(size) < 0.7
    model_system, model_labels = _pick(rng, MODEL_SYSTEMS, size)
    guide_system, guide_labels = _pick(rng, GUIDE_SYSTEMS, size)
    systems = sorted(set(model_labels) | set(guide_labels))
    system = np.where(
        is_model,
        np.array([systems.index(s) for s in model_labels])[model_system],
        np.array([systems.index(s) for s in guide_labels])[guide_system],
    )
    technology, technology_labels = _pick(rng, TECHNOLOGIES, size)
    lacking = np.stack([rng.random(size) < share for _, share in MISSING], axis=1)
    mask = (lacking * (1 << np.arange(len(MISSING)))).sum(axis=1)
    names = [
        ";".join(name for bit, (name, _) in enumerate(MISSING) if m >> bit & 1)
        for m in range(1 << len(MISSING))
    ]

    clinician_sum = np.zeros(size)
    other_sum = np.zeros(size)

    def minutes(mean_clinician, mean_other, clinician_gone, other_gone):
        clinician = np.floor(rng.exponential(mean_clinician, size) * effect)
        other = np.floor(rng.exponential(mean_other, size) * effect)
        clinician_sum[:] += clinician
        other_sum[:] += other
        total = np.where(clinician_gone, 0, clinician) + np.where(other_gone, 0, other)
        return np.where(clinician_gone & other_gone, np.nan, total)

    segmentation = minutes(20, 148, lacking[:, 0], lacking[:, 1])
    design = minutes(18, 90, lacking[:, 2], lacking[:, 3])
    staff_post = minutes(20, 72, lacking[:, 4], lacking[:, 5])
    machine = np.where(rng.random(size) < 0.35, rng.integers(0, 600, size), np.nan)
    post = np.where(
        np.isnan(staff_post) & np.isnan(machine),
        np.nan,
        np.nan_to_num(staff_post) + np.nan_to_num(machine),
    )
    consultation = np.floor(rng.exponential(59, size) * effect)
    staff = np.where(lacking[:, :6].any(axis=1), np.nan, consultation + segmentation + design)
    staff = np.where(np.isnan(staff), np.nan, staff + np.nan_to_num(staff_post))
    # Consultation is clinician time here; each total is known when all of its
    # four times are.
    clinician_min = np.where(lacking[:, 0:6:2].any(axis=1), np.nan, clinician_sum + consultation)
    non_clinician_min = np.where(lacking[:, 1:6:2].any(axis=1), np.nan, other_sum)
    prints = rng.choice([1, 2, 3], size=size, p=[0.75, 0.2, 0.05])
    printing = np.where(
        rng.random(size) < 0.05, np.nan, rng.integers(120, 1800, size) * prints * effect
    ).round()
    material = np.where(
        rng.random(size) < 0.05, np.nan, (rng.uniform(10, 600, size) * prints).round(2)
    )
    parts = np.where(
        is_model, rng.choice([1, 2, 3, 4, 5, 6], size=size, p=[0.5, 0.2, 0.12, 0.08, 0.06, 0.04]), 0
    )
    per_part = np.where(parts > 0, (material / np.maximum(parts, 1)).round(2), np.nan)
    turnaround = np.where(lacking[:, 6], np.nan, np.ceil(rng.gamma(2.5, 3.0, size) * effect))
    answered = rng.random(size) < answer_rate
    plan_known = answered & (rng.random(size) < 0.9)
    plan_changed = np.where(plan_known, rng.random(size) < 0.55, False)
    time_saved = np.where(answered, np.round(rng.normal(38.5, 30, size)), np.nan)
    usefulness = np.where(answered, rng.choice([3.0, 4.0, 5.0], size=size), np.nan)
    scenario = ~lacking[:, 7]
    units = rng.random(size) < 0.5
    updated = datetime(2026, 11, 1)  # UTC
    frame = pl.DataFrame(
        {
            "case_id": np.arange(start + 1, start + size + 1, dtype=np.int64),
            "site_index": site.astype(np.uint32),
            "month_index": month.astype(np.uint32),
            "organ_system": _gather(systems, system),
            "object_type": _gather(["anatomic_guide", "anatomic_model"], is_model.astype(int)),
            "technology": _gather(technology_labels, technology),
            "units_0559T": np.where(units & is_model, 1, 0).astype(np.int32),
            "units_0560T": np.where(units & is_model & (parts > 1), parts - 1, 0).astype(np.int32),
            "units_0561T": np.where(units & ~is_model, 1, 0).astype(np.int32),
            "units_0562T": np.where(units & ~is_model & (prints > 1), prints - 1, 0).astype(
                np.int32
            ),
            "segmentation_min": segmentation,
            "design_min": design,
            "printing_min": printing,
            "post_processing_min": post,
            "staff_min": staff,
            "clinician_min": clinician_min,
            "non_clinician_min": non_clinician_min,
            "turnaround_days": turnaround,
            "material_cost_usd": material,
            "part_count": parts.astype(np.int32),
            "material_cost_per_part_usd": per_part,
            "answered": answered,
            "plan_changed": plan_changed,
            "plan_known": plan_known,
            "time_saved_min": time_saved,
            "usefulness": usefulness,
            "appropriateness": np.where(scenario, "usually_appropriate", ""),
            "completeness": 1 - lacking.sum(axis=1) / len(MISSING),
            "missing": _gather(names, mask),
            "updated_at": pl.Series(
                np.datetime64(updated, "us") + rng.integers(0, 86400 * 20, size).astype("m8[s]")
            ).dt.replace_time_zone("UTC"),
        },
        nan_to_null=True,
    ).with_columns(pl.when(pl.col("plan_known")).then(pl.col("plan_changed")).alias("plan_changed"))
    month_table = pl.DataFrame(
        {
            "month_index": np.arange(len(MONTHS), dtype=np.uint32),
            "case_month": MONTHS,
            "quarter": [f"{m[:4]}Q{(int(m[5:]) - 1) // 3 + 1}" for m in MONTHS],
            "year": [int(m[:4]) for m in MONTHS],
        }
    )
    frame = frame.join(
        sites.select("site_index", "site_id", "site_code", "facility_type", "site_region"),
        on="site_index",
        how="left",
    ).join(month_table, on="month_index", how="left")
    frame = frame.select(pl.col(name).cast(dtype) for name, dtype in ROW_SCHEMA.items())
    return with_costs(frame, sites.select(*RATES_SCHEMA))


def generate(cases: int, sites: int, seed: int, path: Path) -> None:
    rng = np.random.default_rng(seed)
    size = np.exp(rng.normal(0, 1.3, sites))  # lognormal: a few very large sites
    facility, facility_labels = _pick(rng, FACILITY, sites)
    region = rng.integers(0, len(REGIONS), sites)
    site_table = pl.DataFrame(
        {
            "site_index": np.arange(sites, dtype=np.uint32),
            "site_id": np.arange(1, sites + 1, dtype=np.int64),
            "site_code": [f"S{n:05d}" for n in range(1, sites + 1)],
            "facility_type": _gather(facility_labels, facility),
            "site_region": pl.Series(REGIONS)
            .gather(region)
            .set(pl.Series(rng.random(sites) < 0.02), ""),
            "effect": np.exp(rng.normal(0, 0.3, sites)),
            "answer_rate": rng.beta(1.2, 3.0, sites),
            # A tenth of sites set no staff costs.
            "clinician_per_hour": np.where(
                rng.random(sites) < 0.1, np.nan, rng.normal(170, 25, sites).round(2)
            ),
            "non_clinician_per_hour": np.where(
                rng.random(sites) < 0.1, np.nan, rng.normal(60, 10, sites).round(2)
            ),
            "or_per_minute": np.where(
                rng.random(sites) < 0.5, 37.45, rng.normal(40, 8, sites).round(2)
            ),
        },
        nan_to_null=True,
    )
    weights = size / size.sum()
    chunks, start = [], 0
    while start < cases:
        n = min(1_000_000, cases - start)
        chunks.append(generate_chunk(rng, start, n, site_table, weights))
        start += n
    partial = path.with_name(path.name + ".partial")
    pl.concat(chunks).write_parquet(partial, row_group_size=1_000_000)
    partial.replace(path)


def generated_snapshot(cases: int, sites: int, seed: int) -> Path:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"snapshot-{cases}-{sites}-{seed}.parquet"
    if not path.exists():
        print(f"generating {path.name} (once; cached)…", flush=True)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--generate-only", "--cases", str(cases)]
            + ["--sites", str(sites), "--seed", str(seed)],
            check=True,
        )
        print(f"  generated in {time.perf_counter() - started:.0f} s", flush=True)
    return path


# --- measuring --------------------------------------------------------------------


def _machine_busy() -> float:
    """Seconds of CPU time the whole machine has used, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Timing:
    def __init__(self, times, load, others, result):
        self.best, self.times, self.load, self.others, self.result = (
            min(times),
            times,
            load,
            others,
            result,
        )

    def text(self, unit="s") -> str:
        scale = 1000 if unit == "ms" else 1
        runs = "/".join(f"{t * scale:.{0 if unit == 'ms' else 2}f}" for t in self.times)
        flag = ", DISTURBED" if self.others > 0.10 else ""
        return (
            f"{self.best * scale:,.{0 if unit == 'ms' else 2}f} {unit} (runs {runs}; "
            f"load {self.load:.2f}, others {100 * self.others:.0f}%{flag})"
        )


def measure(fn, repeat: int = 3) -> Timing:
    times, result = [], None
    load = os.getloadavg()[0]
    busy0, own0, wall0 = _machine_busy(), _own_cpu(), time.perf_counter()
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    wall = time.perf_counter() - wall0
    others = max(0.0, (_machine_busy() - busy0) - (_own_cpu() - own0)) / (wall * os.cpu_count())
    return Timing(times, load, others, result)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {memory:.0f} GiB, {platform.machine()}, "
        f"Python {platform.python_version()}, polars {pl.__version__}"
    )


def commit() -> str:
    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return head + (" with uncommitted changes" if dirty else "")


# --- (a) the snapshot build from a database ----------------------------------------


REGIONS = ("Ohio", "Texas", "California", "New York", "Florida", "Ontario", "Bavaria", "Victoria")
FACILITIES = ("academic", "community", "childrens", "private_practice", "government")
BASE_CASES = 100_000  # generated one by one; more are copies of these at other sites


def fill_cases(build_cases: int, site_count: int) -> None:
    """``build_cases`` submitted cases spread evenly over ``site_count`` sites.

    Up to BASE_CASES are made one by one from ``registry3d.dictionary.examples``
    (a third with the physician's answers); beyond that, rounds of copies of
    them are added in SQL, each round at other sites, with new codes and
    case IDs (the build's work a case is the same for a copy).
    """
    from django.db import connection
    from django.utils import timezone

    from registry3d.cases.models import Case
    from registry3d.dictionary import registry
    from registry3d.dictionary.examples import synthetic_case
    from registry3d.sites.models import Site

    dictionary = registry.current().dictionary
    today = timezone.localdate()
    Site.objects.bulk_create(
        Site(
            code=f"B{n:05d}",
            name=f"Build site {n}",
            region=REGIONS[n % len(REGIONS)],
            facility_type=FACILITIES[n % len(FACILITIES)],
            joined_on=today,
        )
        for n in range(site_count)
    )
    site_ids = list(Site.objects.order_by("pk").values_list("pk", flat=True))
    labels = {t: f"P-{t[:10]}" for t, _ in TECHNOLOGIES}
    rng = random.Random(1)
    now = timezone.now()
    base = min(build_cases, BASE_CASES)
    objects = []
    for n in range(base):
        data = synthetic_case(dictionary, rng, printer_labels=labels, with_questionnaire=n % 3 == 0)
        objects.append(
            Case(
                site_id=site_ids[n % len(site_ids)],
                case_uid=f"B-{n // 10000:04d}-{n % 10000:04d}",
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
        if len(objects) == 20_000 or n == base - 1:
            Case.objects.bulk_create(objects, batch_size=2000)
            objects = []
    if build_cases <= base:
        return
    assert connection.vendor == "sqlite", "copies are made with SQLite's SQL"
    table = Case._meta.db_table
    copied = [
        f.column
        for f in Case._meta.concrete_fields
        if f.column not in ("id", "code", "site_id", "case_uid")
    ]
    columns = ", ".join(copied)
    first_id = Case.objects.order_by("pk").values_list("pk", flat=True).first()
    rounds = -(-build_cases // base)
    with connection.cursor() as cursor:
        for k in range(1, rounds):
            wanted = min(base, build_cases - k * base)
            # Site ids run without gaps: move each copy k sites further on.
            cursor.execute(
                f"INSERT INTO {table} (code, site_id, case_uid, {columns}) "
                f"SELECT lower(hex(randomblob(16))), "
                f"%s + ((site_id - %s + %s) %% %s), 'C{k:03d}-' || case_uid, {columns} "
                f"FROM {table} WHERE id < %s",
                [site_ids[0], site_ids[0], k, len(site_ids), first_id + wanted],
            )
    assert site_ids[-1] - site_ids[0] == len(site_ids) - 1


def bench_build(build_cases: int, snapshot_file: Path, generated_rows: int, sites: int) -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from registry3d.cases.models import Case
    from registry3d.dictionary import registry
    from registry3d.reports import snapshot

    call_command("migrate", verbosity=0)
    dictionary = registry.current().dictionary
    started = time.perf_counter()
    now = timezone.now()
    fill_cases(build_cases, sites)
    print(
        f"\n(a) snapshot build: {build_cases:,} cases over {sites:,} sites written to "
        f"{connection.vendor} in {time.perf_counter() - started:.1f} s (not measured)"
    )
    path = Path(tempfile.mkdtemp(prefix="registry3d-bench-snap-")) / "cases.parquet"
    full = measure(lambda: snapshot.build(path, full=True), 1 if build_cases > 100_000 else 3)
    rate = build_cases / full.best
    built_sites = pl.read_parquet(path, columns=["site_id"])["site_id"].n_unique()
    print(
        f"  snapshot.build(full=True): {full.text()} = {rate:,.0f} rows/s "
        f"({built_sites:,} sites in the snapshot)"
    )
    print(f"  peak memory so far: {peak_mb():,.0f} MB")

    # Where the time goes: the query alone, then each row, then the frame and
    # the file, over the first 20,000 cases at most (all of them in memory).
    scenarios = snapshot._scenario_categories(dictionary)
    sample = min(build_cases, 20_000)
    fields = snapshot.CaseFields._fields
    query = Case.objects.order_by("pk").values_list(*fields)[:sample]

    def read_only():
        return sum(1 for _ in query.iterator(chunk_size=5000))

    cases = [snapshot.CaseFields(*values) for values in query]
    rows = []

    def rows_only():
        rows[:] = [snapshot.case_row(c, dictionary, scenarios) for c in cases]

    read = measure(read_only)
    row = measure(rows_only)
    frame = measure(lambda: pl.DataFrame(rows, schema=snapshot.ROW_SCHEMA))
    rates = snapshot.site_rates()
    costs = measure(lambda: snapshot.with_costs(frame.result, rates))
    out = path.with_name("scratch.parquet")
    write = measure(lambda: costs.result.sort("case_id").write_parquet(out))
    per = 1e6 / sample
    print(
        "  where: reading the cases (query, JSON decoding) "
        f"{read.best * per:.0f} µs a case; case_row {row.best * per:.0f} µs; "
        f"DataFrame {frame.best * per:.1f} µs; costs at the sites' rates "
        f"{costs.best * per:.1f} µs; sort + write {write.best * per:.1f} µs "
        f"(over {sample:,} cases)"
    )
    cases = rows = None  # free them

    # Incremental refresh: the generated snapshot in place of the small one.
    plan = " / ".join(Case.objects.filter(updated_at__gte=now).explain().splitlines())
    print(f"  the changed-cases query's plan ({connection.vendor}): {plan}")
    # Cases the generated snapshot holds too (its case ids run from 1), so
    # that each refresh replaces rows rather than adding them.
    ids = list(Case.objects.order_by("pk").values_list("pk", flat=True)[:generated_rows])
    changes = []
    state = path.with_suffix(".json")
    built = json.loads(state.read_text())
    for attempt in range(3):
        # The generated snapshot, as if built just now from this database.
        shutil.copyfile(snapshot_file, path)
        state.write_text(json.dumps({**built, "built_from": timezone.now().isoformat()}))
        chosen = random.Random(attempt).sample(ids, 1000)
        batch = list(Case.objects.filter(pk__in=chosen))
        for case in batch:
            case.data = {**case.data, "turnaround_days": 3 + attempt}
        Case.objects.bulk_update(batch, ["data", "updated_at"], batch_size=500)
        Case.objects.filter(pk__in=chosen).update(updated_at=timezone.now())
        timing = measure(lambda: snapshot.build(path), repeat=1)
        assert timing.result["read"] == 1000 and timing.result["incremental"], timing.result
        assert timing.result["rows"] == generated_rows, timing.result
        changes.append(timing)
    best = min(changes, key=lambda t: t.best)
    read_parquet = measure(lambda: pl.read_parquet(path))
    print(
        f"  incremental refresh, 1,000 changed cases of a {generated_rows:,}-row snapshot: "
        f"{best.text()} (3 refreshes: "
        + "/".join(f"{t.best:.2f}" for t in changes)
        + f"); of which reading the old file {read_parquet.best:.2f} s"
    )
    shutil.rmtree(path.parent)


# --- (b) the national benchmark table, engine and plain pandas -------------------------

PANDAS_COLUMNS = [
    "site_id",
    "site_code",
    "facility_type",
    "site_region",
    "case_id",
    "segmentation_min",
    "design_min",
    "printing_min",
    "post_processing_min",
    "staff_min",
    "turnaround_days",
    "material_cost_usd",
    "material_cost_per_part_usd",
    "labour_cost_usd",
    "labour_cost_per_part_usd",
    "total_cost_usd",
    "total_cost_per_part_usd",
    "answered",
    "plan_changed",
    "time_saved_min",
    "or_cost_saved_usd",
    "usefulness",
    "appropriateness",
    "completeness",
]


def pandas_load(path: Path):
    """What an analyst would do: read the columns, make the flags numbers."""
    import pandas as pd

    frame = pd.read_parquet(path, columns=PANDAS_COLUMNS)
    frame["answered"] = frame["answered"].astype("float64")
    frame["plan_changed"] = frame["plan_changed"].astype("float64")  # None → NaN
    frame["appropriate"] = (frame["appropriateness"] == "usually_appropriate").astype("float64")
    return frame


def pandas_table(frame):
    """Per site: each metric, its number of cases and its percentile rank."""
    from registry3d.reports.metrics import METRICS

    grouped = frame.groupby("site_id", sort=False)
    aggregations = {}
    for m in METRICS:
        if m.kind == "count":
            continue
        aggregations[m.name] = (m.column, "median" if m.kind == "median" else "mean")
        aggregations[f"{m.name}__n"] = (m.column, "count")
    table = grouped.agg(
        site_code=("site_code", "first"),
        facility_type=("facility_type", "first"),
        site_region=("site_region", "first"),
        cases=("case_id", "size"),
        **aggregations,
    )
    table["cases__n"] = table["cases"]
    table["cases"] = table["cases"].astype("float64")
    for m in METRICS:
        value = table[m.name].where(table[f"{m.name}__n"] > 0)
        table[f"{m.name}__rank"] = (value.rank(method="average") - 0.5) / value.count() * 100
    return table.sort_values("site_code")


def same_numbers(engine: pl.DataFrame, pandas) -> str:
    """Every value and count equal; ranks equal except where the float values tie."""
    from registry3d.reports.metrics import METRICS

    joined = engine.to_pandas().set_index("site_id").join(pandas.add_suffix("_pd"), how="outer")
    worst, near_ties = 0.0, 0
    for m in METRICS:
        a, b = joined[m.name], joined[m.name + "_pd"]
        assert (a.isna() == b.isna()).all(), m.name
        worst = max(worst, float(((a - b).abs() / b.abs().clip(lower=1)).max()))
        assert (joined[f"{m.name}__n"] == joined[f"{m.name}__n_pd"]).all(), m.name
        rank, rank_pd = joined[f"{m.name}__rank"], joined[f"{m.name}__rank_pd"]
        assert (rank.isna() == rank_pd.isna()).all(), m.name
        differ = (rank - rank_pd).abs() > 1e-9
        if differ.any():
            # Allowed only where another site's value is the same up to the last bits
            # (a median of an even count is a + (b - a) / 2 in polars, (a + b) / 2 in pandas).
            rounded = b.round(9)
            assert rounded[differ].isin(rounded[rounded.duplicated(keep=False)]).all(), m.name
            near_ties += int(differ.sum())
    assert worst < 1e-9, worst
    text = f"{len(joined):,} sites: every value and count equal (largest difference {worst:.0e})"
    return text + f", ranks equal but {near_ties} where two sites' values differ in the last bits"


# --- (c) one site's dashboard ------------------------------------------------------


def dashboard(df: pl.DataFrame, site_code: str, snapshot_key=None):
    from registry3d.reports import metrics

    filters = metrics.Filters.default(df, today=TODAY, snapshot_key=snapshot_key)
    quarters = metrics.quarters_between(metrics.shift_quarter(filters.end, -7), filters.end)
    report = metrics.site_report(df, site_code, filters, snapshot_key=snapshot_key)
    trends = [
        metrics.trend(df, site_code, metrics.BY_NAME[name], quarters, snapshot_key=snapshot_key)
        for name in ("turnaround_days", "answered")
    ]
    answered = metrics.BY_NAME["answered"]
    if snapshot_key is None:
        funnel = metrics.funnel(filters.apply(df), answered, site_code)
    else:  # as the dashboard page does: from the shared site table
        funnel = metrics.funnel(df, answered, site_code, sites_table=report.sites_table)
    return report, trends, funnel


def dashboard_page(df: pl.DataFrame, site_code: str, snapshot_key):
    """The figures and plots of the site's dashboard page, as its view computes them."""
    from registry3d.reports import metrics, views

    filters = metrics.Filters.default(df, today=TODAY, snapshot_key=snapshot_key)
    report = metrics.site_report(df, site_code, filters, snapshot_key=snapshot_key)
    return views.build_rows(df, site_code, filters, report, snapshot_key)


def dashboard_parts(df: pl.DataFrame, site_code: str) -> str:
    from registry3d.reports import metrics

    filters = metrics.Filters.default(df, today=TODAY)
    quarters = metrics.quarters_between(metrics.shift_quarter(filters.end, -7), filters.end)
    chosen = filters.apply(df)
    table = metrics.site_values(chosen)
    parts = {
        "filter": measure(lambda: filters.apply(df)),
        "site_values": measure(lambda: metrics.site_values(chosen)),
        "volume bands (map_elements)": measure(
            lambda: table.with_columns(
                pl.col("cases").map_elements(metrics.volume_band, return_dtype=pl.String)
            )
        ),
        "site_report": measure(lambda: metrics.site_report(df, site_code, filters)),
        "trend, one metric": measure(
            lambda: metrics.trend(df, site_code, metrics.BY_NAME["answered"], quarters)
        ),
        "funnel": measure(lambda: metrics.funnel(chosen, metrics.BY_NAME["answered"], site_code)),
    }
    return "; ".join(f"{k} {v.best * 1000:.0f} ms" for k, v in parts.items())


# --- prototypes of changes to the engine (measured beside it, not used by it) -----------


def proto_site_values(df: pl.DataFrame) -> pl.DataFrame:
    """Grouping by the site's id alone: first a prototype here, now the engine's own."""
    from registry3d.reports import metrics

    attributes = [pl.col(c).first() for c in ("site_code", "facility_type", "site_region")]
    aggregations = metrics._aggregations(metrics.METRICS)
    return metrics.prepared(df).group_by("site_id").agg(*attributes, *aggregations)


class patched:
    """Replace attributes of the engine for the duration of a block."""

    def __init__(self, owner, **replacements):
        self.owner, self.replacements, self.saved = owner, replacements, {}

    def __enter__(self):
        for name, value in self.replacements.items():
            self.saved[name] = getattr(self.owner, name)
            setattr(self.owner, name, value)

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            setattr(self.owner, name, value)


def same_figures(a, b) -> bool:
    """Equal up to the last bits of floats (polars' group sums depend on its threads)."""
    import dataclasses
    import math

    if dataclasses.is_dataclass(a):
        # The shared site table behind a report is not one of its figures.
        a, b = (
            {f.name: getattr(x, f.name) for f in dataclasses.fields(x) if f.name != "sites_table"}
            for x in (a, b)
        )
    if isinstance(a, dict):
        if "missing" in a:  # elements with as many cases come in no set order
            a, b = {**a, "missing": sorted(a["missing"])}, {**b, "missing": sorted(b["missing"])}
        return a.keys() == b.keys() and all(same_figures(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same_figures(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-8)
    return a == b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--sites", type=int, default=6_500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--build-cases", type=int, default=20_000)
    parser.add_argument("--skip-build", action="store_true", help="leave out part (a)")
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    var = tempfile.mkdtemp(prefix="registry3d-bench-")
    atexit.register(shutil.rmtree, var, True)  # its database: 3 GB a million cases
    os.environ["REGISTRY3D_VAR_DIR"] = var
    os.environ.pop("DATABASE_URL", None)  # SQLite in the temporary folder
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry3d.settings")
    import django

    django.setup()
    if args.generate_only:
        path = CACHE / f"snapshot-{args.cases}-{args.sites}-{args.seed}.parquet"
        generate(args.cases, args.sites, args.seed, path)
        return
    from registry3d.reports import metrics

    print(f"date {datetime.now():%Y-%m-%d %H:%M}, commit {commit()}")
    print(f"machine: {machine()}, polars threads {pl.thread_pool_size()}")
    path = generated_snapshot(args.cases, args.sites, args.seed)
    print(f"snapshot: {path.name}, {path.stat().st_size / 2**20:,.0f} MiB on disk")

    if not args.skip_build:
        bench_build(args.build_cases, path, args.cases, args.sites)
        print(f"  peak memory so far: {peak_mb():,.0f} MB")

    load = measure(lambda: pl.read_parquet(path), repeat=1)
    df = load.result
    sizes = df.group_by("site_id").len()["len"]
    print(
        f"\n{df.height:,} cases over {sizes.len():,} sites (cases a site: median "
        f"{sizes.median():.0f}, p90 {sizes.quantile(0.9):.0f}, max {sizes.max():,}, "
        f"{(sizes < 11).sum()} sites under 11); pl.read_parquet {load.text()}; "
        f"in memory {df.estimated_size() / 2**20:,.0f} MiB"
    )

    print("\n(b) national benchmark table, every site's percentile ranks, all periods")
    engine = measure(lambda: metrics.benchmark_table(df), args.repeat)
    print(f"  metrics.benchmark_table: {engine.text()}")
    year = metrics.Filters.default(df, today=TODAY)
    engine_year = measure(lambda: metrics.benchmark_table(df, year), args.repeat)
    print(f"  metrics.benchmark_table, {year.label}: {engine_year.text()}")
    print(f"  peak memory so far: {peak_mb():,.0f} MB")
    pandas_frame = measure(lambda: pandas_load(path), repeat=1)
    frame = pandas_frame.result
    print(f"  pandas: read_parquet (19 columns) + flags {pandas_frame.text()}")
    plain = measure(lambda frame=frame: pandas_table(frame), args.repeat)
    print(f"  plain pandas groupby + rank: {plain.text()}")
    print(
        f"  engine {plain.best / engine.best:.1f}x faster than plain pandas "
        f"(with loading: {(pandas_frame.best + plain.best) / (load.best + engine.best):.1f}x); "
        + same_numbers(engine.result, plain.result)
    )
    del frame, pandas_frame

    def proto_table(frame):
        with patched(metrics, site_values=proto_site_values):
            return metrics.benchmark_table(frame)

    proto = measure(lambda: proto_table(df), args.repeat)
    same_numbers(proto.result, plain.result)
    print(f"  prototype, group by site_id alone: {proto.text()} (same numbers)")
    by_site = measure(lambda: df.sort("site_id", "case_id"), repeat=1)
    sorted_df = by_site.result
    print(f"  sorting the snapshot by site (once, when it is built): {by_site.text()}")
    engine_sorted = measure(lambda: metrics.benchmark_table(sorted_df), args.repeat)
    proto_sorted = measure(lambda: proto_table(sorted_df), args.repeat)
    same_numbers(proto_sorted.result, plain.result)
    print(f"  metrics.benchmark_table, snapshot sorted by site: {engine_sorted.text()}")
    print(
        f"  prototype on the snapshot sorted by site: {proto_sorted.text()}, "
        f"{plain.best / proto_sorted.best:.1f}x faster than plain pandas (same numbers)"
    )
    del plain
    print(f"  peak memory so far: {peak_mb():,.0f} MB")

    print("\n(c) one site's dashboard: site_report + trend of 2 metrics (8 quarters) + funnel")
    codes = df.group_by("site_code").len().sort("len", "site_code")
    for label, row in (("median site", codes.height // 2), ("largest site", codes.height - 1)):
        code, n = codes["site_code"][row], codes["len"][row]
        warm = measure(lambda code=code: dashboard(df, code), args.repeat)
        cold = measure(lambda code=code: dashboard(pl.read_parquet(path), code), args.repeat)
        print(f"  {label} {code} ({n:,} cases), snapshot in memory: {warm.text('ms')}")
        print(f"  {label} {code}, with pl.read_parquet first: {cold.text('ms')}")
    median_code = codes["site_code"][codes.height // 2]
    print(f"  where, in memory ({median_code}): {dashboard_parts(df, median_code)}")
    # The engine's tables shared per snapshot build (what the dashboard page
    # does), on the snapshot sorted by site as the build writes it.
    fill = measure(lambda: dashboard(sorted_df, median_code, snapshot_key="bench"), repeat=1)
    for code in (median_code, codes["site_code"][codes.height - 1]):
        shared = measure(
            lambda code=code: dashboard(sorted_df, code, snapshot_key="bench"), args.repeat
        )
        assert same_figures(shared.result, dashboard(df, code)), "shared tables changed a figure"
        print(f"  engine, site tables shared per snapshot: {code} {shared.text('ms')}")
    print(f"    (filling them, once per snapshot build and period: {fill.text('ms')}; same)")
    # Everything the dashboard page computes: every metric's row, trend plot
    # (20 metrics, 8 quarters) and funnel plot; only the HTML is left out.
    from registry3d.reports import views

    page_fill = measure(lambda: dashboard_page(sorted_df, median_code, "page"), repeat=1)
    for code in (median_code, codes["site_code"][codes.height - 1]):
        page = measure(lambda code=code: dashboard_page(sorted_df, code, "page"), args.repeat)
        print(f"  dashboard page's figures and plots, shared tables: {code} {page.text('ms')}")
    print(f"    (filling them, once per snapshot build and period: {page_fill.text('ms')})")
    del views
    print(f"\npeak memory: {peak_mb():,.0f} MB (ru_maxrss)")


if __name__ == "__main__":
    main()
