"""Every metric of the reports, defined once, and the site-against-registry comparison.

The dashboard, the PDF and the CSV all take their figures from here. The
metrics are polars expressions over the snapshot (:mod:`registry3d.reports.snapshot`),
so the same definitions would run as SQL group-bys on a larger engine.
"""

import bisect
import dataclasses
import math
from dataclasses import dataclass, field
from datetime import date

import polars as pl
from django.conf import settings

# No figure about other sites is shown from fewer than these.
MIN_CASES = 11
MIN_SITES = 5
VOLUME_BANDS = ((0, 50, "under 50 cases"), (50, 200, "50-199 cases"), (200, None, "200+ cases"))


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    kind: str  # count, median, mean or proportion
    column: str
    unit: str
    definition: str
    group: str

    @property
    def is_proportion(self) -> bool:
        return self.kind == "proportion"

    def value(self) -> pl.Expr:
        column = pl.col(self.column)
        if self.kind == "count":
            return pl.len().cast(pl.Float64)
        if self.kind == "median":
            return column.median()
        if self.kind == "mean":
            return column.mean()
        return column.cast(pl.Float64).mean()  # proportion: share of true among known

    def count(self) -> pl.Expr:
        """How many cases the value is built from."""
        return pl.len() if self.kind == "count" else pl.col(self.column).count()


METRICS = [
    Metric(
        "cases",
        "Cases",
        "count",
        "case_id",
        "cases",
        "Submitted cases whose case month falls in the period; withdrawn cases are left out.",
        "Volume",
    ),
    Metric(
        "segmentation_min",
        "Segmentation time",
        "median",
        "segmentation_min",
        "min",
        "Median of clinician plus non-clinician minutes spent on segmentation, over cases that "
        "report either.",
        "Turnaround",
    ),
    Metric(
        "design_min",
        "Design (CAD) time",
        "median",
        "design_min",
        "min",
        "Median of clinician plus non-clinician minutes spent on computer-aided design, over "
        "cases that report either.",
        "Turnaround",
    ),
    Metric(
        "printing_min",
        "Printing time",
        "median",
        "printing_min",
        "min",
        "Median over cases of the printer time of all their prints.",
        "Turnaround",
    ),
    Metric(
        "post_processing_min",
        "Post-processing time",
        "median",
        "post_processing_min",
        "min",
        "Median of staff minutes for preparation and post-processing plus the machine minutes of "
        "post-processing, over cases that report any.",
        "Turnaround",
    ),
    Metric(
        "staff_min",
        "Staff time, total",
        "median",
        "staff_min",
        "min",
        "Median of the dictionary's derived total staff time (consultation, segmentation, design,"
        " preparation and post-processing), over cases that report all of it.",
        "Turnaround",
    ),
    Metric(
        "turnaround_days",
        "Request to delivery",
        "median",
        "turnaround_days",
        "days",
        "Median number of days from the request to the delivery of the model or guide.",
        "Turnaround",
    ),
    Metric(
        "material_cost_usd",
        "Material cost per case",
        "median",
        "material_cost_usd",
        "USD",
        "Median over cases of the material cost of all their prints.",
        "Cost",
    ),
    Metric(
        "material_cost_per_part_usd",
        "Material cost per part",
        "median",
        "material_cost_per_part_usd",
        "USD",
        "Median over cases of the material cost divided by the number of anatomic parts.",
        "Cost",
    ),
    Metric(
        "labour_cost_usd",
        "Labour cost per case",
        "median",
        "labour_cost_usd",
        "USD",
        "Median over cases of the clinician and non-clinician staff minutes, each at the "
        "site's hourly cost (set on its settings page), over cases that report all staff time.",
        "Cost",
    ),
    Metric(
        "labour_cost_per_part_usd",
        "Labour cost per part",
        "median",
        "labour_cost_per_part_usd",
        "USD",
        "Median over cases of the labour cost divided by the number of anatomic parts.",
        "Cost",
    ),
    Metric(
        "total_cost_usd",
        "Total cost per case",
        "median",
        "total_cost_usd",
        "USD",
        "Median over cases of material plus labour cost, over cases that report both.",
        "Cost",
    ),
    Metric(
        "total_cost_per_part_usd",
        "Total cost per part",
        "median",
        "total_cost_per_part_usd",
        "USD",
        "Median over cases of the total cost divided by the number of anatomic parts.",
        "Cost",
    ),
    Metric(
        "answered",
        "Questionnaire answered",
        "proportion",
        "answered",
        "%",
        "Share of cases whose treating physician answered the questionnaire.",
        "Clinical value",
    ),
    Metric(
        "plan_changed",
        "Plan changed",
        "proportion",
        "plan_changed",
        "%",
        "Among answered questionnaires that say how the plan changed, the share that name a "
        "change (anything but 'No change').",
        "Clinical value",
    ),
    Metric(
        "time_saved_min",
        "Procedure time saved",
        "mean",
        "time_saved_min",
        "min",
        "Mean of the physicians' estimates of procedure minutes saved (negative when time was "
        "added), over answered questionnaires that give one.",
        "Clinical value",
    ),
    Metric(
        "or_cost_saved_usd",
        "Operating-room cost saved",
        "mean",
        "or_cost_saved_usd",
        "USD",
        "Mean of the physicians' estimates of procedure minutes saved, each at the site's "
        "operating-room cost per minute (its own, or the registry's default).",
        "Clinical value",
    ),
    Metric(
        "usefulness",
        "Importance in the case",
        "mean",
        "usefulness",
        "of 5",
        "Mean agreement (1 strongly disagree - 5 strongly agree) with 'It was important in this "
        "case', over answered questionnaires.",
        "Clinical value",
    ),
    Metric(
        "appropriate",
        "In an appropriate scenario",
        "proportion",
        "appropriate",
        "%",
        "Share of cases that name an RSNA 3D Printing SIG scenario rated usually appropriate, "
        "among all cases.",
        "Appropriateness",
    ),
    Metric(
        "completeness",
        "Data completeness",
        "mean",
        "completeness",
        "%",
        "Mean share, per case, of the elements these reports read (times, turnaround, scenario, "
        "procedure) that are filled in.",
        "Data quality",
    ),
]
BY_NAME = {m.name: m for m in METRICS}


