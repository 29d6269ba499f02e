"""A site's own export: every case as stored, importable again, safe in a spreadsheet."""

import csv
import io
import json
import zipfile

import openpyxl
import pandas as pd
import pyarrow.parquet as pq
from click.testing import CliRunner

from registry3d.audit.models import AuditEvent
from registry3d.cases.models import Case
from registry3d.cli import main
from registry3d.exports.models import Export
from registry3d.exports.tables import WITHHELD
from registry3d.intake import services as intake
from registry3d.intake.models import Import
from tests.conftest import client_for, csrf_post
from tests.exports.conftest import FORMULA


def site_export(tmp_path, fmt, site="SITEA"):
    out = tmp_path / fmt
    result = CliRunner().invoke(
        main, ["export", "--site", site, "--format", fmt, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out, result.output


def import_preview(world, path) -> Import:
    stored = intake.copy_to_imports("SITEA", path)
    batch = intake.create_import(world.site_a, stored, file_name=path.name)
    intake.run_import(batch, preview=True)
    batch.refresh_from_db()
    return batch


def site_a(exportable):
    return [c for c in exportable.cases if c.site.code == "SITEA"]


def test_the_csv_holds_the_sites_cases_as_stored_and_imports_again_unchanged(
    exportable, world, tmp_path
):
    out, output = site_export(tmp_path, "csv")
    assert output == f"Wrote 3 files to {out} (12 cases; SITEA as stored); see manifest.json\n"
    cases = pd.read_csv(out / "cases.csv", dtype=str, keep_default_na=False)
    mine = [c for c in site_a(exportable) if c.status != "withdrawn"]
    assert sorted(cases["case_uid"]) == sorted(c.case_uid for c in mine)
    assert set(cases["patient_key"]) == {c.patient_key for c in mine}
    assert set(cases["case_year_month"]) == {c.data["case_year_month"] for c in mine}
    assert "90" in set(cases["age_years"])  # as stored, not 90+
    withdrawn = pd.read_csv(out / "withdrawn.csv", dtype=str, keep_default_na=False)
    assert withdrawn[["case_uid", "status", "withdrawn_reason"]].values.tolist() == [
        ["ALPHA-CASE-003", "withdrawn", "Entered twice"]
    ]
    # Only this site's cases.
    text = (out / "cases.csv").read_text() + (out / "withdrawn.csv").read_text()
    assert "BRAVO" not in text
    # The formula is neutralised for spreadsheets, and comes back whole.
    assert ("'" + FORMULA) in set(cases["anatomic_parts_1_comment"])
    batch = import_preview(world, out / "cases.csv")
    assert (batch.rows, batch.unchanged, batch.changed, batch.invalid) == (11, 11, 0, 0)


def test_the_xlsx_writes_text_never_formulas_and_imports_again_unchanged(
    exportable, world, tmp_path
):
    out, _ = site_export(tmp_path, "xlsx")
    book = openpyxl.load_workbook(out / "cases.xlsx")
    assert book.sheetnames == ["cases", "withdrawn"]
    sheet = book["cases"]
    header = [cell.value for cell in sheet[1]]
    column = header.index("anatomic_parts_1_comment")
    comments = [row[column] for row in sheet.iter_rows(min_row=2)]
    formula_cells = [cell for cell in comments if cell.value == FORMULA]
    assert len(formula_cells) == 1 and formula_cells[0].data_type == "s"
    assert not any(c.data_type == "f" for row in sheet.iter_rows() for c in row)
    ages = [row[header.index("age_years")].value for row in sheet.iter_rows(min_row=2)]
    assert 90 in ages and all(isinstance(a, int) or a is None for a in ages)
    batch = import_preview(world, out / "cases.xlsx")
    assert (batch.rows, batch.unchanged, batch.changed, batch.invalid) == (11, 11, 0, 0)


RISKY = ["+SUM(1,2)", "-2+3", "@cmd|' /C calc'!A0", "\tTAB"]
PLAIN = ["-5", "+1.5", "a - b"]


def test_every_formula_start_is_neutralised_and_numbers_are_not(exportable, tmp_path):
    # Comments stored as site software might have sent them, one a case.
    with_parts = [c for c in site_a(exportable) if c.status == "submitted"]
    with_parts = [c for c in with_parts if c.data.get("anatomic_parts")]
    planted = dict(zip((c.pk for c in with_parts), RISKY + PLAIN, strict=False))
    assert len(planted) == len(RISKY + PLAIN)
    for case in with_parts:
        if case.pk in planted:
            parts = [{**case.data["anatomic_parts"][0], "comment": planted[case.pk]}]
            Case.objects.filter(pk=case.pk).update(data={**case.data, "anatomic_parts": parts})
    out, _ = site_export(tmp_path, "csv")
    with (out / "cases.csv").open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    comments = {r["anatomic_parts_1_comment"] for r in rows}
    assert {"'" + v for v in RISKY} <= comments
    assert set(PLAIN) <= comments
    out, _ = site_export(tmp_path, "xlsx")
    sheet = openpyxl.load_workbook(out / "cases.xlsx")["cases"]
    header = [cell.value for cell in sheet[1]]
    cells = [row[header.index("anatomic_parts_1_comment")] for row in sheet.iter_rows(min_row=2)]
    written = {c.value: c.data_type for c in cells if c.value is not None}
    for value in RISKY + PLAIN:
        assert written[value] == "s", value  # text as stored, never a formula or number
    assert not any(c.data_type == "f" for row in sheet.iter_rows() for c in row)


def test_parquet_tables_hold_every_case_with_its_identifiers(exportable, tmp_path):
    out, _ = site_export(tmp_path, "parquet")
    cases = pq.read_table(out / "cases.parquet").to_pandas()
    assert sorted(cases["case_uid"]) == sorted(c.case_uid for c in site_a(exportable))
    assert set(cases["status"]) == {"draft", "submitted", "withdrawn"}
    prints = pq.read_table(out / "prints.parquet").to_pandas()
    assert len(prints) == sum(len(c.data["prints"]) for c in site_a(exportable))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["site"] == "SITEA" and manifest["kind"] == "site"


def test_a_manager_exports_on_the_page_and_the_site_audit_trail_records_it(exportable, world):
    client = client_for(world.mona)
    assert client.get("/sites/SITEA/export/").status_code == 200
    response = csrf_post(client, "/sites/SITEA/export/", {"format": "csv"})
    assert response.status_code == 302
    export_row = Export.objects.get()
    download = client.get(f"/exports/{export_row.code}/download/")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    assert sorted(archive.namelist()) == [
        "cases.csv",
        "dictionary.csv",
        "manifest.json",
        "withdrawn.csv",
    ]
    assert "ALPHA-CASE-000" in archive.read("cases.csv").decode()
    assert AuditEvent.objects.filter(
        action="export.requested", site=world.site_a, actor=world.mona
    ).exists()
    assert AuditEvent.objects.filter(action="export.downloaded", site=world.site_a).exists()
    assert download["Content-Disposition"].startswith(
        'attachment; filename="registry3d-site-SITEA-'
    )


def test_nobody_else_exports_or_downloads_a_sites_cases(exportable, world):
    export_row = None
    response = csrf_post(client_for(world.mona), "/sites/SITEA/export/", {"format": "csv"})
    export_row = Export.objects.get()
    assert response.status_code == 302
    for person, status in (
        (world.carol, 404),
        (world.dan, 404),
        (world.alice, 403),
        (world.bob, 403),
    ):
        client = client_for(person)
        assert client.get("/sites/SITEA/export/").status_code == status
        assert csrf_post(client, "/sites/SITEA/export/", {"format": "csv"}).status_code == status
        assert client.get(f"/exports/{export_row.code}/").status_code == 404
        assert client.get(f"/exports/{export_row.code}/download/").status_code == 404
    assert Export.objects.count() == 1
    refused = AuditEvent.objects.filter(action="export.refused")
    assert refused.count() == 4
    assert {e.changes["site"] for e in refused} == {"SITEA"}
    # Carol exports her own site, which holds none of Site A's cases.
    csrf_post(client_for(world.carol), "/sites/SITEB/export/", {"format": "csv"})
    theirs = Export.objects.get(site=world.site_b)
    archive = zipfile.ZipFile(
        io.BytesIO(
            b"".join(
                client_for(world.carol).get(f"/exports/{theirs.code}/download/").streaming_content
            )
        )
    )
    assert "ALPHA" not in archive.read("cases.csv").decode()


def test_research_only_options_are_refused_with_a_site_export(exportable, tmp_path):
    result = CliRunner().invoke(
        main, ["export", "--site", "SITEA", "--out", str(tmp_path / "x"), "--months"]
    )
    assert result.exit_code == 1
    assert result.output == "Error: --months: only for research exports (leave out --site)\n"


def test_fhir_ndjson_holds_the_sites_cases_readable_by_fhir_resources(exportable, tmp_path):
    from fhir.resources.R4B.patient import Patient
    from fhir.resources.R4B.questionnaire import Questionnaire
    from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

    out, output = site_export(tmp_path, "fhir")
    assert output.endswith("(12 cases; SITEA as stored); see manifest.json\n")
    manifest = json.loads((out / "manifest.json").read_text())
    patients = (out / "Patient.ndjson").read_text().splitlines()
    assert len(patients) == 12
    keys = {c.patient_key for c in site_a(exportable)}
    for line in patients:
        patient = Patient.model_validate_json(line)
        assert patient.identifier[0].value in keys
    for line in (out / "QuestionnaireResponse.ndjson").read_text().splitlines():
        QuestionnaireResponse.model_validate_json(line)
    Questionnaire.model_validate_json((out / "Questionnaire-registry3d-case.json").read_text())
    rows = {f["name"]: f["rows"] for f in manifest["files"]}
    assert rows["Patient.ndjson"] == 12
    text = "".join(p.read_text() for p in out.iterdir())
    assert "BRAVO" not in text
    for mrn in exportable.mrns:
        assert mrn not in text


def test_a_research_export_is_never_fhir(exportable, tmp_path):
    result = CliRunner().invoke(main, ["export", "--format", "fhir", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "A research export is csv or parquet; fhir is for a site's export (--site)" in (
        result.output
    )


def test_a_redcap_export_loads_as_a_redcap_project(exportable, tmp_path):
    out, output = site_export(tmp_path, "redcap")
    # Withdrawn cases are not REDCap records.
    assert output.endswith("(11 cases; SITEA as stored); see manifest.json\n")
    dictionary = pd.read_csv(out / "data-dictionary.csv", dtype=str, keep_default_na=False)
    assert len(dictionary.columns) == 18
    assert dictionary.iloc[0]["Variable / Field Name"] == "record_id"
    records = pd.read_csv(out / "records.csv", dtype=str, keep_default_na=False)
    main_rows = records[records["redcap_repeat_instrument"] == ""]
    expected = {c.case_uid for c in site_a(exportable) if c.status != "withdrawn"}
    assert set(main_rows["record_id"]) == expected
    prints = records[records["redcap_repeat_instrument"] == "prints"]
    assert len(prints) == sum(
        len(c.data["prints"]) for c in site_a(exportable) if c.status != "withdrawn"
    )
    manifest = json.loads((out / "manifest.json").read_text())
    rows = {f["name"]: f["rows"] for f in manifest["files"]}
    assert rows["records.csv"] == len(records)
    text = (out / "records.csv").read_text()
    for case in exportable.cases:
        assert case.patient_key not in text
    assert "BRAVO" not in text


def test_text_that_looks_like_an_identifier_is_withheld_in_every_format(exportable, tmp_path):
    # Stored past the entry screen: typed before it knew the shape, say.
    case = [c for c in site_a(exportable) if c.status == "submitted"][0]
    Case.objects.filter(pk=case.pk).update(data={**case.data, "ua_comment": "call 617-555-0100"})
    for fmt in ("csv", "xlsx", "parquet", "fhir", "redcap"):
        out, _ = site_export(tmp_path, fmt)
        for path in out.iterdir():
            data = path.read_bytes()
            if path.suffix == ".xlsx":
                with zipfile.ZipFile(io.BytesIO(data)) as book:
                    data = b"".join(book.read(name) for name in book.namelist())
            elif path.suffix == ".parquet":
                data = str(pq.read_table(path).to_pylist()).encode()
            assert b"555-0100" not in data, path
    cases = pd.read_csv(tmp_path / "csv" / "cases.csv", dtype=str, keep_default_na=False)
    mine = cases.set_index("case_uid").loc[case.case_uid, "ua_comment"]
    assert mine == WITHHELD
    assert json.loads((tmp_path / "csv" / "manifest.json").read_text())["withheld_free_text"] == 1
    redcap = (tmp_path / "redcap" / "records.csv").read_text()
    assert WITHHELD in redcap
