"""The site dashboard: own figures, suppressed and shown comparisons, the gate, isolation.

Cases fall in 2025-02 (quarter 2025Q1) and pages are asked for that quarter,
so nothing depends on today's date. Every test starts without a snapshot and
builds its own (``snapshot.build(full=True)``) after writing its cases.
"""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from registry3d.cases.services import save_case
from registry3d.reports import metrics, snapshot
from registry3d.sites import services
from tests.cases.conftest import a_case, printers_for
from tests.conftest import client_for

PERIOD = "?start=2025Q1&end=2025Q1"
MONTH = "2025-02"
SUPPRESSED = "suppressed: fewer than 11 cases or 5 sites"


@pytest.fixture(autouse=True)
def no_snapshot():
    """Start (and leave) every test without a snapshot, so none sees another's cases."""
    path = snapshot.snapshot_path()
    for stale in (path, path.with_suffix(".json")):
        stale.unlink(missing_ok=True)
    yield
    for left in (path, path.with_suffix(".json")):
        left.unlink(missing_ok=True)


def add_cases(site, count, *, first=1, month=MONTH, drop=(), **changes):
    """Submit ``count`` complete synthetic cases at ``site``."""
    labels = printers_for(site) if not site.printers.exists() else _labels(site)
    for number in range(first, first + count):
        data = a_case(number, labels, case_year_month=month, **changes)
        for name in drop:
            data.pop(name, None)
        for line in data.get("cpt_lines") or []:
            line["units"] = 1  # the example's units may pass another month's caps, not this one's
        save_case(site, case_uid=f"{site.code}-{number}", data=data, status="submitted")


def _labels(site):
    return {p.technology: p.label for p in site.printers.all()}


def more_sites(count, facility_type="academic", prefix="PEER"):
    return [
        services.add_site(
            f"{prefix}{n}", f"Peer hospital {n}", region="Iowa", facility_type=facility_type
        )
        for n in range(1, count + 1)
    ]


def dashboard(user, code="SITEA", query=PERIOD, **extra):
    response = client_for(user).get(f"/sites/{code}/dashboard/{query}", **extra)
    return response, response.content.decode()


def row(html: str, metric: str) -> str:
    """The summary-table row of one metric."""
    found = re.search(rf'<tr data-metric="{metric}">(.*?)</tr>', html, re.S)
    assert found, f"no row for {metric}"
    return found[1]


def cell(html: str, metric: str, key: str) -> str:
    found = re.search(rf'<td data-comparison="{key}">(.*?)</td>', row(html, metric), re.S)
    assert found, f"no {key} comparison for {metric}"
    return found[1]


def readable(html: str) -> str:
    """What a person (or a screen reader) can read: the page without the plots' drawing,
    plus the plots' text, labels and data attributes."""
    svgs = re.findall(r"<svg.*?</svg>", html, re.S)
    text = re.sub(r"<svg.*?</svg>", " ", html, flags=re.S)
    for svg in svgs:
        text += " ".join(re.findall(r'(?:aria-label|data-values)="([^"]*)"', svg))
        text += " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", svg))
    return text


def own_value(html: str, metric: str) -> str:
    return re.search(r'<span class="dash-value">([^<]*)</span>', row(html, metric))[1]


def test_a_viewer_sees_the_sites_own_figures_and_the_period(world):
    add_cases(world.site_a, 3)
    snapshot.build(full=True)

    response, html = dashboard(world.bob)

    assert response.status_code == 200
    assert own_value(html, "cases") == "3"
    assert 'data-period="2025Q1-2025Q1"' in html
    assert "Period 2025Q1</strong>" in html
    built = json.loads(snapshot.snapshot_path().with_suffix(".json").read_text())["built_from"]
    as_of = datetime.fromisoformat(built).strftime("%Y-%m-%d %H:%M")
    assert f"Figures as of {as_of} UTC" in html
    # Every metric is there with its definition.
    assert html.count('<details class="definition">') == len(metrics.METRICS) == 20
    assert "Median number of days from the request to the delivery" in html
    # A plot of the site's own trend, with a text alternative.
    assert re.search(r'<svg role="img" aria-label="Cases by quarter\. Your site: 2025Q1: 3 ', html)
    assert '<a href="/sites/SITEA/dashboard/" aria-current="page">Dashboard</a>' in html


