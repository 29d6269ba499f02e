"""The reports' figures, computed again without the engine, from the case JSON.

A small registry of real cases is written through the case service, the
snapshot is built, and every figure of :mod:`registry3d.reports.metrics` is
checked against a second implementation written here from the metric
definitions alone: pandas over the ``data`` of the submitted cases read from
the database (never the snapshot, never ``snapshot.case_row``), statsmodels
for Wilson intervals and scipy for percentile ranks and normal quantiles.
"""

import dataclasses
import math
import random
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
import yaml
from django.conf import settings
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

import registry3d.dictionary
from registry3d.cases.models import Case
from registry3d.cases.services import save_case, withdraw_case
from registry3d.dictionary import registry
from registry3d.dictionary.examples import synthetic_case
from registry3d.reports import metrics, snapshot
from registry3d.sites import services as site_services
from tests.cases.conftest import printers_for

# --- the registry ---------------------------------------------------------------

# code: (facility type, region, submitted cases). SITEA and SITEB come from
# the `world` fixture. Academic: 5 sites (a peer group at the 5-site limit);
# Ohio: 4 sites (one short of it).
SITES = {
    "SITEA": ("academic", "Ohio", 40),
    "SITEB": ("community", "Texas", 5),
    "ACAD3": ("academic", "Ohio", 10),
    "ACAD4": ("academic", "Ohio", 11),
    "ACAD5": ("academic", "Texas", 23),
    "ACAD6": ("academic", "Ohio", 31),
    "KIDS7": ("childrens", "", 17),
}
# Answered questionnaires: 11 in all over 5 sites, one of them in 2026Q3, so
# that 2026Q1-2026Q3 holds 11 answers and 2026Q1-2026Q2 holds 10.
ANSWERED = {"SITEA": 3, "ACAD3": 2, "ACAD4": 2, "ACAD5": 2, "ACAD6": 2}
LATE_ANSWER_SITE = "SITEA"
# Hourly staff costs (clinician, non-clinician) and operating-room cost per
# minute set by sites; None takes the registry default, which the fixture
# sets for non-clinician time only. SITEB and KIDS7 have no clinician rate,
# so only their cases without clinician time have a labour cost.
RATES = {
    "SITEA": (150, 60, 62),
    "ACAD3": (180, None, None),
    "ACAD4": (120.5, 70, 45),
    "ACAD5": (200, 65, None),
    "ACAD6": (140, None, None),
}
DEFAULT_NON_CLINICIAN_RATE = 55.0
MONTHS_2025 = [f"2025-{m:02d}" for m in (10, 11, 12)]
MONTHS_2026 = [f"2026-{m:02d}" for m in range(1, 7)]

# The definitions of the metrics, as the metric texts state them.
SEGMENTATION = ["effort_segmentation_clinician", "effort_segmentation_non_clinician"]
DESIGN = ["effort_cad_clinician", "effort_cad_non_clinician"]
PREP_POST = ["effort_prep_post_processing_clinician", "effort_prep_post_processing_non_clinician"]
ALL_EFFORT = [
    f"effort_{a}_{who}"
    for a in ("consultation", "segmentation", "cad", "prep_post_processing")
    for who in ("clinician", "non_clinician")
]
CLINICIAN_EFFORT = [n for n in ALL_EFFORT if n.endswith("_clinician") and "_non_" not in n]
NON_CLINICIAN_EFFORT = [n for n in ALL_EFFORT if n.endswith("_non_clinician")]
READ_ELEMENTS = [
    *SEGMENTATION,
    *DESIGN,
    *PREP_POST,
    "turnaround_days",
    "appropriateness_scenario",
    "procedure_performed",
]
MEDIANS = [
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
]
MEANS = ["time_saved_min", "or_cost_saved_usd", "usefulness", "completeness"]
PROPORTIONS = ["answered", "plan_changed", "appropriate"]
# In the engine's order.
ALL_METRICS = [
    "cases",
    *MEDIANS,
    "answered",
    "plan_changed",
    "time_saved_min",
    "or_cost_saved_usd",
    "usefulness",
    "appropriate",
    "completeness",
]