def quarters_between(start: str, end: str) -> list[str]:
    """``2025Q4``..``2026Q2`` → every quarter from the first to the last."""
    y, q = int(start[:4]), int(start[-1])
    out = []
    while f"{y}Q{q}" <= end:
        out.append(f"{y}Q{q}")
        y, q = (y + 1, 1) if q == 4 else (y, q + 1)
    return out


def quarters_held(df: pl.DataFrame, snapshot_key=None) -> list[str]:
    """The quarters the snapshot has cases in, in order (once per snapshot with a key)."""

    def quarters() -> list[str]:
        return df["quarter"].drop_nulls().unique().sort().to_list()

    key = None if snapshot_key is None else (snapshot_key, "quarters-held")
    return _remember(key, quarters, small=True)


def shift_quarter(quarter: str, by: int) -> str:
    index = int(quarter[:4]) * 4 + int(quarter[-1]) - 1 + by
    return f"{index // 4}Q{index % 4 + 1}"


@dataclass
class Filters:
    start: str
    end: str
    organ_system: str = ""
    object_type: str = ""
    technology: str = ""

    @classmethod
    def default(
        cls, df: pl.DataFrame, today: date | None = None, *, snapshot_key=None
    ) -> "Filters":
        """The four quarters up to the newest one with cases (not later than today's).

        With ``snapshot_key`` (see :func:`site_report`) the snapshot's quarters
        are read once per snapshot, not on every page.
        """
        today = today or date.today()
        current = f"{today.year}Q{(today.month - 1) // 3 + 1}"
        known = [q for q in quarters_held(df, snapshot_key) if q <= current]
        end = known[-1] if known else current
        return cls(shift_quarter(end, -3), end)

    def apply(self, df: pl.DataFrame) -> pl.DataFrame:
        out = df.filter((pl.col("quarter") >= self.start) & (pl.col("quarter") <= self.end))
        for name in ("organ_system", "object_type", "technology"):
            value = getattr(self, name)
            if value:
                out = out.filter(pl.col(name) == value)
        return out

    @property
    def label(self) -> str:
        return self.start if self.start == self.end else f"{self.start}-{self.end}"


def prepared(df: pl.DataFrame) -> pl.DataFrame:
    """Add the columns metrics read that the snapshot does not hold as such."""
    return df.with_columns(
        (pl.col("appropriateness") == "usually_appropriate").alias("appropriate")
    )