def test_the_snapshot_is_built_when_missing(world):
    add_cases(world.site_a, 2)
    assert not snapshot.snapshot_path().exists()

    _, html = dashboard(world.bob)

    assert snapshot.snapshot_path().exists()
    assert own_value(html, "cases") == "2"


def test_a_stale_snapshot_is_refreshed_and_a_fresh_one_is_not(world):
    add_cases(world.site_a, 2)
    snapshot.build(full=True)
    add_cases(world.site_a, 1, first=3)

    _, html = dashboard(world.bob)
    assert own_value(html, "cases") == "2", "a snapshot under 5 minutes old is used as it is"

    state = snapshot.snapshot_path().with_suffix(".json")
    old = json.loads(state.read_text())
    old["built_from"] = old["checked_at"] = (datetime.now(UTC) - timedelta(minutes=6)).isoformat()
    state.write_text(json.dumps(old))
    _, html = dashboard(world.bob)
    assert own_value(html, "cases") == "3"
    assert json.loads(state.read_text())["read"] == 3, "the refresh reads only changed cases"


def test_with_four_sites_the_registry_figure_is_suppressed_and_says_so(world):
    add_cases(world.site_a, 3)
    add_cases(world.site_b, 3)
    for site in more_sites(2):
        add_cases(site, 3)
    snapshot.build(full=True)

    _, html = dashboard(world.bob)

    assert SUPPRESSED in cell(html, "cases", "registry")
    assert "data-median" not in cell(html, "cases", "registry")
    assert own_value(html, "cases") == "3", "the site's own figure is never suppressed"
    # Funnel plots are withheld too, and say so.
    assert "Funnel plot suppressed: fewer than 11 cases or 5 sites." in html
    assert 'data-plot="funnel"' not in html
    assert 'data-plot="distribution"' not in html


def test_with_five_sites_the_registry_figure_is_shown_with_the_sites_rank(world):
    add_cases(world.site_a, 3)
    add_cases(world.site_b, 2)
    for site in more_sites(3):
        add_cases(site, 2)
    snapshot.build(full=True)

    _, html = dashboard(world.bob)

    registry = cell(html, "cases", "registry")
    assert "<span data-median>2</span>" in registry
    assert "(2 – 2)" in registry
    assert "<span data-rank>90th percentile</span>" in registry  # 4 below, itself half
    assert "5 sites" in registry
    # Peers: SITEA and three PEER sites are academic (4 sites), the region Ohio only SITEA.
    assert SUPPRESSED in cell(html, "cases", "facility_type")
    assert SUPPRESSED in cell(html, "cases", "region")
    # The volume band (under 50 cases) holds all five.
    assert "<span data-median>2</span>" in cell(html, "cases", "volume")
    assert 'data-plot="distribution"' in html
    assert 'data-plot="funnel"' in html


def test_a_peer_group_of_five_is_shown(world):
    add_cases(world.site_a, 2)
    for site in more_sites(4):
        add_cases(site, 3)
    snapshot.build(full=True)

    _, html = dashboard(world.bob)

    facility = cell(html, "cases", "facility_type")
    assert "<span data-median>3</span>" in facility
    assert "<span data-rank>10th percentile</span>" in facility
    assert "Facility type: academic" in html


def test_ten_cases_are_too_few_and_eleven_enough(world):
    add_cases(world.site_a, 2)
    sites = more_sites(4)
    for site in sites:
        add_cases(site, 2)
    snapshot.build(full=True)

    _, html = dashboard(world.bob)
    assert SUPPRESSED in cell(html, "cases", "registry")

    add_cases(sites[0], 1, first=3)
    snapshot.build(full=True)
    _, html = dashboard(world.bob)
    assert "<span data-median>2</span>" in cell(html, "cases", "registry")


