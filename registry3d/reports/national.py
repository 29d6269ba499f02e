"""The national evidence report: registry-wide volumes and value, for analysts.

Every figure is computed once, here, as a :class:`Figure`; the web page, the
PDF and the CSV only lay the same figures out. Every figure is suppressed
when fewer than :data:`~registry3d.reports.metrics.MIN_CASES` cases are
behind it. Proportions carry a 95% Wilson interval, means and medians a 95%
percentile-bootstrap interval with a fixed seed, so the same snapshot always
gives the same report.
"""

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np
import polars as pl

from registry3d.reports import snapshot
from registry3d.reports.metrics import BY_NAME, MIN_CASES, Filters, quarters_between, wilson

PERIOD_HELP = "expected 2026Q3, 2025Q4-2026Q3 or 2026"
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20260
CSV_COLUMNS = ("table", "group", "measure", "value", "low", "high", "cases", "sites", "suppressed")
# The value metrics of the tables by indication, region, model type and technology.
VALUE_METRICS = ("answered", "plan_changed", "time_saved_min", "usefulness")
APPROPRIATENESS = (
    ("usually_appropriate", "Usually appropriate"),
    ("may_be_appropriate", "May be appropriate"),
    ("rarely_appropriate", "Rarely appropriate"),
    ("", "Not rated"),
)
NOT_RATED = "not_rated"


class PeriodError(ValueError):
    """A period that is not a quarter, a range of quarters or a year."""


def parse_period(text: str) -> Filters:
    """``2026Q3``, ``2025Q4-2026Q3`` or ``2026`` (its four quarters) → :class:`Filters`."""
    text = (text or "").strip().upper()
    quarter = r"(\d{4})Q([1-4])"
    if re.fullmatch(r"\d{4}", text):
        return Filters(f"{text}Q1", f"{text}Q4")
    if re.fullmatch(quarter, text):
        return Filters(text, text)
    match = re.fullmatch(rf"({quarter})\s*-\s*({quarter})", text)
    if match and match.group(1) <= match.group(4):
        return Filters(match.group(1), match.group(4))
    raise PeriodError(f"Bad period {text!r}: {PERIOD_HELP}")


def period_label(filters: Filters) -> str:
    """``2026`` for a whole year, else the quarter or range of quarters."""
    year = filters.start[:4]
    if filters.start == f"{year}Q1" and filters.end == f"{year}Q4":
        return year
    return filters.label


def built_at() -> datetime | None:
    """When the snapshot's cases were read: the aggregation date of the reports."""
    state = snapshot.snapshot_path().with_suffix(".json")
    try:
        return datetime.fromisoformat(json.loads(state.read_text())["built_from"]).astimezone(UTC)
    except (OSError, ValueError, KeyError):
        return None


# --- figures ----------------------------------------------------------------------------


@dataclass
class Figure:
    """One number of the report with its interval, the cases and sites behind it."""

    table: str
    group: str
    measure: str
    value: float | None
    low: float | None = None
    high: float | None = None
    cases: int = 0
    sites: int = 0
    suppressed: bool = False

    def csv_row(self) -> dict:
        hidden = self.suppressed
        return {
            "table": self.table,
            "group": self.group,
            "measure": self.measure,
            "value": "" if hidden else _plain(self.value),
            "low": "" if hidden else _plain(self.low),
            "high": "" if hidden else _plain(self.high),
            "cases": "" if hidden else self.cases,
            "sites": "" if hidden else self.sites,
            "suppressed": "true" if hidden else "false",
        }


def _plain(value: float | None) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4f}"


def _figure(table, group, measure, value, low, high, cases, sites, proportion=False) -> Figure:
    """A figure, blanked when built from fewer than MIN_CASES cases."""
    if cases < MIN_CASES:
        return Figure(table, group, measure, None, cases=0, sites=0, suppressed=True)
    if proportion and low is not None:  # rounding may leave -0.0000 or 1.0000001
        low, high = max(0.0, low), min(1.0, high)
    return Figure(table, group, measure, value, low, high, cases, sites)


