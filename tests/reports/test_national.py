"""The national evidence report: CPT volumes, value by group, suppression, intervals, access."""

import csv
import io
import random
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from statsmodels.stats.proportion import proportion_confint

from registry3d.cases.models import Case
from registry3d.cases.services import save_case, withdraw_case
from registry3d.cli import main
from registry3d.dictionary import registry
from registry3d.dictionary.examples import synthetic_case
from registry3d.reports import national, snapshot
from registry3d.reports.metrics import MIN_CASES, Filters, wilson
from registry3d.sites import services
from tests.cases.conftest import printers_for
from tests.conftest import client_for

Q3 = ["2026-07", "2026-08", "2026-09"]
# Extra sites: code, region, facility type, cases in 2026Q3. Maine has 10
# cases (every figure suppressed), Utah 11 (shown).
EXTRA_SITES = [
    ("SITEC", "Maine", "academic", 10),
    ("SITED", "Utah", "community", 11),
    ("SITEE", "Ohio", "academic", 12),
]


def add_cases(site, count, months, *, start, labels, actor=None, status="submitted"):
    dictionary = registry.current().dictionary
    for number in range(count):
        seed = start + number
        data = synthetic_case(
            dictionary,
            random.Random(seed),
            printer_labels=labels,
            year_months=months,
            with_questionnaire=seed % 3 != 0,
        )
        save_case(site, case_uid=f"{site.code}-{seed}", data=data, status=status, actor=actor)


def make_registry(world) -> dict:
    """Five sites with cases in 2026Q3, two with earlier quarters too, then a fresh snapshot.

    SITEA (Ohio) has 14 cases in 2026Q3, SITEB (Texas) 12; a withdrawn and a
    draft case must not count.
    """
    sites = {"SITEA": world.site_a, "SITEB": world.site_b}
    labels_a = printers_for(world.site_a)
    add_cases(world.site_a, 14, Q3, start=1000, labels=labels_a)
    add_cases(world.site_a, 4, ["2026-02"], start=1100, labels=labels_a)
    labels_b = printers_for(world.site_b)
    add_cases(world.site_b, 12, Q3, start=2000, labels=labels_b)
    add_cases(world.site_b, 3, ["2026-05"], start=2100, labels=labels_b)
    add_cases(world.site_b, 1, Q3, start=2200, labels=labels_b, status="draft")
    for offset, (code, region, facility_type, count) in enumerate(EXTRA_SITES):
        site = services.add_site(
            code, f"{code} Hospital", region=region, facility_type=facility_type
        )
        add_cases(site, count, Q3, start=3000 + 100 * offset, labels=printers_for(site))
        sites[code] = site
    withdrawn = Case.objects.get(site=world.site_a, case_uid="SITEA-1000")
    withdraw_case(withdrawn, "Entered twice")
    add_cases(world.site_a, 1, Q3, start=1200, labels=labels_a)  # 14 again
    snapshot.build(full=True)
    return sites


@pytest.fixture
def sites(world):
    return make_registry(world)


def run(*args):
    return CliRunner().invoke(main, list(args))


def read_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def figure(rows, table, group, measure) -> dict:
    return next(
        r for r in rows if (r["table"], r["group"], r["measure"]) == (table, group, measure)
    )


def submitted_2026():
    return Case.objects.filter(status="submitted", case_month__startswith="2026")