def _vary(data: dict, rng: random.Random) -> dict:
    """Leave out or change optional parts so every metric meets missing values."""
    if rng.random() < 0.1:
        data["effort_segmentation_non_clinician"] = "unknown"
    if rng.random() < 0.06:
        data["effort_segmentation_clinician"] = "unknown"
        data["effort_segmentation_non_clinician"] = "unknown"
    if rng.random() < 0.08:
        data["effort_cad_clinician"] = "unknown"
    if rng.random() < 0.1:
        data.pop("turnaround_days", None)
    if rng.random() < 0.12:
        for item in data["prints"]:
            item.pop("print_time_minutes", None)
    if rng.random() < 0.12:
        for item in data["prints"]:
            item.pop("material_cost_usd", None)
    if rng.random() < 0.35:
        data["post_processing_machine_minutes"] = rng.randint(0, 600)
    if rng.random() < 0.05:
        data["effort_prep_post_processing_clinician"] = "unknown"
        data["effort_prep_post_processing_non_clinician"] = "unknown"
    return data


@pytest.fixture
def registry_cases(world, tmp_path, settings):
    """Seven sites with 5-40 submitted cases each, plus cases that must not count."""
    settings.REGISTRY3D_NON_CLINICIAN_COST_PER_HOUR = DEFAULT_NON_CLINICIAN_RATE
    dictionary = registry.current().dictionary
    rng = random.Random(20261128)
    sites = {"SITEA": world.site_a, "SITEB": world.site_b}
    for code, (facility, region, _) in SITES.items():
        if code not in sites:
            sites[code] = site_services.add_site(
                code, f"{code} Hospital", region=region, facility_type=facility
            )
    # A site that has joined but submitted nothing.
    sites["EMPTY8"] = site_services.add_site(
        "EMPTY8", "Empty Hospital", region="Ohio", facility_type="academic"
    )
    for code, (clinician, non_clinician, operating_room) in RATES.items():
        site_services.set_costs(
            sites[code],
            clinician_cost_per_hour_usd=clinician,
            non_clinician_cost_per_hour_usd=non_clinician,
            or_cost_per_minute_usd=operating_room,
        )
    labels = {code: printers_for(site) for code, site in sites.items()}
    number = 0
    for code, (_, _, count) in SITES.items():
        answered = ANSWERED.get(code, 0)
        for i in range(count):
            number += 1
            with_questionnaire = i < answered
            if with_questionnaire:
                late = code == LATE_ANSWER_SITE and i == 0
                months = ["2026-08"] if late else MONTHS_2026
            else:
                months = MONTHS_2025 if rng.random() < 0.15 else MONTHS_2026
            data = synthetic_case(
                dictionary,
                rng,
                printer_labels=labels[code],
                year_months=months,
                with_questionnaire=with_questionnaire,
            )
            save_case(
                sites[code],
                case_uid=f"C{number:04d}",
                data=_vary(data, rng),
                status="submitted",
                actor=world.alice,
            )
    # Drafts and a withdrawn case stay out of every figure.
    for code in ("SITEA", "EMPTY8"):
        data = synthetic_case(dictionary, rng, printer_labels=labels[code])
        save_case(sites[code], case_uid="DRAFT1", data=data, status="draft", actor=world.alice)
    data = synthetic_case(dictionary, rng, printer_labels=labels["SITEB"])
    gone = save_case(
        sites["SITEB"], case_uid="GONE1", data=data, status="submitted", actor=world.alice
    ).case
    withdraw_case(gone, "Entered twice by mistake", actor=world.carol)

    path = tmp_path / "cases.parquet"
    snapshot.build(path, full=True)
    return snapshot.load(path)


# --- the second implementation ---------------------------------------------------


def _number(value):
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _sum_known(values):
    known = [_number(v) for v in values if _number(v) is not None]
    return float(sum(known)) if known else None


def _all_minutes(data, names):
    values = [data.get(n) for n in names]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return sum(values)
    return None