def _aggregations(metrics) -> list[pl.Expr]:
    out = []
    for metric in metrics:
        # Rounded: a median or a multi-threaded mean may differ in the last bit
        # between equal groups, which would rank equal sites apart.
        out.append(metric.value().round(9).alias(metric.name))
        out.append(metric.count().alias(f"{metric.name}__n"))
    return out


def site_values(df: pl.DataFrame, metrics=METRICS) -> pl.DataFrame:
    """One row per site: each metric's value and the number of cases behind it."""
    return (
        prepared(df)
        .group_by("site_id")
        .agg(
            pl.col("site_code").first(),
            pl.col("facility_type").first(),
            pl.col("site_region").first(),
            *_aggregations(metrics),
        )
    )


def volume_band(cases: int) -> str:
    for low, high, label in VOLUME_BANDS:
        if cases >= low and (high is None or cases < high):
            return label
    return VOLUME_BANDS[-1][2]


@dataclass
class Comparison:
    """A distribution of site values, or why it is not shown."""

    sites: int
    cases: int
    median: float | None = None
    q1: float | None = None
    q3: float | None = None
    rank: float | None = None  # the site's percentile rank among these sites
    suppressed: str = ""

    @property
    def shown(self) -> bool:
        return not self.suppressed


@dataclass(frozen=True)
class Distribution:
    """Site values of one metric in one group of sites, sorted, and the cases behind them."""

    ordered: list[float]
    cases: int

    @classmethod
    def of(cls, values: list[float], counts: list[int]) -> "Distribution":
        return cls(sorted(values), int(sum(counts)))

    def comparison(self, own: float | None) -> Comparison:
        """The median and quartiles, and where ``own`` falls among the values.

        Suppressed when built from fewer than 11 cases or 5 sites.
        """
        ordered, sites = self.ordered, len(self.ordered)
        if sites < MIN_SITES or self.cases < MIN_CASES:
            return Comparison(
                sites, self.cases, suppressed=f"fewer than {MIN_CASES} cases or {MIN_SITES} sites"
            )
        result = Comparison(
            sites,
            self.cases,
            median=_quantile(ordered, 0.5),
            q1=_quantile(ordered, 0.25),
            q3=_quantile(ordered, 0.75),
        )
        if own is not None:
            below = bisect.bisect_left(ordered, own)
            equal = bisect.bisect_right(ordered, own) - below
            result.rank = 100 * (below + 0.5 * equal) / sites
        return result


def compare(values: list[float], counts: list[int], own: float | None) -> Comparison:
    """The median and quartiles of site values and where ``own`` falls among them.

    Suppressed when built from fewer than 11 cases or 5 sites.
    """
    return Distribution.of(values, counts).comparison(own)


