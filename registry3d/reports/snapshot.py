"""The reports' snapshot: one row per submitted case, in a Parquet file.

Reports never read case JSON: they read this columnar snapshot, built from
the cases by :func:`case_row` (the only place that knows which case element
feeds which report column) and refreshed incrementally — only cases changed
since the last build are read again.
"""

import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import polars as pl
from django.conf import settings

from registry3d.cases.models import Case, CaseStatus
from registry3d.dictionary import derive, registry

CPT_CODES = ("0559T", "0560T", "0561T", "0562T")
SEGMENTATION = ("effort_segmentation_clinician", "effort_segmentation_non_clinician")
DESIGN = ("effort_cad_clinician", "effort_cad_non_clinician")
POST_PROCESSING = (
    "effort_prep_post_processing_clinician",
    "effort_prep_post_processing_non_clinician",
)
# The case elements the metrics read; a case's completeness is the share of
# them it holds (questionnaire answers are counted by their own metric).
COMPLETENESS_ELEMENTS = (
    *SEGMENTATION,
    *DESIGN,
    *POST_PROCESSING,
    "turnaround_days",
    "appropriateness_scenario",
    "procedure_performed",
)
# The columns read from each case by case_row().
ROW_SCHEMA = {
    "case_id": pl.Int64,
    "site_id": pl.Int64,
    "site_code": pl.String,
    "facility_type": pl.String,
    "site_region": pl.String,
    "case_month": pl.String,
    "quarter": pl.String,
    "year": pl.Int32,
    "organ_system": pl.String,
    "object_type": pl.String,
    "technology": pl.String,
    **{f"units_{code}": pl.Int32 for code in CPT_CODES},
    "segmentation_min": pl.Float64,
    "design_min": pl.Float64,
    "printing_min": pl.Float64,
    "post_processing_min": pl.Float64,
    "staff_min": pl.Float64,
    "clinician_min": pl.Float64,
    "non_clinician_min": pl.Float64,
    "turnaround_days": pl.Float64,
    "material_cost_usd": pl.Float64,
    "part_count": pl.Int32,
    "material_cost_per_part_usd": pl.Float64,
    "answered": pl.Boolean,
    "plan_changed": pl.Boolean,
    "time_saved_min": pl.Float64,
    "usefulness": pl.Float64,
    "appropriateness": pl.String,
    "completeness": pl.Float64,
    "missing": pl.String,  # the completeness elements the case lacks, ';'-joined
    "updated_at": pl.Datetime("us", "UTC"),
}
# The columns that turn minutes into money at the site's current rates,
# computed again at every build by with_costs(), so that a changed rate
# reaches every case of the site at the next refresh.
COST_SCHEMA = {
    "labour_cost_usd": pl.Float64,
    "labour_cost_per_part_usd": pl.Float64,
    "total_cost_usd": pl.Float64,
    "total_cost_per_part_usd": pl.Float64,
    "or_cost_saved_usd": pl.Float64,
}
SCHEMA = {**ROW_SCHEMA, **COST_SCHEMA}


def quarter_of(case_month: str) -> str:
    """``2026-08`` → ``2026Q3``."""
    year, month = case_month.split("-")
    return f"{year}Q{(int(month) - 1) // 3 + 1}"


def _minutes(data: dict, names) -> float | None:
    values = [data.get(n) for n in names]
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return float(sum(numbers)) if numbers else None


def _number(value) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _scenario_categories(dictionary) -> dict[str, str]:
    table = dictionary.references.get("appropriateness.yaml") or {}
    return {s["id"]: s.get("category") or "" for s in table.get("scenarios") or []}


class CaseFields(NamedTuple):
    """The fields of a case that :func:`case_row` reads, as one query gives them."""

    pk: int
    site_id: int
    status: str
    case_month: str
    organ_system: str
    object_type: str
    technology: str
    updated_at: datetime
    data: dict