def test_cpt_volumes_match_the_cases(sites, tmp_path):
    out = tmp_path / "national.csv"
    result = run("report", "--national", "--period", "2026", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = read_csv(out.read_text(encoding="utf-8"))
    assert list(rows[0]) == list(national.CSV_COLUMNS)
    shown = 0
    for code in ("0559T", "0560T", "0561T", "0562T"):
        cases, units, site_ids = 0, 0, set()
        for case in submitted_2026():
            lines = [line for line in case.data.get("cpt_lines", []) if line["code"] == code]
            if lines:
                cases += 1
                units += sum(line.get("units") or 1 for line in lines)
                site_ids.add(case.site_id)
        got = {m: figure(rows, "cpt", f"{code} 2026", m) for m in ("cases", "units", "sites")}
        if cases >= MIN_CASES:
            shown += 1
            assert got["cases"]["value"] == str(cases)
            assert got["units"]["value"] == str(units)
            assert got["sites"]["value"] == str(len(site_ids))
            assert got["cases"]["sites"] == str(len(site_ids))
            assert got["cases"]["suppressed"] == "false"
        else:
            assert all(g["suppressed"] == "true" and g["value"] == "" for g in got.values())
    assert shown >= 1
    # 2026 holds the 14 + 4 + 12 + 3 + 33 submitted cases, not the draft or the withdrawn one.
    assert figure(rows, "overall", "all", "cases")["value"] == str(submitted_2026().count()) == "66"


def test_a_group_of_10_cases_is_suppressed_and_of_11_shown(sites):
    report = national.national_report(snapshot.load(), national.parse_period("2026Q3"))
    rows = read_csv(national.to_csv(report))
    maine = [r for r in rows if r["table"] == "region" and r["group"] == "Maine"]
    assert len(maine) == 5 and all(r["suppressed"] == "true" for r in maine)
    assert all(r["value"] == r["cases"] == r["sites"] == "" for r in maine)
    utah = figure(rows, "region", "Utah", "cases")
    assert (utah["value"], utah["cases"], utah["sites"], utah["suppressed"]) == (
        "11",
        "11",
        "1",
        "false",
    )
    # No figure anywhere rests on fewer than 11 cases.
    assert all(int(r["cases"]) >= MIN_CASES for r in rows if r["suppressed"] == "false")
    assert any(r["suppressed"] == "true" for r in rows if r["table"] == "indication")


def test_proportions_carry_the_wilson_interval_of_statsmodels(sites):
    report = national.national_report(snapshot.load(), national.parse_period("2026Q3"))
    rows = read_csv(national.to_csv(report))
    utah = Case.objects.filter(site=sites["SITED"], status="submitted")
    answered = sum(1 for case in utah if "respondent_role" in case.data)
    row = figure(rows, "region", "Utah", "answered")
    low, high = proportion_confint(answered, utah.count(), alpha=0.05, method="wilson")
    assert float(row["value"]) == pytest.approx(answered / utah.count(), abs=1e-4)
    assert float(row["low"]) == pytest.approx(low, abs=1e-4)
    assert float(row["high"]) == pytest.approx(high, abs=1e-4)
    for successes, n in ((0, 11), (3, 11), (11, 11), (57, 200), (1, 1000)):
        expected = proportion_confint(successes, n, alpha=0.05, method="wilson")
        assert wilson(successes, n) == pytest.approx(expected, abs=1e-3)


def test_means_carry_a_reproducible_bootstrap_interval():
    from scipy.stats import bootstrap

    rng = np.random.default_rng(7)
    values = rng.integers(-30, 120, size=60).astype(float).tolist()
    low, high = national.bootstrap_interval(values)
    assert national.bootstrap_interval(values) == (low, high)  # fixed seed
    assert low < np.mean(values) < high
    reference = bootstrap(
        (np.array(values),), np.mean, method="percentile", n_resamples=20000, random_state=1
    ).confidence_interval
    spread = np.std(values) / np.sqrt(len(values))
    assert low == pytest.approx(reference.low, abs=0.25 * spread)
    assert high == pytest.approx(reference.high, abs=0.25 * spread)
    median_low, median_high = national.bootstrap_interval(values, "median")
    assert median_low <= np.median(values) <= median_high


@pytest.mark.parametrize(
    "text, start, end",
    [
        ("2026Q3", "2026Q3", "2026Q3"),
        ("2025q4-2026Q3", "2025Q4", "2026Q3"),
        ("2026", "2026Q1", "2026Q4"),
    ],
)
def test_periods(text, start, end):
    assert national.parse_period(text) == Filters(start, end)


@pytest.mark.parametrize("text", ["", "2026Q5", "2026Q3-2026Q1", "26Q1", "2026-2027"])
def test_bad_periods(text):
    with pytest.raises(national.PeriodError, match="expected 2026Q3, 2025Q4-2026Q3 or 2026"):
        national.parse_period(text)


def test_the_page_is_for_registry_staff_only(sites):
    url = "/reports/national/?period=2026Q3"
    alice = client_for(_user("alice@a.example.org"))
    assert alice.get(url).status_code == 403
    assert alice.get("/reports/national/report.csv?period=2026Q3").status_code == 403
    assert client_for(_user("carol@b.example.org")).get(url).status_code == 403
    page = client_for(_user("dan@registry.example.org")).get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Volumes per CPT code" in text and "0559T · 2026" in text
    assert "Utah" in text and "suppressed" in text
    download = client_for(_user("ada@registry.example.org")).get(
        "/reports/national/report.csv?period=2026Q3"
    )
    assert download.status_code == 200 and download["Content-Type"].startswith("text/csv")
    assert figure(read_csv(download.content.decode()), "region", "Utah", "cases")["value"] == "11"
    bad = client_for(_user("dan@registry.example.org")).get("/reports/national/?period=2026Q9")
    assert bad.status_code == 400 and "expected 2026Q3" in bad.content.decode()


def _user(email):
    return services.find_user(email)


def test_the_national_pdf_holds_the_cpt_table(sites, tmp_path):
    out = tmp_path / "national.pdf"
    result = run("report", "--national", "--period", "2026", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "66 cases from 5 sites" in result.output
    text = subprocess.run(
        ["/usr/bin/pdftotext", str(out), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "National evidence report" in text
    assert "Volumes per CPT code" in text
    for code in ("0559T", "0560T", "0561T", "0562T"):
        assert f"{code} · 2026" in text
    assert "suppressed" in text
    cases = sum(
        1
        for case in submitted_2026()
        if any(line["code"] == "0559T" for line in case.data.get("cpt_lines", []))
    )
    assert cases >= MIN_CASES and str(cases) in text


def test_the_national_cli_refuses_a_bad_request(sites, tmp_path):
    result = run("report", "--national", "--period", "2026Q7", "--out", str(tmp_path / "x.csv"))
    assert result.exit_code == 1
    assert "expected 2026Q3, 2025Q4-2026Q3 or 2026" in result.output
    result = run("report", "--national", "--period", "2026", "--out", str(tmp_path / "x.xlsx"))
    assert result.exit_code == 1 and "--out must end in .pdf or .csv" in result.output
    assert not list(tmp_path.iterdir())


def test_appropriateness_shares_follow_the_scenarios_rated_in_the_reference_table(sites):
    # The categories read from the reference file itself, not through the snapshot.
    reference = Path(registry.__file__).parent / "data" / "appropriateness.yaml"
    table = yaml.safe_load(reference.read_text())
    category = {s["id"]: s.get("category") or "" for s in table["scenarios"]}
    cases = list(submitted_2026())
    counts = {"usually_appropriate": 0, "may_be_appropriate": 0, "rarely_appropriate": 0, "": 0}
    for case in cases:
        counts[category.get(case.data.get("appropriateness_scenario") or "", "")] += 1
    assert counts["usually_appropriate"] > 0 and counts[""] > 0  # both kinds are in the test
    report = national.national_report(snapshot.load(), national.parse_period("2026"))
    rows = read_csv(national.to_csv(report))
    for code, count in counts.items():
        got = figure(rows, "appropriateness", code or national.NOT_RATED, "share")
        low, high = proportion_confint(count, len(cases), alpha=0.05, method="wilson")
        assert got["suppressed"] == "false" and got["cases"] == str(len(cases))
        assert float(got["value"]) == pytest.approx(count / len(cases), abs=1e-4)
        assert float(got["low"] or 0) == pytest.approx(max(0.0, low), abs=1e-4)
        assert float(got["high"] or 0) == pytest.approx(high, abs=1e-4)


def test_the_model_type_table_counts_every_case_once(sites):
    report = national.national_report(snapshot.load(), national.parse_period("2026"))
    rows = read_csv(national.to_csv(report))
    expected: dict[str, int] = {}
    for case in submitted_2026():
        expected[case.object_type] = expected.get(case.object_type, 0) + 1
    got = {r["group"]: r for r in rows if r["table"] == "model_type" and r["measure"] == "cases"}
    assert set(got) == set(expected)
    for code, count in expected.items():
        shown = got[code]
        if count >= MIN_CASES:
            assert (shown["value"], shown["suppressed"]) == (str(count), "false")
        else:
            assert (shown["value"], shown["suppressed"]) == ("", "true")
    assert sum(expected.values()) == submitted_2026().count()
    assert any(got[c]["suppressed"] == "false" for c in got)