def _labour(data, code):
    """Each kind of staff time at the site's hourly cost, or the registry's default."""
    clinician_rate, non_clinician_rate, _ = RATES.get(code, (None, None, None))
    if non_clinician_rate is None:
        non_clinician_rate = DEFAULT_NON_CLINICIAN_RATE
    total = 0.0
    for names, rate in (
        (CLINICIAN_EFFORT, clinician_rate),
        (NON_CLINICIAN_EFFORT, non_clinician_rate),
    ):
        minutes = _all_minutes(data, names)
        if minutes is None or (minutes and rate is None):
            return None
        total += minutes * (rate or 0) / 60
    return round(total, 2)


def _per_part(value, parts):
    return round(value / parts, 2) if value is not None and parts else None


def _scenario_categories() -> dict[str, str]:
    folder = Path(registry3d.dictionary.__file__).parent / "data"
    table = yaml.safe_load((folder / "appropriateness.yaml").read_text())
    return {s["id"]: s.get("category") for s in table["scenarios"]}


def expected_cases() -> pd.DataFrame:
    """One row per submitted case, from the case JSON in the database."""
    categories = _scenario_categories()
    rows = []
    for case in Case.objects.filter(status="submitted").select_related("site"):
        data = case.data
        prints = data.get("prints") or []
        staff_post = _sum_known(data.get(n) for n in PREP_POST)
        machine = _number(data.get("post_processing_machine_minutes"))
        post = None
        if staff_post is not None or machine is not None:
            post = (staff_post or 0) + (machine or 0)
        efforts = [data.get(n) for n in ALL_EFFORT]
        staff = (
            float(sum(efforts))
            if all(isinstance(v, int) and not isinstance(v, bool) for v in efforts)
            else None
        )
        costs = [p["material_cost_usd"] for p in prints if "material_cost_usd" in p]
        material = round(sum(costs), 2) if costs else None
        parts = len(data.get("anatomic_parts") or [])
        labour = _labour(data, case.site.code)
        total = round(material + labour, 2) if material is not None and labour is not None else None
        answered = "respondent_role" in data
        saved = _number(data.get("est_procedure_time_saved_min")) if answered else None
        or_rate = (RATES.get(case.site.code, (None, None, None))[2]) or 37.45
        change = data.get("plan_change_type") if answered else None
        period = pd.Period(data["case_year_month"], freq="M")
        rows.append(
            {
                "case_id": case.pk,
                "site_code": case.site.code,
                "facility_type": case.site.facility_type,
                "site_region": case.site.region,
                "quarter": f"{period.year}Q{period.quarter}",
                "organ_system": data["organ_system"],
                "object_type": data["object_type"],
                "technology": prints[0]["technology"],
                "segmentation_min": _sum_known(data.get(n) for n in SEGMENTATION),
                "design_min": _sum_known(data.get(n) for n in DESIGN),
                "printing_min": _sum_known(p.get("print_time_minutes") for p in prints),
                "post_processing_min": post,
                "staff_min": staff,
                "turnaround_days": _number(data.get("turnaround_days")),
                "material_cost_usd": material,
                "material_cost_per_part_usd": _per_part(material, parts),
                "labour_cost_usd": labour,
                "labour_cost_per_part_usd": _per_part(labour, parts),
                "total_cost_usd": total,
                "total_cost_per_part_usd": _per_part(total, parts),
                "answered": 1.0 if answered else 0.0,
                "plan_changed": (1.0 if set(change) - {"none"} else 0.0) if change else None,
                "time_saved_min": saved,
                "or_cost_saved_usd": round(saved * or_rate, 2) if saved is not None else None,
                "usefulness": float(data["ua_important"]) if answered else None,
                "appropriate": 1.0
                if categories.get(data.get("appropriateness_scenario")) == "usually_appropriate"
                else 0.0,
                "completeness": np.mean(
                    [data.get(n) not in (None, "", [], "unknown") for n in READ_ELEMENTS]
                ),
                "missing": [n for n in READ_ELEMENTS if data.get(n) in (None, "", [], "unknown")],
            }
        )
    frame = pd.DataFrame(rows)
    for column in ALL_METRICS[1:]:
        frame[column] = frame[column].astype("float64")
    return frame