def test_below_the_completeness_threshold_the_comparison_gives_way_to_what_is_missing(world):
    assert settings.REGISTRY3D_REPORT_MIN_COMPLETENESS == 0.8
    # Two of the nine elements the reports read are missing: 7/9 = 78% complete.
    add_cases(world.site_a, 3, drop=("turnaround_days", "appropriateness_scenario"))
    for site in more_sites(5):
        add_cases(site, 3)
    snapshot.build(full=True)

    _, html = dashboard(world.bob)

    assert 'data-gate="closed"' in html
    assert "data completeness 78%" in html
    assert "below the 80%" in html
    assert re.search(r"<td>Request-to-delivery time \(days\)</td><td>3</td>", html)
    assert re.search(r"<td>Matching appropriateness scenario</td><td>3</td>", html)
    assert own_value(html, "cases") == "3"
    assert "data-comparison" not in html
    assert "data-median" not in html
    assert "Registry median" not in html
    assert 'data-plot="funnel"' not in html


def test_at_the_threshold_the_comparison_is_shown(world):
    add_cases(world.site_a, 3)
    for site in more_sites(5):
        add_cases(site, 3)
    snapshot.build(full=True)

    _, html = dashboard(world.bob)

    assert 'data-gate="closed"' not in html
    assert "data-median" in cell(html, "cases", "registry")


def test_another_sites_user_gets_404_and_staff_may_look(world):
    add_cases(world.site_a, 2)
    snapshot.build(full=True)

    assert dashboard(world.carol)[0].status_code == 404
    assert dashboard(world.dan)[0].status_code == 200
    assert dashboard(world.ada)[0].status_code == 200
    assert dashboard(world.mona)[0].status_code == 200
    anonymous = client_for(world.bob)
    anonymous.logout()
    assert anonymous.get("/sites/SITEA/dashboard/").status_code == 302


def test_the_page_never_names_another_site_nor_shows_its_figure(world):
    add_cases(world.site_a, 3)
    # SITEB's turnaround is far from everyone else's: were it shown, it would be seen.
    add_cases(world.site_b, 3, turnaround_days=363)
    peers = more_sites(4)
    for site in peers:
        add_cases(site, 3)
    snapshot.build(full=True)

    for query in (PERIOD, "", PERIOD + "&organ_system=cardiac"):
        response, html = dashboard(world.bob, query=query)
        assert response.status_code == 200
        for other in [world.site_b, *peers]:
            assert other.code not in html
            assert other.name not in html
        assert not re.search(r"\b363\b", readable(html))
        assert query.endswith("cardiac") or "data-median" in cell(html, "cases", "registry")


def test_filters_change_the_figures(world):
    add_cases(world.site_a, 3)
    add_cases(world.site_a, 2, first=10, month="2025-05")
    snapshot.build(full=True)

    _, one = dashboard(world.bob)
    _, two = dashboard(world.bob, query="?start=2025Q1&end=2025Q2")
    _, empty = dashboard(world.bob, query="?start=2023Q1&end=2023Q2")

    assert own_value(one, "cases") == "3"
    assert own_value(two, "cases") == "5"
    assert 'data-period="2025Q1-2025Q2"' in two
    assert 'data-cases="0"' in empty
    assert "SITEA has no submitted cases in this period" in empty
    assert "data-metric" not in empty


def test_a_filter_on_organ_system_counts_only_those_cases(world):
    add_cases(world.site_a, 6)
    snapshot.build(full=True)
    df = snapshot.load()
    system = df["organ_system"][0]
    expected = int((df["organ_system"] == system).sum())

    _, html = dashboard(world.bob, query=f"{PERIOD}&organ_system={system}")

    assert own_value(html, "cases") == str(expected)
    assert f'<option value="{system}" selected>' in html