def case_row(case: CaseFields | Case, dictionary, scenarios: dict[str, str]) -> dict:
    """The snapshot row of one submitted case; its site's columns come from :func:`with_sites`."""
    data = case.data
    derived = derive.derive(dictionary, data)
    prints = [p for p in data.get("prints") or [] if isinstance(p, dict)]
    units = {code: 0 for code in CPT_CODES}
    for line in data.get("cpt_lines") or []:
        if isinstance(line, dict) and line.get("code") in units:
            units[line["code"]] += int(line.get("units") or 1)
    post = _minutes(data, POST_PROCESSING)
    # One figure for all prints of the case (an element of the case, not of a print).
    machine = _number(data.get("post_processing_machine_minutes"))
    if machine is not None:
        post = (post or 0.0) + machine
    printing = [p.get("print_time_minutes") for p in prints]
    printing_min = (
        float(sum(v for v in printing if isinstance(v, int)))
        if any(isinstance(v, int) for v in printing)
        else None
    )
    material = _number(derived.get("total_material_cost_usd"))
    parts = int(derived.get("part_count") or 0)
    answered = "respondent_role" in data
    change = data.get("plan_change_type")
    plan_changed = None
    if answered and isinstance(change, list) and change:
        plan_changed = change != ["none"]
    usefulness = data.get("ua_important")
    scenario = data.get("appropriateness_scenario")
    missing = [n for n in COMPLETENESS_ELEMENTS if data.get(n) in (None, "", [], "unknown")]
    return {
        "case_id": case.pk,
        "site_id": case.site_id,
        "site_code": None,
        "facility_type": None,
        "site_region": None,
        "case_month": case.case_month,
        "quarter": quarter_of(case.case_month),
        "year": int(case.case_month[:4]),
        "organ_system": case.organ_system,
        "object_type": case.object_type,
        "technology": case.technology,
        **{f"units_{code}": units[code] for code in CPT_CODES},
        "segmentation_min": _minutes(data, SEGMENTATION),
        "design_min": _minutes(data, DESIGN),
        "printing_min": printing_min,
        "post_processing_min": post,
        "staff_min": _number(derived.get("total_effort_minutes")),
        "clinician_min": _number(derived.get("total_clinician_minutes")),
        "non_clinician_min": _number(derived.get("total_non_clinician_minutes")),
        "turnaround_days": _number(data.get("turnaround_days")),
        "material_cost_usd": material,
        "part_count": parts,
        "material_cost_per_part_usd": round(material / parts, 2)
        if material is not None and parts
        else None,
        "answered": answered,
        "plan_changed": plan_changed,
        "time_saved_min": _number(data.get("est_procedure_time_saved_min")) if answered else None,
        "usefulness": float(usefulness) if answered and str(usefulness or "").isdigit() else None,
        "appropriateness": scenarios.get(scenario, "") if scenario else "",
        "completeness": 1 - len(missing) / len(COMPLETENESS_ELEMENTS),
        "missing": ";".join(missing),
        "updated_at": case.updated_at,
    }


def site_rates() -> pl.DataFrame:
    """Per site: the hourly staff costs and the operating-room cost per minute in force."""
    from registry3d.sites.models import Site

    rows = []
    for site in Site.objects.all():
        staff = site.staff_costs
        rows.append(
            {
                "site_id": site.pk,
                "clinician_per_hour": staff["clinician"][0],
                "non_clinician_per_hour": staff["non_clinician"][0],
                "or_per_minute": site.or_cost[0],
            }
        )
    return pl.DataFrame(rows, schema=RATES_SCHEMA)


# What a row takes from its site as the site is now, joined again at every
# build, so that a site that changes its code, region or facility type is
# grouped anew at the next refresh (like a changed rate).
SITE_SCHEMA = {
    "site_id": pl.Int64,
    "site_code": pl.String,
    "facility_type": pl.String,
    "site_region": pl.String,
}


def site_attributes() -> pl.DataFrame:
    """Per site: its code, facility type and region."""
    from registry3d.sites.models import Site

    rows = Site.objects.values_list("pk", "code", "facility_type", "region")
    return pl.DataFrame(list(rows), schema=SITE_SCHEMA, orient="row")


def with_sites(table: pl.DataFrame, sites: pl.DataFrame) -> pl.DataFrame:
    """``table`` with its site columns taken from ``sites`` (see :func:`site_attributes`)."""
    return table.drop([c for c in SITE_SCHEMA if c != "site_id"]).join(
        sites, on="site_id", how="left"
    )


RATES_SCHEMA = {
    "site_id": pl.Int64,
    "clinician_per_hour": pl.Float64,
    "non_clinician_per_hour": pl.Float64,
    "or_per_minute": pl.Float64,
}


def with_costs(table: pl.DataFrame, rates: pl.DataFrame) -> pl.DataFrame:
    """``table`` with the cost columns computed at ``rates`` (see :func:`site_rates`).

    1. Labour: clinician and non-clinician minutes, each at its hourly cost;
       a kind of time the case did not use needs no rate. Known only when
       the case's staff time is known in full and every rate it needs is.
    2. Total: material plus labour, when both are known.
    3. Per part: divided by the number of anatomic parts (models only).
    4. Operating-room cost saved: the physician's estimate of minutes saved
       at the site's operating-room cost per minute (negative: time added).
    """

    def labour_of(minutes: str, rate: str) -> pl.Expr:
        return (
            pl.when(pl.col(minutes) == 0).then(0.0).otherwise(pl.col(minutes) / 60 * pl.col(rate))
        )

    def per_part(column: str) -> pl.Expr:
        return pl.when(pl.col("part_count") > 0).then(
            (pl.col(column) / pl.col("part_count")).round(2)
        )

    return (
        table.drop(COST_SCHEMA, strict=False)
        .join(rates, on="site_id", how="left")
        .with_columns(
            labour_cost_usd=(
                labour_of("clinician_min", "clinician_per_hour")
                + labour_of("non_clinician_min", "non_clinician_per_hour")
            ).round(2),
            or_cost_saved_usd=(pl.col("time_saved_min") * pl.col("or_per_minute")).round(2),
        )
        .with_columns(
            total_cost_usd=(pl.col("material_cost_usd") + pl.col("labour_cost_usd")).round(2)
        )
        .with_columns(
            labour_cost_per_part_usd=per_part("labour_cost_usd"),
            total_cost_per_part_usd=per_part("total_cost_usd"),
        )
        .select(pl.col(name).cast(dtype) for name, dtype in SCHEMA.items())
    )