def expected_filter(cases: pd.DataFrame, filters: metrics.Filters | None) -> pd.DataFrame:
    if filters is None:
        return cases
    chosen = cases[cases["quarter"].between(filters.start, filters.end)]
    for name in ("organ_system", "object_type", "technology"):
        if getattr(filters, name):
            chosen = chosen[chosen[name] == getattr(filters, name)]
    return chosen


def expected_sites(cases: pd.DataFrame) -> pd.DataFrame:
    """Per site: every metric's value and the number of cases behind it."""
    grouped = cases.groupby("site_code")
    table = grouped[["facility_type", "site_region"]].first()
    table["cases"] = grouped.size().astype(float)
    table["cases__n"] = grouped.size()
    for column in MEDIANS:
        table[column] = grouped[column].median()
    for column in MEANS + PROPORTIONS:
        table[column] = grouped[column].mean()
    for column in MEDIANS + MEANS + PROPORTIONS:
        table[f"{column}__n"] = grouped[column].count()
    table["band"] = pd.cut(
        table["cases__n"], [0, 50, 200, math.inf], right=False, labels=["low", "mid", "high"]
    ).astype(str)
    return table


def expected_comparison(table: pd.DataFrame, name: str, own) -> dict:
    present = table[table[f"{name}__n"] > 0]
    values = present[name]
    sites, cases = len(values), int(present[f"{name}__n"].sum())
    if sites < 5 or cases < 11:
        return {"sites": sites, "cases": cases, "shown": False}
    quartiles = values.quantile([0.25, 0.5, 0.75])  # linear interpolation
    rank = None
    if own is not None and not pd.isna(own):
        rank = stats.percentileofscore(values.round(9), round(own, 9), kind="mean")
    return {
        "sites": sites,
        "cases": cases,
        "shown": True,
        "q1": quartiles[0.25],
        "median": quartiles[0.5],
        "q3": quartiles[0.75],
        "rank": rank,
    }


def _value(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def assert_comparison(actual: metrics.Comparison, expected: dict, where: str):
    assert actual.sites == expected["sites"], where
    assert actual.cases == expected["cases"], where
    assert actual.shown == expected["shown"], where
    if not expected["shown"]:
        assert actual.median is actual.q1 is actual.q3 is actual.rank is None, where
        return
    for key in ("q1", "median", "q3", "rank"):
        assert _value(getattr(actual, key)) == pytest.approx(expected[key], rel=1e-9, abs=1e-9), (
            where,
            key,
        )


# --- the tests --------------------------------------------------------------------

FILTERS = [
    None,
    metrics.Filters("2025Q4", "2026Q3"),
    metrics.Filters("2026Q1", "2026Q3"),
    metrics.Filters("2026Q1", "2026Q2"),
    metrics.Filters("2025Q4", "2026Q3", object_type="anatomic_model"),
    metrics.Filters("2025Q4", "2026Q3", technology="material_jetting"),
]


def _engine_sites(table: pl.DataFrame) -> pd.DataFrame:
    return table.to_pandas().set_index("site_code")


def test_the_registry_is_what_the_test_meant(registry_cases):
    cases = expected_cases()
    assert len(cases) == sum(c for _, _, c in SITES.values()) == registry_cases.height
    assert sorted(cases["case_id"]) == registry_cases["case_id"].to_list()
    assert cases.groupby("site_code").size().to_dict() == {k: v[2] for k, v in SITES.items()}
    for column in [*MEDIANS, "time_saved_min", "usefulness", "plan_changed"]:
        # Every metric meets cases without a value, and cases with one.
        assert 0 < cases[column].count() < len(cases), column
    assert cases["answered"].sum() == 11
    assert (cases["post_processing_min"] > 0).any()


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: f.label if f else "all")
def test_every_site_value_and_rank_in_the_benchmark_table(registry_cases, filters):
    expected = expected_sites(expected_filter(expected_cases(), filters))
    actual = _engine_sites(metrics.benchmark_table(registry_cases, filters))
    assert sorted(actual.index) == sorted(expected.index)
    for code, row in expected.iterrows():
        assert actual.loc[code, "facility_type"] == row["facility_type"]
        assert actual.loc[code, "site_region"] == row["site_region"]
    for name in ALL_METRICS:
        counts = actual[f"{name}__n"].astype(int).to_dict()
        assert counts == expected[f"{name}__n"].to_dict(), name
        for code, row in expected.iterrows():
            where = (code, name)
            want = _value(row[name])
            got = _value(actual.loc[code, name])
            if row[f"{name}__n"] == 0:
                assert want is None and got is None, where
                assert pd.isna(actual.loc[code, f"{name}__rank"]), where
                continue
            assert got == pytest.approx(want, abs=1e-9), where
            comparison = expected_comparison(expected, name, want)
            # The table ranks every site, even where a site's report would
            # suppress the registry's figures (analysts only).
            present = expected[expected[f"{name}__n"] > 0][name].round(9)
            rank = stats.percentileofscore(present, round(want, 9), kind="mean")
            assert actual.loc[code, f"{name}__rank"] == pytest.approx(rank, rel=1e-9), where
            if comparison["shown"]:
                assert comparison["rank"] == pytest.approx(rank)