def test_the_default_period_is_four_quarters_up_to_the_newest_with_cases(world):
    add_cases(world.site_a, 2)
    snapshot.build(full=True)

    _, html = dashboard(world.bob, query="")

    assert 'data-period="2024Q2-2025Q1"' in html
    assert "(rolling four quarters)" in html
    assert own_value(html, "cases") == "2"


def test_odd_filter_values_fall_back_to_the_defaults(world):
    add_cases(world.site_a, 2)
    snapshot.build(full=True)

    response, html = dashboard(
        world.bob, query="?start=2025Q9&end=drop&organ_system=<script>&technology=laser"
    )

    assert response.status_code == 200
    assert 'data-period="2024Q2-2025Q1"' in html
    assert "<script>&" not in html
    # A range of more than ten years is cut to its last ten.
    _, html = dashboard(world.bob, query="?start=2000Q1&end=2025Q1")
    assert 'data-period="2015Q2-2025Q1"' in html
    # A range given backwards is turned round.
    _, html = dashboard(world.bob, query="?start=2025Q1&end=2024Q3")
    assert 'data-period="2024Q3-2025Q1"' in html


def test_htmx_gets_the_body_only_and_the_page_works_without_it(world):
    add_cases(world.site_a, 2)
    snapshot.build(full=True)

    response, partial = dashboard(world.bob, HTTP_HX_REQUEST="true")
    _, page = dashboard(world.bob)

    assert "<html" not in partial and "<html" in page
    assert 'data-period="2025Q1-2025Q1"' in partial
    assert "HX-Request" in response["Vary"]
    form = re.search(r'<form method="get" action="/sites/SITEA/dashboard/"[^>]*>', page)[0]
    assert 'hx-get="/sites/SITEA/dashboard/"' in form
    assert 'hx-target="#dashboard-body"' in form
    assert 'hx-push-url="true"' in form
    assert '<noscript><button type="submit">Show</button></noscript>' in page


def test_the_pdf_link_carries_the_dashboards_filters_and_gives_the_sites_report(world):
    import html as html_module

    add_cases(world.site_a, 3)
    response, html = dashboard(world.bob, query="?start=2025Q1&end=2025Q1&organ_system=cardiac")
    assert response.status_code == 200
    link = re.search(r'<a href="([^"]+)" data-pdf>', html)
    assert link, "no PDF link on the dashboard"
    href = html_module.unescape(link.group(1))
    assert href.startswith("/sites/SITEA/dashboard/report.pdf?start=2025Q1&end=2025Q1")
    assert "organ_system=cardiac" in href
    pdf = client_for(world.bob).get(href)
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert client_for(world.carol).get(href).status_code == 404


def test_tables_shared_between_pages_give_the_same_figures_as_fresh_ones(world):
    from registry3d.reports import metrics

    add_cases(world.site_a, 12)
    peers = more_sites(5)
    for number, site in enumerate(peers):
        add_cases(site, 3 + number, first=100)
    snapshot.build(full=True)
    df = snapshot.load()
    filters = metrics.Filters("2025Q1", "2025Q1")
    quarters = metrics.quarters_between("2024Q3", "2025Q2")
    for code in ("SITEA", "PEER3"):
        fresh = metrics.site_report(df, code, filters)
        shared = metrics.site_report(df, code, filters, snapshot_key="build-1")
        assert fresh == shared
        for metric in metrics.METRICS:
            assert metrics.trend(df, code, metric, quarters) == metrics.trend(
                df, code, metric, quarters, snapshot_key=("build-1", "all")
            )
            if metric.is_proportion:
                plain = metrics.funnel(filters.apply(df), metric, code)
                pooled = metrics.funnel(df, metric, code, sites_table=shared.sites_table)
                assert plain["suppressed"] == pooled["suppressed"]
                assert plain["point"] == pytest.approx(pooled["point"])
                if not plain["suppressed"]:
                    assert pooled["rate"] == pytest.approx(plain["rate"], abs=1e-8)
                    assert [x["high95"] for x in pooled["limits"]] == pytest.approx(
                        [x["high95"] for x in plain["limits"]], abs=1e-8
                    )
    # Another snapshot (another key) is not answered from the first one's tables.
    add_cases(world.site_a, 5, first=50)
    snapshot.build()
    later = metrics.site_report(snapshot.load(), "SITEA", filters, snapshot_key="build-2")
    assert later.cases == 17