def bootstrap_interval(
    values,
    statistic: str = "mean",
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float] | None:
    """The 95% percentile-bootstrap interval of the mean or median of ``values``.

    A resample of n cases is drawn as multinomial counts over the distinct
    values, which is the same distribution as drawing cases with
    replacement but costs per distinct value, not per case.
    """
    data = np.asarray([v for v in values if v is not None], dtype=float)
    n = data.size
    if n == 0:
        return None
    distinct, frequency = np.unique(data, return_counts=True)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, frequency / n, size=resamples)
    if statistic == "mean":
        estimates = counts @ distinct / n
    else:
        cumulative = counts.cumsum(axis=1)
        low = distinct[(cumulative > (n - 1) // 2).argmax(axis=1)]
        high = distinct[(cumulative > n // 2).argmax(axis=1)]
        estimates = (low + high) / 2
    lower, upper = np.percentile(estimates, [2.5, 97.5])
    return float(lower), float(upper)


def metric_figure(table: str, group: str, frame: pl.DataFrame, name: str) -> Figure:
    """One metric of :data:`~registry3d.reports.metrics.METRICS` over the cases of ``frame``."""
    metric = BY_NAME[name]
    known = frame.filter(pl.col(metric.column).is_not_null())
    n, sites = known.height, known["site_id"].n_unique()
    if metric.is_proportion:
        successes = int(known[metric.column].cast(pl.Int64).sum()) if n else 0
        interval = wilson(successes, n)
        value = successes / n if n else None
    else:
        values = known[metric.column].cast(pl.Float64)
        value = values.mean() if metric.kind == "mean" else values.median()
        interval = bootstrap_interval(values.to_list(), metric.kind) if n >= MIN_CASES else None
    low, high = interval or (None, None)
    return _figure(table, group, name, value, low, high, n, sites, metric.is_proportion)


# --- tables -----------------------------------------------------------------------------


@dataclass
class Column:
    measure: str
    label: str
    kind: str  # count, proportion, mean, median
    unit: str = ""


@dataclass
class Table:
    key: str
    title: str
    note: str
    group_label: str
    columns: list[Column]
    groups: list[tuple[str, str]] = field(default_factory=list)  # code, label
    figures: dict[tuple[str, str], Figure] = field(default_factory=dict)

    def add(self, figure: Figure) -> None:
        self.figures[(figure.group, figure.measure)] = figure

    def rows(self) -> list[dict]:
        """For templates: each group with its cells, formatted, in column order."""
        with_sites = not any(column.measure == "sites" for column in self.columns)
        rows = []
        for code, label in self.groups:
            cells = []
            for column in self.columns:
                cell = cell_text(column, self.figures.get((code, column.measure)))
                if with_sites and column.measure == "cases" and cell["cases"] is not None:
                    cell["interval"] = f"{cell['sites']} site{'s' if cell['sites'] != 1 else ''}"
                cells.append(cell)
            rows.append({"group": code, "label": label, "cells": cells})
        return rows


def number_text(value: float | None, kind: str, unit: str = "") -> str:
    if value is None:
        return "–"
    if kind == "proportion" or unit == "%":
        return f"{100 * value:.0f}%"
    if kind == "count":
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def cell_text(column: Column, figure: Figure | None) -> dict:
    """A figure as the page and the PDF show it: value, interval, cases, or suppressed."""
    if figure is None:
        return {"value": "–", "interval": "", "suppressed": False, "cases": None}
    if figure.suppressed:
        return {"value": "suppressed", "interval": "", "suppressed": True, "cases": None}
    interval = ""
    if figure.low is not None and figure.high is not None:
        low = number_text(figure.low, column.kind, column.unit)
        high = number_text(figure.high, column.kind, column.unit)
        interval = f"{low} to {high}"
    return {
        "value": number_text(figure.value, column.kind, column.unit),
        "kind": column.kind,
        "interval": interval,
        "suppressed": False,
        "cases": figure.cases,
        "n": f"{figure.cases:,}",
        "sites": figure.sites,
    }


@dataclass
class NationalReport:
    filters: Filters
    period: str
    built_at: datetime | None
    published: date
    cases: int
    sites: int
    tables: list[Table]

    def figures(self) -> Iterator[Figure]:
        for table in self.tables:
            for code, _ in table.groups:
                for column in table.columns:
                    figure = table.figures.get((code, column.measure))
                    if figure is not None:
                        yield figure

    def table(self, key: str) -> Table:
        return next(t for t in self.tables if t.key == key)


def _labels(value_set: str) -> dict[str, str]:
    from registry3d.dictionary import registry

    values = registry.current().dictionary.value_sets.get(value_set)
    return {c.code: c.label for c in values.codes} if values else {}


def cpt_table(frame: pl.DataFrame, years: list[int]) -> Table:
    table = Table(
        "cpt",
        "Volumes per CPT code",
        "Cases that bill the code, the units billed and the sites that reported the code, "
        "per calendar year of the case month.",
        "Code and year",
        [
            Column("cases", "Cases", "count"),
            Column("units", "Units", "count"),
            Column("sites", "Sites reporting", "count"),
        ],
    )
    for code in snapshot.CPT_CODES:
        column = f"units_{code}"
        for year in years:
            billed = frame.filter((pl.col("year") == year) & (pl.col(column) > 0))
            group = f"{code} {year}"
            table.groups.append((group, f"{code} · {year}"))
            cases, sites = billed.height, billed["site_id"].n_unique()
            units = int(billed[column].sum()) if cases else 0
            for measure, value in (("cases", cases), ("units", units), ("sites", sites)):
                table.add(_figure("cpt", group, measure, value, None, None, cases, sites))
    return table


def _value_columns() -> list[Column]:
    columns = [Column("cases", "Cases", "count")]
    for name in VALUE_METRICS:
        metric = BY_NAME[name]
        columns.append(Column(name, metric.label, metric.kind, metric.unit))
    return columns


def value_table(
    frame: pl.DataFrame, key: str, title: str, column: str | None, labels: dict[str, str]
) -> Table:
    """Cases and the value metrics per group of ``column`` (all cases when None)."""
    group_label = {
        "organ_system": "Indication",
        "site_region": "Region",
        "object_type": "Model type",
        "technology": "Technology",
    }.get(column or "", "Group")
    table = Table(
        key,
        title,
        "Proportions with a 95% Wilson interval; means with a 95% percentile-bootstrap "
        f"interval ({BOOTSTRAP_RESAMPLES:,} resamples).",
        group_label,
        _value_columns(),
    )
    if column is None:
        groups = [("all", "All cases")] if frame.height else []
    else:
        codes = frame[column].fill_null("").unique().sort().to_list()
        groups = [(code or "not_given", labels.get(code) or code or "Not given") for code in codes]
        groups.sort(key=lambda g: g[1].lower())
    for code, label in groups:
        members = frame
        if column is not None:
            raw = "" if code == "not_given" else code
            members = frame.filter(pl.col(column).fill_null("") == raw)
        table.groups.append((code, label))
        sites = members["site_id"].n_unique()
        table.add(_figure(key, code, "cases", members.height, None, None, members.height, sites))
        for name in VALUE_METRICS:
            table.add(metric_figure(key, code, members, name))
    return table


def appropriateness_table(frame: pl.DataFrame) -> Table:
    total, sites = frame.height, frame["site_id"].n_unique()
    table = Table(
        "appropriateness",
        "Cases by appropriateness of their scenario",
        "Share of all cases whose scenario of the RSNA 3D Printing SIG criteria is rated so; "
        "'Not rated' are cases naming no scenario or a scenario without a rating. "
        "95% Wilson intervals.",
        "Rating",
        [Column("share", "Share of cases", "proportion", "%")],
    )
    categories = frame["appropriateness"].fill_null("")
    for code, label in APPROPRIATENESS:
        group = code or NOT_RATED
        table.groups.append((group, label))
        count = int((categories == code).sum()) if total else 0
        low, high = wilson(count, total) or (None, None)
        share = count / total if total else None
        table.add(_figure("appropriateness", group, "share", share, low, high, total, sites, True))
    return table


def national_report(
    df: pl.DataFrame, filters: Filters, today: date | None = None
) -> NationalReport:
    """Every figure of the national report for the period of ``filters``."""
    frame = filters.apply(df)
    years = sorted({int(q[:4]) for q in quarters_between(filters.start, filters.end)})
    technologies = _labels("print_technology")
    tables = [
        cpt_table(frame, years),
        value_table(frame, "overall", "All cases", None, {}),
        value_table(frame, "indication", "By indication", "organ_system", _labels("organ_system")),
        value_table(frame, "region", "By region", "site_region", {}),
        value_table(frame, "model_type", "By model type", "object_type", _labels("object_type")),
        value_table(frame, "technology", "By technology", "technology", technologies),
        appropriateness_table(frame),
    ]
    return NationalReport(
        filters,
        period_label(filters),
        built_at(),
        today or date.today(),
        frame.height,
        frame["site_id"].n_unique(),
        tables,
    )


def to_csv(report: NationalReport) -> str:
    """One row per figure: table, group, measure, value, low, high, cases, sites, suppressed.

    Proportions are fractions (0-1); suppressed figures leave value,
    interval, cases and sites empty.
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for figure in report.figures():
        writer.writerow(figure.csv_row())
    return out.getvalue()