def test_the_benchmark_table_ranks_by_pandas_rank_pct(registry_cases):
    """The rank is pandas' average rank, shifted by half a site: the same as compare()."""
    expected = expected_sites(expected_cases())
    actual = _engine_sites(metrics.benchmark_table(registry_cases))
    for name in ("cases", "staff_min", "answered", "completeness"):
        values = expected[expected[f"{name}__n"] > 0][name]
        pct = (values.rank(method="average", pct=True) - 0.5 / len(values)) * 100
        for code, value in pct.items():
            assert actual.loc[code, f"{name}__rank"] == pytest.approx(value), (code, name)


@pytest.mark.parametrize("filters", FILTERS[1:], ids=lambda f: f.label)
def test_every_site_report_against_the_registry_and_its_peers(registry_cases, filters):
    chosen = expected_filter(expected_cases(), filters)
    table = expected_sites(chosen)
    for code in [*SITES, "EMPTY8", "NOSUCH"]:
        report = metrics.site_report(registry_cases, code, filters)
        own = table.loc[code] if code in table.index else None
        assert report.site_code == code
        assert report.registry_sites == len(table)
        assert report.cases == (int(own["cases__n"]) if own is not None else 0)
        if own is None:
            assert report.completeness is None and not report.gate_open
            assert report.peer_labels == {} and report.missing == []
        else:
            assert report.completeness == pytest.approx(own["completeness"])
            assert report.gate_open == (
                own["completeness"] >= settings.REGISTRY3D_REPORT_MIN_COMPLETENESS
            )
            lacking = chosen[chosen["site_code"] == code]["missing"].explode().dropna()
            assert dict(report.missing) == lacking.value_counts().to_dict()
            assert [n for _, n in report.missing] == sorted(
                (n for _, n in report.missing), reverse=True
            )
        peers = {}
        if own is not None:
            peers = {
                "facility_type": table[table["facility_type"] == own["facility_type"]],
                "region": table[table["site_region"] == own["site_region"]],
                "volume": table[table["band"] == own["band"]],
            }
        assert [row.metric.name for row in report.rows] == ALL_METRICS
        for row in report.rows:
            name = row.metric.name
            value = _value(own[name]) if own is not None else None
            assert _value(row.value) == pytest.approx(value, abs=1e-9), (code, name)
            assert row.cases == (int(own[f"{name}__n"]) if own is not None else 0)
            assert_comparison(
                row.registry, expected_comparison(table, name, value), (code, name, "registry")
            )
            assert sorted(row.peers) == sorted(peers)
            for key, members in peers.items():
                assert_comparison(
                    row.peers[key], expected_comparison(members, name, value), (code, name, key)
                )


