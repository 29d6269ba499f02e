"""The site dashboard: a site's figures against the registry's and its peers'.

Figures come from :mod:`registry3d.reports.metrics` over the snapshot; the
snapshot is refreshed (incrementally) first when it is missing or older than
:data:`STALE_AFTER`. A site sees its own figures in full; figures of the
registry and of peer groups only as medians and quartiles, and only when
they are built from enough cases and sites (the engine suppresses the rest).
Nothing on the page names another site or shows one of its figures.
"""

import dataclasses
import functools
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import polars as pl
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from registry3d.dictionary import registry
from registry3d.reports import metrics, snapshot
from registry3d.sites.middleware import remember_site
from registry3d.sites.models import SiteRole
from registry3d.sites.services import get_site_for_user, membership_for

STALE_AFTER = timedelta(minutes=5)
QUARTER = re.compile(r"^\d{4}Q[1-4]$")
FIRST_QUARTER = "2000Q1"
MAX_QUARTERS = 40  # ten years: a longer trend is neither readable nor cheap
PEER_ORDER = ("facility_type", "region", "volume")
PEER_SHORT = {"facility_type": "Facility type", "region": "Region", "volume": "Volume"}
_build_lock = threading.Lock()


def _built_from(path, key: str = "built_from") -> datetime | None:
    """When the snapshot at ``path`` was built (or last checked, with ``key="checked_at"``).

    None if there is none, or it is unreadable or outdated.
    """
    state = path.with_suffix(".json")
    if not state.exists() or not snapshot.is_current(path):
        return None
    try:
        values = json.loads(state.read_text())
        return datetime.fromisoformat(values.get(key) or values["built_from"])
    except (ValueError, KeyError, OSError):
        return None


def fresh_snapshot(now: datetime | None = None) -> tuple[pl.DataFrame, datetime | None]:
    """The snapshot and when it was built, refreshed first if missing or stale.

    A refresh that finds nothing changed keeps the build time, and with it
    the tables every page computed from the snapshot.
    """
    path = snapshot.snapshot_path()
    now = now or datetime.now(UTC)
    checked = _built_from(path, "checked_at")
    if checked is None or now - checked > STALE_AFTER:
        with _build_lock:
            checked = _built_from(path, "checked_at")  # another request may have just built it
            if checked is None or now - checked > STALE_AFTER:
                snapshot.build(path)
    built = _built_from(path)
    global _loaded
    if _loaded is None or _loaded[0] != built or built is None:
        _loaded = (built, pl.read_parquet(path))
    return _loaded[1], built


# The snapshot last read, by its build time: read once per refresh, not per page.
_loaded: tuple[datetime | None, pl.DataFrame] | None = None


def _choices(dictionary, value_set: str) -> list[tuple[str, str]]:
    vs = dictionary.value_sets.get(value_set)
    return [(c.code, c.label) for c in vs.codes if c.active] if vs else []


def parse_filters(
    params, df: pl.DataFrame, choices: dict, snapshot_key=None
) -> tuple[metrics.Filters, bool]:
    """The filters asked for, or the defaults; and whether the period is the default one."""
    default = metrics.Filters.default(df, snapshot_key=snapshot_key)
    start = params.get("start", "")
    end = params.get("end", "")
    latest = f"{date.today().year + 1}Q4"
    start = (
        start if QUARTER.fullmatch(start) and FIRST_QUARTER <= start <= latest else default.start
    )
    end = end if QUARTER.fullmatch(end) and FIRST_QUARTER <= end <= latest else default.end
    if start > end:
        start, end = end, start
    if len(metrics.quarters_between(start, end)) > MAX_QUARTERS:
        start = metrics.shift_quarter(end, 1 - MAX_QUARTERS)
    chosen = metrics.Filters(start, end)
    for name, options in choices.items():
        value = params.get(name, "")
        if value in {code for code, _ in options}:
            setattr(chosen, name, value)
    return chosen, (start, end) == (default.start, default.end)


def _quarter_options(df: pl.DataFrame, filters: metrics.Filters, built=None) -> list[str]:
    known = metrics.quarters_held(df, built)
    first = min([filters.start, *known[:1]])
    last = max([filters.end, *known[-1:]])
    return metrics.quarters_between(first, last)


def display(value: float | None, metric: metrics.Metric) -> str:
    """A metric's value as people read it: counts whole, shares in percent."""
    if value is None:
        return "–"
    if metric.kind == "count":
        return f"{value:.0f}"
    if metric.is_proportion:
        return f"{100 * value:.0f}%"
    if metric.unit == "%":  # a mean share, such as completeness
        return f"{100 * value:.0f}%"
    if abs(value) >= 100:
        return f"{value:.0f} {metric.unit}"
    return f"{value:.1f} {metric.unit}"


def ordinal(rank: float | None) -> str:
    if rank is None:
        return ""
    number = round(rank)
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"


@dataclass
class Shown:
    """One comparison as the page shows it."""

    key: str
    label: str
    comparison: metrics.Comparison
    median: str = ""
    iqr: str = ""
    rank: str = ""