def test_a_changed_staff_cost_reaches_every_case_at_the_next_refresh(world):
    """Rates are applied at each build, not stored with the case when it was read."""
    efforts = {
        f"effort_{a}_{k}": 30
        for a in ("consultation", "segmentation", "cad", "prep_post_processing")
        for k in ("clinician", "non_clinician")
    }
    add_cases(world.site_a, 3, **efforts)
    services.set_costs(
        world.site_a, clinician_cost_per_hour_usd=120, non_clinician_cost_per_hour_usd=60
    )
    first = snapshot.build(full=True)
    table = snapshot.load()
    # 120 minutes of each kind: 2 h x 120 + 2 h x 60.
    assert table["labour_cost_usd"].to_list() == [360.0] * 3
    assert table["total_cost_usd"].to_list() == [
        round(m + 360.0, 2) for m in table["material_cost_usd"].to_list()
    ]
    services.set_costs(world.site_a, clinician_cost_per_hour_usd=None)
    again = snapshot.build()
    assert (first["incremental"], again["incremental"], again["read"]) == (False, True, 0)
    # No clinician rate any more, nor a registry default: no labour cost.
    assert snapshot.load()["labour_cost_usd"].to_list() == [None] * 3
    services.set_costs(world.site_a, clinician_cost_per_hour_usd=90)
    snapshot.build()
    assert snapshot.load()["labour_cost_usd"].to_list() == [300.0] * 3


def test_a_site_that_moves_region_is_grouped_anew_at_the_next_refresh(world):
    add_cases(world.site_a, 2)
    snapshot.build(full=True)
    assert set(snapshot.load()["site_region"]) == {world.site_a.region}
    world.site_a.region, world.site_a.facility_type = "Vermont", "community"
    world.site_a.save(update_fields=["region", "facility_type"])
    again = snapshot.build()
    assert (again["incremental"], again["read"]) == (True, 0)
    table = snapshot.load()
    assert set(zip(table["site_region"], table["facility_type"], strict=True)) == {
        ("Vermont", "community")
    }


def test_the_dashboard_shows_labour_and_total_cost(world):
    efforts = {
        f"effort_{a}_{k}": 15
        for a in ("consultation", "segmentation", "cad", "prep_post_processing")
        for k in ("clinician", "non_clinician")
    }
    add_cases(world.site_a, 2, **efforts)
    services.set_costs(
        world.site_a, clinician_cost_per_hour_usd=200, non_clinician_cost_per_hour_usd=50
    )
    _, html = dashboard(world.alice)
    # 60 minutes of each kind: 200 + 50.
    assert '<span class="dash-value">250 USD</span>' in row(html, "labour_cost_usd")
    assert "Total cost per case" in row(html, "total_cost_usd")


def test_a_refresh_that_finds_nothing_changed_keeps_the_snapshot_and_its_tables(world):
    add_cases(world.site_a, 2)
    snapshot.build(full=True)
    path = snapshot.snapshot_path()
    state = json.loads(path.with_suffix(".json").read_text())
    written = path.stat().st_mtime_ns
    again = snapshot.build()
    assert again == {"rows": 2, "read": 0, "incremental": True, "unchanged": True}
    after = json.loads(path.with_suffix(".json").read_text())
    assert after["built_from"] == state["built_from"]  # pages keep their shared tables
    assert after["checked_at"] > state["checked_at"]
    assert path.stat().st_mtime_ns == written
    # A changed rate is a change: the costs are computed again.
    services.set_costs(world.site_a, clinician_cost_per_hour_usd=100)
    assert snapshot.build().get("unchanged") is None
    assert json.loads(path.with_suffix(".json").read_text())["built_from"] > state["built_from"]