def test_suppression_at_10_and_11_cases(registry_cases):
    """11 answered questionnaires over 5 sites in 2026Q1-Q3, 10 in 2026Q1-Q2."""
    for filters, cases, shown in (
        (metrics.Filters("2026Q1", "2026Q3"), 11, True),
        (metrics.Filters("2026Q1", "2026Q2"), 10, False),
    ):
        report = metrics.site_report(registry_cases, "ACAD5", filters)
        for name in ("time_saved_min", "usefulness", "plan_changed"):
            row = next(r for r in report.rows if r.metric.name == name)
            assert (row.registry.sites, row.registry.cases) == (5, cases), name
            assert row.registry.shown is shown, name
            assert (row.registry.median is not None) is shown, name
            assert (row.registry.rank is not None) is shown, name
            # Academic peers are the same five sites.
            assert row.peers["facility_type"].shown is shown
        answered = report.rows[ALL_METRICS.index("answered")]
        assert answered.registry.shown and answered.registry.cases > 11
        trend = metrics.trend(
            registry_cases, "ACAD5", metrics.BY_NAME["time_saved_min"], ["2026Q2", "2026Q3"]
        )
        assert all(point["registry"] is None for point in trend)  # 10 and 1 answers


def test_suppression_at_4_and_5_sites(registry_cases):
    report = metrics.site_report(registry_cases, "ACAD4", metrics.Filters("2025Q4", "2026Q3"))
    cases_row = report.rows[0]
    academic, ohio = cases_row.peers["facility_type"], cases_row.peers["region"]
    assert (academic.sites, academic.cases) == (5, 115) and academic.shown
    assert academic.median == 23 and academic.q1 == 11 and academic.q3 == 31
    assert academic.rank == pytest.approx(30)  # 10 < 11: one below, itself half
    assert (ohio.sites, ohio.cases) == (4, 92) and not ohio.shown
    assert ohio.median is None and ohio.rank is None
    assert report.peer_labels == {
        "facility_type": "Facility type: academic",
        "region": "Region: Ohio",
        "volume": "Volume: under 50 cases",
    }
    # Five sites with too few cases is suppressed as well: the questionnaire
    # figures of 2026Q1-Q2 (10 answers over 5 sites) above; four sites with
    # plenty of cases here. A compare() of exactly the limits:
    assert metrics.compare([1.0] * 5, [2, 2, 2, 2, 3], 1.0).shown
    assert not metrics.compare([1.0] * 5, [2, 2, 2, 2, 2], 1.0).shown
    assert not metrics.compare([1.0] * 4, [10, 10, 10, 10], 1.0).shown


def _leaves(value, path=()):
    """Every number and string inside a report, with where it sits."""
    if dataclasses.is_dataclass(value) and not isinstance(value, metrics.Metric):
        for f in dataclasses.fields(value):
            yield from _leaves(getattr(value, f.name), (*path, f.name))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _leaves(item, (*path, i))
    elif isinstance(value, int | float | str) and not isinstance(value, bool):
        yield path, value


def test_a_site_report_holds_no_other_site_s_figures(registry_cases):
    filters = metrics.Filters("2025Q4", "2026Q3")
    table = expected_sites(expected_filter(expected_cases(), filters))
    code = "ACAD5"
    report = metrics.site_report(registry_cases, code, filters)
    strings = [v for _, v in _leaves(report) if isinstance(v, str)]
    for other in table.index.drop(code):
        assert not any(other in s for s in strings), other
    allowed_fields = {"sites", "cases", "median", "q1", "q3", "rank", "suppressed"}
    for row in report.rows:
        name = row.metric.name
        aggregates = set()
        for path, value in _leaves(row):
            if path[0] in ("value", "cases"):
                continue
            # Only distributions: counts, quartiles and the site's own rank.
            assert path[-1] in allowed_fields, path
            if path[-1] in ("median", "q1", "q3"):
                aggregates.add(value)
        own = table.loc[code, name]
        for other in table.index.drop(code):
            theirs = table.loc[other, name]
            if pd.isna(theirs) or theirs == own or theirs in aggregates:
                continue  # the same number, but not as theirs
            shown = [v for p, v in _leaves(row) if p[-1] in ("value", "median", "q1", "q3")]
            assert theirs not in shown, (other, name)
    funnel = metrics.funnel(filters.apply(registry_cases), metrics.BY_NAME["answered"], code)
    assert set(funnel) == {"rate", "point", "limits", "suppressed"}
    assert funnel["point"][0] == table.loc[code, "answered__n"]


def test_funnel_limits(registry_cases):
    cases = expected_cases()
    for filters in FILTERS[1:4]:
        for name in PROPORTIONS:
            check_funnel(registry_cases, cases, name, filters)


