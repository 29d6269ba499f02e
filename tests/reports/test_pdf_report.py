"""The quarterly feedback report of a site: PDF contents, download, command line."""

import statistics
import subprocess

import pytest
from click.testing import CliRunner
from django.test import override_settings

from registry3d.cases.models import Case
from registry3d.cli import main
from registry3d.reports.metrics import Filters
from registry3d.reports.pdf import site_pdf
from tests.conftest import client_for
from tests.reports.test_national import make_registry

OTHER_SITES = ("SITEB", "SITEC", "SITED", "SITEE")


@pytest.fixture
def sites(world):
    return make_registry(world)


def pdf_text(content: bytes, tmp_path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(content)
    return subprocess.run(
        ["/usr/bin/pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def q3_turnaround(site) -> float:
    cases = Case.objects.filter(site=site, status="submitted", case_month__gte="2026-07")
    return statistics.median(c.data["turnaround_days"] for c in cases)


def test_the_pdf_shows_the_site_against_the_registry(sites, tmp_path):
    content = site_pdf(sites["SITEA"], Filters("2026Q3", "2026Q3"))
    assert content.startswith(b"%PDF")
    text = pdf_text(content, tmp_path)
    assert "Quarterly feedback report" in text
    assert "SITEA – Site A Hospital" in text
    assert "2026Q3" in text
    # 14 submitted cases in the quarter: the withdrawn and earlier ones are left out.
    assert "Submitted cases" in text and "\n14\n" in text
    own = q3_turnaround(sites["SITEA"])
    assert f"{own:.1f} days" in text
    # The registry median of the five sites' medians is shown: the gate is open.
    registry = statistics.median(q3_turnaround(site) for site in sites.values())
    assert f"{registry:.1f} days" in text
    assert "reaches the threshold" in text
    assert "Matching appropriateness scenario" in text  # a missing element
    assert "Published" in text and "Data aggregated" in text
    for code in OTHER_SITES:
        assert code not in text


def test_below_the_completeness_gate_the_comparison_is_withheld(sites, tmp_path):
    with override_settings(REGISTRY3D_REPORT_MIN_COMPLETENESS=0.99):
        text = pdf_text(site_pdf(sites["SITEA"], Filters("2026Q3", "2026Q3")), tmp_path)
    assert "withholds the comparison" in text
    assert "withheld" in text
    assert f"{q3_turnaround(sites['SITEA']):.1f} days" in text
    registry = statistics.median(q3_turnaround(site) for site in sites.values())
    if registry != q3_turnaround(sites["SITEA"]):
        assert f"{registry:.1f} days" not in text


def test_the_download_is_for_the_sites_members_and_staff(sites, world):
    url = "/sites/SITEA/dashboard/report.pdf?start=2026Q2&end=2026Q3"
    for user in (world.bob, world.dan, world.ada):
        response = client_for(user).get(url)
        assert response.status_code == 200, user.email
        assert response["Content-Type"] == "application/pdf"
        assert response.content.startswith(b"%PDF")
        assert "registry3d-SITEA-2026Q2-2026Q3.pdf" in response["Content-Disposition"]
    assert client_for(world.carol).get(url).status_code == 404
    assert client_for(world.bob).get("/sites/SITEB/dashboard/report.pdf").status_code == 404
    bad = client_for(world.bob).get("/sites/SITEA/dashboard/report.pdf?start=2026Q5")
    assert bad.status_code == 400


def test_the_command_writes_the_pdf(sites, tmp_path):
    out = tmp_path / "sitea.pdf"
    result = CliRunner().invoke(
        main, ["report", "--site", "SITEA", "--period", "2026", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert result.output == f"Wrote {out} (SITEA, 2026, 18 cases)\n"
    text = pdf_text(out.read_bytes(), tmp_path)
    assert "2026" in text and "SITEA" in text and "\n18\n" in text
    assert not any(code in text for code in OTHER_SITES)


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--site", "SITEA", "--period", "2026Q5"],
            "Error: Bad period '2026Q5': expected 2026Q3, 2025Q4-2026Q3 or 2026\n",
        ),
        (
            ["--site", "SITEA", "--period", "2026Q3-2025Q4"],
            "Error: Bad period '2026Q3-2025Q4': expected 2026Q3, 2025Q4-2026Q3 or 2026\n",
        ),
        (["--site", "NOPE", "--period", "2026Q3"], "Error: No site has the code 'NOPE'\n"),
        (["--period", "2026Q3"], "Error: Give either --site CODE or --national\n"),
        (
            ["--site", "SITEA", "--national", "--period", "2026Q3"],
            "Error: Give either --site CODE or --national\n",
        ),
    ],
)
def test_the_command_refuses_with_one_line(world, tmp_path, args, message):
    out = tmp_path / "x.pdf"
    result = CliRunner().invoke(main, ["report", *args, "--out", str(out)])
    assert result.exit_code == 1
    assert result.stderr == message
    assert not out.exists()


def test_a_site_report_is_only_a_pdf(world, tmp_path):
    result = CliRunner().invoke(
        main, ["report", "--site", "SITEA", "--period", "2026", "--out", str(tmp_path / "a.csv")]
    )
    assert result.exit_code == 1
    assert result.stderr == "Error: --out must end in .pdf, not 'a.csv'\n"