@dataclass
class Row:
    metric: metrics.Metric
    value: str
    cases: int
    comparisons: list[Shown] = field(default_factory=list)
    trend_svg: str = ""
    distribution_svg: str = ""
    funnel_svg: str = ""
    funnel_note: str = ""


def _shown(key: str, label: str, comparison: metrics.Comparison, metric) -> Shown:
    shown = Shown(key, label, comparison)
    if comparison.shown:
        shown.median = display(comparison.median, metric)
        shown.iqr = f"{display(comparison.q1, metric)} – {display(comparison.q3, metric)}"
        shown.rank = ordinal(comparison.rank)
    return shown


def _plot_unit(metric: metrics.Metric) -> str:
    return "%" if metric.is_proportion or metric.unit == "%" else metric.unit


def build_rows(
    df: pl.DataFrame, site_code: str, filters: metrics.Filters, report, built=None
) -> list[Row]:
    """The figures and plots of every metric, comparisons only when the gate is open."""
    key = None if built is None else (built, dataclasses.astuple(filters))
    from registry3d.reports import plots

    chosen = functools.cache(lambda: filters.apply(df))  # read only if no shared table
    quarters = tuple(metrics.quarters_between(filters.start, filters.end))
    rows = []
    for item in report.rows:
        metric = item.metric
        unit = _plot_unit(metric)
        row = Row(metric, display(item.value, metric), item.cases)
        trend = metrics.trend(chosen, site_code, metric, list(quarters), snapshot_key=key)
        registry_trend = None
        if report.gate_open:
            registry_trend = tuple(point["registry"] for point in trend)
            row.comparisons.append(_shown("registry", "Registry", item.registry, metric))
            for key in PEER_ORDER:
                if key in item.peers:
                    label = report.peer_labels.get(key, PEER_SHORT[key])
                    row.comparisons.append(_shown(key, label, item.peers[key], metric))
        row.trend_svg = plots.trend(
            metric.label, unit, quarters, tuple(point["site"] for point in trend), registry_trend
        )
        groups = tuple(
            (PEER_SHORT.get(s.key, s.label), s.comparison.q1, s.comparison.median, s.comparison.q3)
            for s in row.comparisons
            if s.comparison.shown
        )
        if groups:
            row.distribution_svg = plots.distribution(metric.label, unit, item.value, groups)
        if metric.is_proportion and report.gate_open:
            table = report.sites_table
            cases = chosen() if table is None else df  # the table, when there is one
            funnel = metrics.funnel(cases, metric, site_code, sites_table=table)
            if funnel["suppressed"] or funnel["point"] is None:
                row.funnel_note = (
                    f"Funnel plot suppressed: fewer than {metrics.MIN_CASES} cases or "
                    f"{metrics.MIN_SITES} sites."
                    if funnel["suppressed"]
                    else "No funnel plot: your site has no case with this figure."
                )
            else:
                n, own = funnel["point"]
                row.funnel_svg = plots.funnel(metric.label, funnel["rate"], n, own)
        rows.append(row)
    return rows


def _site_context(request, site) -> dict:
    membership = membership_for(request.user, site)
    return {
        "site": site,
        "is_manager": request.user.is_registry_admin
        or (membership is not None and membership.allows(SiteRole.MANAGER)),
    }


@login_required
def site_dashboard(request, code):
    """The site's figures for a period against the registry's and its peers'."""
    site = get_site_for_user(request.user, code, case_level=False)
    remember_site(request, site)
    df, built = fresh_snapshot()
    dictionary = registry.current().dictionary
    choices = {
        "organ_system": _choices(dictionary, "organ_system"),
        "object_type": _choices(dictionary, "object_type"),
        "technology": _choices(dictionary, "print_technology"),
    }
    filters, rolling = parse_filters(request.GET, df, choices, snapshot_key=built)
    report = metrics.site_report(df, site.code, filters, snapshot_key=built)
    labels = {e: dictionary.element(e).label for e in snapshot.COMPLETENESS_ELEMENTS}
    missing = [(labels.get(name, name), count) for name, count in report.missing]
    rows = build_rows(df, site.code, filters, report, built)
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.metric.group, []).append(row)
    context = {
        **_site_context(request, site),
        "filters": filters,
        "rolling": rolling,
        "quarters": _quarter_options(df, filters, built),
        "choices": choices,
        "chosen_labels": [
            dict(choices[name])[getattr(filters, name)]
            for name in choices
            if getattr(filters, name)
        ],
        "report": report,
        "completeness": display(report.completeness, metrics.BY_NAME["completeness"]),
        "threshold": f"{100 * settings.REGISTRY3D_REPORT_MIN_COMPLETENESS:.0f}%",
        "missing": missing,
        "groups": groups,
        "funnels": [row for row in rows if row.metric.is_proportion],
        "built": built,
        "stale_minutes": int(STALE_AFTER.total_seconds() // 60),
        "min_cases": metrics.MIN_CASES,
        "min_sites": metrics.MIN_SITES,
    }
    partial = request.htmx and not request.htmx.history_restore_request
    template = "reports/_dashboard_body.html" if partial else "reports/dashboard.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response