def check_funnel(registry_cases, cases, name, filters):
    chosen = expected_filter(cases, filters)
    known = chosen[chosen[name].notna()]
    rate = known[name].mean()
    sites = known["site_code"].nunique()
    for code in ("SITEA", "KIDS7", "EMPTY8"):
        funnel = metrics.funnel(filters.apply(registry_cases), metrics.BY_NAME[name], code)
        mine = known[known["site_code"] == code][name]
        if len(mine):
            assert funnel["point"][0] == len(mine)
            assert funnel["point"][1] == pytest.approx(mine.mean())
        else:
            assert funnel["point"] is None
        if len(known) < 11 or sites < 5:
            assert funnel["suppressed"] and funnel["limits"] == [] and funnel["rate"] is None
            continue
        assert not funnel["suppressed"]
        assert funnel["rate"] == pytest.approx(rate)
        sizes = [limit["n"] for limit in funnel["limits"]]
        assert sizes == sorted(set(sizes)) and sizes[0] == 1
        # Up to twice the site's own count: the largest site's volume is another
        # site's figure.
        assert sizes[-1] == max(2 * len(mine), 20)
        for limit in funnel["limits"]:
            spread = math.sqrt(rate * (1 - rate) / limit["n"])
            for key, p in (("95", 0.975), ("998", 0.999)):
                z = stats.norm.ppf(p)
                low, high = max(0.0, rate - z * spread), min(1.0, rate + z * spread)
                assert limit[f"low{key}"] == pytest.approx(low, abs=5e-4), limit
                assert limit[f"high{key}"] == pytest.approx(high, abs=5e-4), limit


def test_wilson_intervals_match_statsmodels(registry_cases):
    table = expected_sites(expected_cases())
    checked = 0
    for name in PROPORTIONS:
        for _code, row in table.iterrows():
            n = int(row[f"{name}__n"])
            if n == 0:
                assert metrics.wilson(0, 0) is None
                continue
            successes = round(row[name] * n)
            low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
            assert metrics.wilson(successes, n) == pytest.approx((low, high), abs=1e-4)
            checked += 1
    assert checked > 15
    for successes, n in ((0, 1), (1, 1), (0, 11), (11, 11), (3, 7), (500, 1000)):
        low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
        assert metrics.wilson(successes, n) == pytest.approx((low, high), abs=1e-4)


def test_trend_per_quarter(registry_cases):
    cases = expected_cases()
    quarters = ["2025Q4", "2026Q1", "2026Q2", "2026Q3"]
    for name in ("cases", "staff_min", "answered"):
        for code in ("SITEA", "KIDS7"):
            points = metrics.trend(registry_cases, code, metrics.BY_NAME[name], quarters)
            assert [p["quarter"] for p in points] == quarters
            for point in points:
                table = expected_sites(cases[cases["quarter"] == point["quarter"]])
                own = _value(table.loc[code, name]) if code in table.index else None
                assert _value(point["site"]) == pytest.approx(own), (code, name, point)
                comparison = expected_comparison(table, name, None)
                registry = comparison["median"] if comparison["shown"] else None
                assert point["registry"] == pytest.approx(registry), (code, name, point)


def test_shared_tables_give_every_site_the_same_figures(registry_cases):
    """Tables and distributions shared per snapshot change no figure of any site."""
    quarters = ["2025Q4", "2026Q1", "2026Q2", "2026Q3"]
    for filters in FILTERS[1:]:
        for code in [*SITES, "EMPTY8", "NOSUCH"]:
            alone = metrics.site_report(registry_cases, code, filters)
            shared = metrics.site_report(registry_cases, code, filters, snapshot_key="test")
            assert dataclasses.replace(alone, sites_table=None) == dataclasses.replace(
                shared, sites_table=None
            ), (code, filters)
            for metric in metrics.METRICS:
                assert metrics.trend(registry_cases, code, metric, quarters) == metrics.trend(
                    registry_cases, code, metric, quarters, snapshot_key=("test", filters.label)
                ), (code, metric.name)
    assert metrics.Filters.default(registry_cases, snapshot_key="test") == metrics.Filters.default(
        registry_cases
    )