def _quantile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's and pandas' default)."""
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def site_rows(df: pl.DataFrame, site_id: int) -> pl.DataFrame:
    """The snapshot's rows of one site.

    The snapshot is written sorted by site, so the site's rows are found by
    binary search instead of a scan of every case.
    """
    ids = df["site_id"]
    if ids.is_sorted():
        start = ids.search_sorted(site_id, "left")
        end = ids.search_sorted(site_id, "right")
        return df.slice(start, end - start)
    return df.filter(pl.col("site_id") == site_id)


@dataclass
class MetricRow:
    metric: Metric
    value: float | None
    cases: int
    registry: Comparison
    peers: dict[str, Comparison] = field(default_factory=dict)


@dataclass
class SiteReport:
    site_code: str
    filters: Filters
    cases: int
    completeness: float | None
    gate_open: bool
    missing: list[tuple[str, int]]  # element, cases lacking it
    rows: list[MetricRow]
    peer_labels: dict[str, str]
    registry_sites: int
    # Every site's values behind the comparisons, for the funnel plots; never
    # shown as such (it holds other sites' figures).
    sites_table: pl.DataFrame | None = field(default=None, compare=False, repr=False)


# Site tables computed for a snapshot, by the snapshot's build time and the
# filters: every site's dashboard of a period reads the same ones. Small
# answers (a metric's distribution among sites, the quarters held) are kept
# apart, many more of them.
_TABLES: dict = {}
_TABLES_KEPT = 32
_SMALL: dict = {}
_SMALL_KEPT = 4096


def _remember(key, compute, *, small: bool = False):
    """``compute()``, kept under ``key`` (a hashable naming the snapshot and the question)."""
    if key is None:
        return compute()
    store, kept = (_SMALL, _SMALL_KEPT) if small else (_TABLES, _TABLES_KEPT)
    table = store.get(key)
    if table is None:
        while len(store) >= kept:
            store.pop(next(iter(store)))
        table = store[key] = compute()
    return table


def site_report(
    df: pl.DataFrame, site_code: str, filters: Filters, *, snapshot_key=None
) -> SiteReport:
    """The site's figures for the period against the registry's and its peers'.

    With ``snapshot_key`` (anything that changes when the snapshot does, such
    as its build time), the table of every site's values is computed once per
    snapshot and filters and shared by every site's report.
    """

    def sites() -> pl.DataFrame:
        return site_values(filters.apply(df)).with_columns(
            pl.col("cases").map_elements(volume_band, return_dtype=pl.String).alias("band")
        )

    key = None if snapshot_key is None else (snapshot_key, "sites", dataclasses.astuple(filters))
    table = _remember(key, sites)
    own_rows = table.filter(pl.col("site_code") == site_code)
    own = own_rows.row(0, named=True) if own_rows.height else None
    completeness = own["completeness"] if own else None
    gate_open = (
        completeness is not None and completeness >= settings.REGISTRY3D_REPORT_MIN_COMPLETENESS
    )
    others = table.filter(pl.col("site_code") != site_code)
    peer_groups = {}
    if own:
        peer_groups = {
            "facility_type": ("facility_type", own["facility_type"]),
            "region": ("site_region", own["site_region"]),
            "volume": ("band", own["band"]),
        }

    def distribution(metric: Metric, column: str | None, group) -> Distribution:
        """The metric's site values in the registry (``column`` None) or a peer group.

        Every site's report of the same snapshot and filters shares them.
        """

        def compute() -> Distribution:
            present = table.filter(pl.col(f"{metric.name}__n") > 0)
            if column is not None:
                present = present.filter(pl.col(column) == group)
            return Distribution.of(
                present[metric.name].to_list(), present[f"{metric.name}__n"].to_list()
            )

        shared = None if key is None else (*key, "distribution", metric.name, column, group)
        return _remember(shared, compute, small=True)

    rows = []
    for metric in METRICS:
        value = own[metric.name] if own else None
        cases = int(own[f"{metric.name}__n"]) if own else 0
        registry = distribution(metric, None, None).comparison(value)
        peers = {
            name: distribution(metric, column, group).comparison(value)
            for name, (column, group) in peer_groups.items()
        }
        rows.append(MetricRow(metric, value, cases, registry, peers))
    missing: list[tuple[str, int]] = []
    own_cases = filters.apply(site_rows(df, own["site_id"])) if own else df.clear()
    if own_cases.height:
        exploded = (
            own_cases.select(pl.col("missing").str.split(";"))
            .explode("missing")
            .filter(pl.col("missing") != "")
            .group_by("missing")
            .len()
            .sort(["len", "missing"], descending=[True, False])
        )
        missing = [(r["missing"], r["len"]) for r in exploded.iter_rows(named=True)]
    labels = {}
    if own:
        labels = {
            "facility_type": f"Facility type: {own['facility_type']}",
            "region": f"Region: {own['site_region'] or 'not given'}",
            "volume": f"Volume: {own['band']}",
        }
    return SiteReport(
        site_code,
        filters,
        int(own["cases"]) if own else 0,
        completeness,
        gate_open,
        missing,
        rows,
        labels,
        others.height + (1 if own else 0),
        table,
    )


def trend(
    df: pl.DataFrame, site_code: str, metric: Metric, quarters: list[str], *, snapshot_key=None
) -> list[dict]:
    """Per quarter: the site's value and the registry median of site values (or None).

    ``df`` holds the cases the trend is about (already filtered by region,
    object or technology), or is a function that returns them; with
    ``snapshot_key`` naming ``df`` (the snapshot's build time and those
    filters), the per-quarter table of every metric is
    computed once and shared by every metric's and every site's trend.
    """
    cases = df if not callable(df) else None  # a function: read only when needed

    def chosen() -> pl.DataFrame:
        return (cases if cases is not None else df()).filter(pl.col("quarter").is_in(quarters))

    if snapshot_key is None:
        table = site_values_by_quarter(chosen(), [metric])
    else:
        table = _remember(
            (snapshot_key, "quarters", tuple(quarters)),
            lambda: site_values_by_quarter(chosen()),
        )

    def medians() -> dict[str, float | None]:
        """The registry's median per quarter: the same in every site's trend."""
        out = {}
        for quarter in quarters:
            rows = table.filter((pl.col("quarter") == quarter) & (pl.col(f"{metric.name}__n") > 0))
            registry = compare(
                rows[metric.name].to_list(), rows[f"{metric.name}__n"].to_list(), None
            )
            out[quarter] = registry.median if registry.shown else None
        return out

    def own_rows() -> dict[str, dict]:
        """The site's row of each quarter, for every metric at once."""
        rows = table.filter(pl.col("site_code") == site_code)
        return {row["quarter"]: row for row in rows.iter_rows(named=True)}

    key = None if snapshot_key is None else (snapshot_key, "trend", tuple(quarters))
    registry = _remember(key and (*key, metric.name), medians, small=True)
    own = _remember(key and (*key, "site", site_code), own_rows, small=True)
    out = []
    for quarter in quarters:
        row = own.get(quarter)
        known = row is not None and row[f"{metric.name}__n"] > 0
        out.append(
            {
                "quarter": quarter,
                "site": row[metric.name] if known else None,
                "registry": registry[quarter],
            }
        )
    return out


