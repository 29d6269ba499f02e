"""A lab engineer uploads a spreadsheet with mistakes, reads the problems, fixes it, imports."""

import pytest
from playwright.sync_api import expect

from registry3d.cases.models import Case
from tests.browser.conftest import log_in
from tests.cases.conftest import printers_for
from tests.intake.import_files import case_rows, write_csv


@pytest.mark.browser
def test_an_upload_with_two_bad_rows_is_fixed_and_imported(browser_world, page, tmp_path):
    labels = printers_for(browser_world.site_a)
    rows = case_rows(6, labels, prefix="LAB")
    good = [dict(row) for row in rows]
    rows[1]["age_years"] = "forty"
    rows[4]["sex"] = "robot"
    bad_file = write_csv(tmp_path / "lab-cases.csv", rows)

    log_in(page, "alice@a.example.org")
    page.goto("/sites/SITEA/cases/")
    page.get_by_role("link", name="Import a file").click()
    page.get_by_label("CSV or XLSX file").set_input_files(str(bad_file))
    page.get_by_role("button", name="Upload and check").click()

    status = page.locator("[data-status]")
    expect(status).to_have_attribute("data-status", "checked")
    expect(page.locator('[data-count="invalid"]')).to_have_text("2")
    problems = page.locator(".problems-list")
    expect(problems).to_contain_text(f"Row 3 ({rows[1]['case_uid']}), age_years")
    expect(problems).to_contain_text(f"Row 6 ({rows[4]['case_uid']}), sex")
    expect(page.get_by_text("Nothing can be written in all-or-nothing mode")).to_be_visible()

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download every problem (CSV)").click()
    listed = download_info.value.path().read_text(encoding="utf-8").splitlines()
    assert listed[0] == "row,case_uid,element,code,message"
    assert [line.split(",")[0] for line in listed[1:]] == ["3", "6"]
    assert Case.objects.exists() is False

    fixed = write_csv(tmp_path / "lab-cases-fixed.csv", good)
    page.goto("/sites/SITEA/imports/")
    page.get_by_label("CSV or XLSX file").set_input_files(str(fixed))
    page.get_by_role("button", name="Upload and check").click()
    expect(page.locator('[data-count="invalid"]')).to_have_text("0")
    expect(page.locator('[data-count="new"]')).to_have_text("6")
    page.get_by_role("button", name="Write 6 cases").click()
    expect(page.locator("[data-status]")).to_have_attribute("data-status", "done")
    expect(page.locator('[data-count="written"]')).to_have_text("6")

    page.get_by_role("link", name="Cases").last.click()
    expect(page.locator("[data-total]")).to_have_text("6 cases")
    expect(page.locator("table.cases")).to_contain_text(rows[0]["case_uid"])