def snapshot_path() -> Path:
    return Path(settings.VAR_DIR) / "reports" / "cases.parquet"


def _state_path(path: Path) -> Path:
    return path.with_suffix(".json")


def build(path: Path | None = None, *, full: bool = False, batch_size: int = 5000) -> dict:
    """Write or refresh the snapshot; return what was done.

    Without ``full``, only cases changed since the last build are read again;
    withdrawn, draft and removed cases leave the snapshot. The new file
    replaces the old one at once (written beside it, then renamed), so
    readers never see half a snapshot.
    """
    path = path or snapshot_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    state_file = _state_path(path)
    since, state = None, {}
    if not full and is_current(path) and state_file.exists():
        state = json.loads(state_file.read_text())
        since = datetime.fromisoformat(state["built_from"])
    started = datetime.now(UTC)
    rates, sites = site_rates(), site_attributes()
    rates_digest = hashlib.sha256((rates.write_csv() + sites.write_csv()).encode()).hexdigest()
    dictionary = registry.current().dictionary
    scenarios = _scenario_categories(dictionary)
    cases = Case.objects.order_by("pk")
    if since is not None:
        cases = cases.filter(updated_at__gte=since)
    frames, read = [], 0
    rows: list[dict] = []
    changed_ids: list[int] = []
    # Plain tuples, not model instances: a full build reads every case.
    for values in cases.values_list(*CaseFields._fields).iterator(chunk_size=batch_size):
        case = CaseFields(*values)
        read += 1
        changed_ids.append(case.pk)
        if case.status == CaseStatus.SUBMITTED and case.case_month:
            rows.append(case_row(case, dictionary, scenarios))
        if len(rows) >= batch_size:
            frames.append(pl.DataFrame(rows, schema=ROW_SCHEMA))
            rows = []
    if rows:
        frames.append(pl.DataFrame(rows, schema=ROW_SCHEMA))
    if since is not None and read == 0 and state.get("rates") == rates_digest:
        # Nothing changed: the file and its build time stay, so pages keep the
        # tables they computed from it; only the time of this check is noted.
        _write_state(state_file, {**state, "checked_at": started.isoformat()})
        return {"rows": state.get("rows", 0), "read": 0, "incremental": True, "unchanged": True}
    fresh = pl.concat(frames) if frames else pl.DataFrame(schema=ROW_SCHEMA)
    if since is not None:
        # Cases are never deleted: a withdrawn one changed, so it was read again.
        kept = pl.read_parquet(path, columns=list(ROW_SCHEMA)).filter(
            ~pl.col("case_id").is_in(changed_ids)
        )
        table = pl.concat([kept, fresh])
    else:
        table = fresh
    # Sorted by site: every report groups by site, and contiguous groups are
    # several times faster to aggregate than scattered ones.
    table = with_costs(with_sites(table, sites), rates).sort("site_id", "case_id")
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".parquet")
    os.close(handle)
    table.write_parquet(temporary)
    os.replace(temporary, path)
    _write_state(
        state_file,
        {
            "built_from": started.isoformat(),
            "checked_at": started.isoformat(),
            "rows": table.height,
            "read": read,
            "rates": rates_digest,
        },
    )
    return {"rows": table.height, "read": read, "incremental": since is not None}


def _write_state(state_file: Path, state: dict) -> None:
    """Replace the snapshot's state file at once (written beside it, then renamed)."""
    handle, temporary = tempfile.mkstemp(dir=state_file.parent, suffix=".json")
    with os.fdopen(handle, "w") as out:
        json.dump(state, out)
    os.replace(temporary, state_file)


def is_current(path: Path) -> bool:
    """Whether a snapshot exists at ``path`` with every column of this registry's.

    One written by an older registry is built again in full.
    """
    try:
        return set(pl.read_parquet_schema(path)) >= set(SCHEMA)
    except (OSError, pl.exceptions.PolarsError):
        return False


def load(path: Path | None = None) -> pl.DataFrame:
    """The snapshot, built first if there is none (or it is outdated)."""
    path = path or snapshot_path()
    if not is_current(path):
        build(path)
    return pl.read_parquet(path)
