"""PDF reports: the quarterly feedback report of a site and the national evidence report.

Both are HTML templates rendered by WeasyPrint. Nothing is fetched while
rendering: plots are inline SVG data URIs, fonts are the system's, and any
other URL is refused.
"""

from datetime import date
from pathlib import Path

import polars as pl
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from registry3d.reports import national, snapshot
from registry3d.reports.metrics import (
    BY_NAME,
    Filters,
    Metric,
    SiteReport,
    quarters_between,
    shift_quarter,
    site_report,
    trend,
)
from registry3d.reports.pdf_plots import data_uri, trend_svg

TREND_METRICS = (
    "cases",
    "staff_min",
    "turnaround_days",
    "material_cost_usd",
    "answered",
    "usefulness",
)
TREND_QUARTERS = 8
PEER_KEYS = ("facility_type", "region", "volume")


def value_text(metric: Metric, value: float | None) -> str:
    """A metric's value with its unit, as the reports print it."""
    if value is None:
        return "–"
    if metric.unit == "%":
        return f"{100 * value:.0f}%"
    if metric.kind == "count":
        return f"{value:,.0f}"
    if metric.unit == "USD":
        return f"${value:,.2f}"
    if metric.unit == "min":
        return f"{value:,.0f} min"
    if metric.unit == "days":
        return f"{value:,.1f} days"
    if metric.unit == "of 5":
        return f"{value:.1f} of 5"
    return f"{value:,.1f} {metric.unit}".strip()


def _comparison_text(metric: Metric, comparison, gate_open: bool) -> dict:
    if not gate_open:
        return {"shown": False, "text": "withheld"}
    if not comparison.shown:
        return {"shown": False, "text": "suppressed"}
    return {
        "shown": True,
        "text": value_text(metric, comparison.median),
        "range": f"{value_text(metric, comparison.q1)} – {value_text(metric, comparison.q3)}",
        "sites": comparison.sites,
        "rank": None if comparison.rank is None else f"{comparison.rank:.0f}",
    }


def trend_quarters(filters: Filters) -> list[str]:
    """The period's quarters, or the eight quarters up to its end if it is shorter."""
    start = min(filters.start, shift_quarter(filters.end, -(TREND_QUARTERS - 1)))
    return quarters_between(start, filters.end)


def _trend_plots(df: pl.DataFrame, site_code: str, filters: Filters, gate_open: bool):
    quarters = trend_quarters(filters)
    scope = Filters(
        quarters[0],
        quarters[-1],
        filters.organ_system,
        filters.object_type,
        filters.technology,
    ).apply(df)
    plots = []
    for name in TREND_METRICS:
        metric = BY_NAME[name]
        points = trend(scope, site_code, metric, quarters)
        if metric.kind == "count":  # a quarter without cases had none
            points = [{**p, "site": p["site"] or 0} for p in points]
        if not gate_open:  # the site sees its own figures, not the comparison
            points = [{**p, "registry": None} for p in points]
        unit = "" if metric.kind == "count" else metric.unit
        scale = 100.0 if metric.unit == "%" else 1.0
        svg = trend_svg(points, metric.label, unit, scale=scale)
        plots.append({"metric": metric, "src": data_uri(svg)})
    return quarters, plots


def _element_label(name: str) -> str:
    from registry3d.dictionary import registry

    element = registry.current().dictionary.all_elements.get(name)
    return element.label if element is not None else name


def site_context(
    site, filters: Filters, df: pl.DataFrame | None = None, today: date | None = None
) -> dict:
    """Everything the site's feedback report shows."""
    df = snapshot.load() if df is None else df
    report: SiteReport = site_report(df, site.code, filters)
    rows = []
    for row in report.rows:
        rows.append(
            {
                "metric": row.metric,
                "value": value_text(row.metric, row.value),
                "cases": row.cases,
                "registry": _comparison_text(row.metric, row.registry, report.gate_open),
                "peers": [
                    _comparison_text(row.metric, row.peers[key], report.gate_open)
                    for key in PEER_KEYS
                    if key in row.peers
                ],
            }
        )
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(row["metric"].group, []).append(row)
    quarters, plots = _trend_plots(df, site.code, filters, report.gate_open)
    return {
        "site": site,
        "filters": filters,
        "period": national.period_label(filters),
        "report": report,
        "groups": groups,
        "peer_labels": [report.peer_labels[key] for key in PEER_KEYS if key in report.peer_labels],
        "completeness": None
        if report.completeness is None
        else f"{100 * report.completeness:.0f}%",
        "threshold": f"{100 * settings.REGISTRY3D_REPORT_MIN_COMPLETENESS:.0f}%",
        "missing": [
            {
                "name": name,
                "label": _element_label(name),
                "cases": count,
                "share": f"{100 * count / report.cases:.0f}%" if report.cases else "",
            }
            for name, count in report.missing
        ],
        "trend_quarters": quarters,
        "plots": plots,
        "built_at": national.built_at(),
        "published": today or timezone.localdate(),
    }


def render_pdf(html: str) -> bytes:
    """HTML to PDF; only ``data:`` URLs are read, nothing from the network or disk."""
    import weasyprint

    fetcher = weasyprint.URLFetcher(allowed_protocols={"data"})
    base_url = Path(__file__).parent.as_uri() + "/"
    return weasyprint.HTML(string=html, base_url=base_url, url_fetcher=fetcher).write_pdf()


def site_pdf(site, filters: Filters, df: pl.DataFrame | None = None) -> bytes:
    """The site's quarterly feedback report as PDF bytes."""
    html = render_to_string("reports/site_report_pdf.html", site_context(site, filters, df))
    return render_pdf(html)


def national_context(report: national.NationalReport) -> dict:
    return {"report": report, "tables": [(t, t.rows()) for t in report.tables]}


def national_pdf(report: national.NationalReport) -> bytes:
    """The national evidence report as PDF bytes."""
    return render_pdf(render_to_string("reports/national_pdf.html", national_context(report)))