def site_values_by_quarter(df: pl.DataFrame, metrics=METRICS) -> pl.DataFrame:
    return (
        prepared(df)
        .group_by("quarter", "site_id")
        .agg(pl.col("site_code").first(), *_aggregations(metrics))
    )


def funnel(
    df: pl.DataFrame, metric: Metric, site_code: str, *, sites_table: pl.DataFrame | None = None
) -> dict:
    """The registry rate, the site's point, and 95% / 99.8% limits by number of cases.

    Other sites' points are not given: a site sees only its own figure. With
    ``sites_table`` (a :class:`SiteReport`'s), the rate is pooled from every
    site's value and count instead of read again from the cases.
    """
    assert metric.is_proportion
    point = None
    if sites_table is not None:
        known = sites_table.filter(pl.col(f"{metric.name}__n") > 0)
        counts = known[f"{metric.name}__n"]
        total = int(counts.sum()) if known.height else 0
        rate = float((known[metric.name] * counts).sum() / total) if total else None
        sites = known.height
        own_row = known.filter(pl.col("site_code") == site_code)
        own_cases = int(own_row[f"{metric.name}__n"][0]) if own_row.height else 0
        if own_cases:
            point = (own_cases, float(own_row[metric.name][0]))
    else:
        data = prepared(df).filter(pl.col(metric.column).is_not_null())
        total = data.height
        rate = data[metric.column].cast(pl.Float64).mean() if total else None
        own = data.filter(pl.col("site_code") == site_code)
        sites = data["site_id"].n_unique() if total else 0
        own_cases = own.height
        if own_cases:
            point = (own_cases, float(own[metric.column].cast(pl.Float64).mean()))
    if rate is None or total < MIN_CASES or sites < MIN_SITES:
        return {"rate": None, "point": point, "limits": [], "suppressed": True}
    # Limits up to twice the site's own count: the largest site's volume is
    # another site's figure.
    largest = max(2 * own_cases, 20)
    sizes = sorted({max(1, int(largest * k / 60)) for k in range(1, 61)} | {1, 2, 5, 10})
    limits = []
    for n in sizes:
        spread = math.sqrt(rate * (1 - rate) / n)
        limits.append(
            {
                "n": n,
                "low95": max(0.0, rate - 1.96 * spread),
                "high95": min(1.0, rate + 1.96 * spread),
                "low998": max(0.0, rate - 3.09 * spread),
                "high998": min(1.0, rate + 3.09 * spread),
            }
        )
    return {"rate": rate, "point": point, "limits": limits, "suppressed": False}


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion."""
    if n == 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def benchmark_table(df: pl.DataFrame, filters: Filters | None = None) -> pl.DataFrame:
    """Every site's value of every metric with its percentile rank among sites (analysts only).

    The rank is the share of sites with a lower value plus half of those with
    the same value, in percent, among sites whose value is known; it matches
    :func:`compare`.
    """
    table = site_values(filters.apply(df) if filters else df)
    ranks = []
    for metric in METRICS:
        value = pl.when(pl.col(f"{metric.name}__n") > 0).then(pl.col(metric.name))
        known = value.count()
        # rank("average") counts ties as half below, half above: (below + (equal+1)/2).
        ranks.append(((value.rank("average") - 0.5) / known * 100).alias(f"{metric.name}__rank"))
    return table.with_columns(ranks).sort("site_code")
