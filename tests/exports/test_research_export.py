"""Research exports: Safe Harbor on every row, read back by pandas and pyarrow, audited.

Every export here is written by the command line or the page and read back
with readers that are not the registry's (pandas, pyarrow, hashlib,
zipfile); every file is scanned for the identifiers planted in the cases.
"""

import copy
import hashlib
import io
import json
import zipfile

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from registry3d.audit.models import AuditEvent
from registry3d.cases.models import Case
from registry3d.cases.upgrade import upgrade_cases
from registry3d.cli import main
from registry3d.exports import services
from registry3d.exports.errors import ExportRefused
from registry3d.exports.models import Export, ExportSiteLabel
from registry3d.exports.tables import WITHHELD
from tests.conftest import client_for, csrf_post
from tests.exports.conftest import FORMULA

GROUPS = ("imaging", "anatomic_parts", "prints", "cpt_lines")


def export(tmp_path, *args):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["export", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    return out, result.output


def all_text(folder, but=()) -> str:
    return "\n".join(
        p.read_text(encoding="utf-8", errors="replace")
        for p in folder.iterdir()
        if p.name not in but
    )


def submitted(exportable):
    return [c for c in exportable.cases if c.status == "submitted"]


def test_a_research_export_follows_safe_harbor_on_every_row(exportable, tmp_path):
    out, output = export(tmp_path)
    assert output == f"Wrote 6 files to {out} (14 cases; de-identified); see manifest.json\n"
    cases = pd.read_csv(out / "cases.csv", dtype=str, keep_default_na=False)
    expected = submitted(exportable)
    assert sorted(cases["case_code"]) == sorted(str(c.code) for c in expected)
    # Dates to the year, ages of 90 and above as 90+.
    assert "case_year_month" not in cases.columns
    by_code = {str(c.code): c for c in expected}
    for row in cases.itertuples():
        case = by_code[row.case_code]
        assert row.case_year == case.data["case_year_month"][:4]
        age = case.data.get("age_years")
        assert row.age_years == (
            "90+" if age is not None and age >= 90 else "" if age is None else str(age)
        )
    assert "90+" in set(cases["age_years"])
    # No case ID, patient key or free text.
    for column in ("case_uid", "patient_key", "comment", "ua_comment"):
        assert column not in cases.columns
    parts = pd.read_csv(out / "anatomic_parts.csv", dtype=str, keep_default_na=False)
    assert "comment" not in parts.columns
    text = all_text(out)
    for secret in exportable.secrets:
        assert secret not in text, secret
    # The manifest's own time is the export's, not a patient's.
    data_text = all_text(out, but=("manifest.json",))
    for month in exportable.months:
        assert month not in data_text, month
    assert FORMULA not in text
    # Each group is a table of its own, one row per item, linked by case_code.
    for group in GROUPS:
        table = pd.read_csv(out / f"{group}.csv", dtype=str, keep_default_na=False)
        assert len(table) == sum(len(c.data.get(group) or []) for c in expected), group
        assert set(table["case_code"]) <= set(cases["case_code"])
        assert list(table.columns[:2]) == ["case_code", "item"]


def test_the_manifest_gives_every_files_rows_and_sha256(exportable, tmp_path):
    out, _ = export(tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    names = sorted(p.name for p in out.iterdir() if p.name != "manifest.json")
    assert [f["name"] for f in manifest["files"]] == names
    for entry in manifest["files"]:
        content = (out / entry["name"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(content).hexdigest()
        assert entry["bytes"] == len(content)
        if entry["name"] != "dictionary.csv":
            assert entry["rows"] == len(pd.read_csv(out / entry["name"])), entry["name"]
    assert manifest["cases"] == 14
    assert manifest["kind"] == "research" and manifest["requested_by"] == "command line"
    assert "Dates are reduced to the year (HIPAA Safe Harbor)." in manifest["rules"]


def test_the_exported_dictionary_describes_every_column(exportable, tmp_path):
    out, _ = export(tmp_path)
    dictionary = pd.read_csv(out / "dictionary.csv", dtype=str, keep_default_na=False)
    for name in ("cases", *GROUPS):
        columns = list(pd.read_csv(out / f"{name}.csv", nrows=0).columns)
        described = dictionary[dictionary["table"] == name]
        assert list(described["column"]) == columns, name
        assert (described["label"] != "").all(), name
    year = dictionary[dictionary["column"] == "case_year"].iloc[0]
    assert (year["element"], year["type"]) == ("case_year_month", "year")
    assert year["note"] == "Year only (HIPAA Safe Harbor)."
    age = dictionary[dictionary["column"] == "age_years"].iloc[0]
    assert age["note"] == "90+ stands for 90 or more (HIPAA Safe Harbor)."


def test_parquet_holds_the_same_rows_typed(exportable, tmp_path):
    out, _ = export(tmp_path, "--format", "parquet")
    csv_out = tmp_path / "csv"
    CliRunner().invoke(main, ["export", "--out", str(csv_out)])
    cases = pq.read_table(out / "cases.parquet")
    schema = {f.name: str(f.type) for f in cases.schema}
    assert schema["case_year"] == "int32"
    assert schema["turnaround_days"] == "int64"
    assert schema["intended_uses"] == "list<element: string>"
    assert schema["age_years"] == "string"  # 90+ is not a number
    frame = cases.to_pandas().set_index("case_code").sort_index()
    from_csv = pd.read_csv(csv_out / "cases.csv").set_index("case_code").sort_index()
    assert list(frame.index) == list(from_csv.index)
    assert (frame["case_year"] == from_csv["case_year"]).all()
    assert (
        frame["turnaround_days"].fillna(-1).tolist()
        == from_csv["turnaround_days"].fillna(-1).tolist()
    )
    for group in GROUPS:
        assert pq.read_table(out / f"{group}.parquet").num_rows == len(
            pd.read_csv(csv_out / f"{group}.csv")
        )
    # Compressed bytes hide strings: scan the values as read back.
    values = "\n".join(
        str(v)
        for p in out.glob("*.parquet")
        for v in pq.read_table(p).to_pandas().to_numpy().ravel().tolist()
    )
    assert str(submitted(exportable)[0].code) in values  # the scan sees the values
    for secret in exportable.secrets:
        assert secret not in values, secret
    for month in exportable.months:
        assert month not in values, month
    assert "90+" in set(frame["age_years"].dropna())


def test_site_labels_are_random_and_stable(exportable, tmp_path):
    first, _ = export(tmp_path, "--site-labels")
    again = tmp_path / "again"
    CliRunner().invoke(main, ["export", "--out", str(again), "--site-labels"])
    labels = pd.read_csv(first / "cases.csv")["site"]
    assert set(labels) == set(ExportSiteLabel.objects.values_list("label", flat=True))
    assert len(set(labels)) == 2 and all(label.startswith("SITE-") for label in labels)
    assert labels.tolist() == pd.read_csv(again / "cases.csv")["site"].tolist()
    for text in (all_text(first), all_text(again)):
        assert "SITEA" not in text and "SITEB" not in text


def test_free_text_is_screened_in_an_identifiable_export(exportable, tmp_path):
    # A comment stored before the identifier screen knew its pattern.
    case = submitted(exportable)[4]
    Case.objects.filter(pk=case.pk).update(data={**case.data, "ua_comment": "Seen by Dr Jones"})
    out, _ = export(tmp_path, "--free-text")
    cases = pd.read_csv(out / "cases.csv", dtype=str, keep_default_na=False)
    assert cases.set_index("case_code").loc[str(case.code), "ua_comment"] == WITHHELD
    assert "Jones" not in all_text(out)
    parts = pd.read_csv(out / "anatomic_parts.csv", dtype=str, keep_default_na=False)
    # The formula is kept, neutralised for spreadsheets.
    assert "'" + FORMULA in set(parts["comment"])
    assert json.loads((out / "manifest.json").read_text())["withheld_free_text"] == 1


def test_text_a_pattern_bounds_is_withheld_from_a_safe_harbor_export(exportable, tmp_path):
    """A label or a version stored before every text element was screened (#15)."""
    case = submitted(exportable)[4]
    data = copy.deepcopy(case.data)
    data["prints"][0]["printer_label"] = "Smith_John_1950-03-03"
    data["segmentation_software_version"] = "1950.03.03"
    Case.objects.filter(pk=case.pk).update(data=data)
    out, _ = export(tmp_path)
    cases = pd.read_csv(out / "cases.csv", dtype=str, keep_default_na=False)
    row = cases.set_index("case_code").loc[str(case.code)]
    assert row["segmentation_software_version"] == WITHHELD
    prints = pd.read_csv(out / "prints.csv", dtype=str, keep_default_na=False)
    assert WITHHELD in set(prints["printer_label"])
    assert "Smith_John" not in all_text(out)
    assert "1950.03.03" not in all_text(out)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_product_names_stored_as_text_leave_only_as_codes(exportable, tmp_path, fmt):
    # Stored under dictionary 1.0.0, when these elements were free text, and
    # carried forward to the value sets of 1.1.0 before the export.
    case = submitted(exportable)[5]
    data = {**case.data, "cad_software": "Dr Jones"}
    data.pop("cad_software_version", None)
    data["prints"] = [{**data["prints"][0], "material_trade_name": "patient Mary Major"}]
    Case.objects.filter(pk=case.pk).update(data=data, dictionary_version="1.0.0")
    other = submitted(exportable)[6]
    data = {**other.data, "cad_software": "Materialise 3-matic 18.0"}
    data.pop("cad_software_version", None)  # not an element of 1.0.0
    Case.objects.filter(pk=other.pk).update(data=data, dictionary_version="1.0.0")
    assert upgrade_cases().carried == 2
    out, _ = export(tmp_path, "--format", fmt)
    tables = {
        name: (
            pq.read_table(out / f"{name}.parquet").to_pandas()
            if fmt == "parquet"
            else pd.read_csv(out / f"{name}.csv", dtype=str, keep_default_na=False)
        )
        for name in ("cases", "prints")
    }
    cases = tables["cases"].set_index("case_code")
    assert cases.loc[str(case.code), "cad_software"] == "other"
    assert "cad_software_other" not in cases.columns
    prints = tables["prints"]
    mine = prints[prints["case_code"] == str(case.code)]
    assert mine["material_trade_name"].tolist() == ["other"]
    assert "material_trade_name_other" not in prints.columns
    # A known product comes through as its code, its version apart.
    assert cases.loc[str(other.code), "cad_software"] == "materialise_3_matic"
    assert str(cases.loc[str(other.code), "cad_software_version"]) == "18.0"
    values = "\n".join(
        str(v) for frame in tables.values() for v in frame.to_numpy().ravel().tolist()
    )
    for secret in ("Jones", "Mary Major", *exportable.secrets):
        assert secret not in values, secret


def test_labelled_sites_are_not_named_in_the_manifest(exportable, tmp_path):
    out, _ = export(tmp_path, "--site-labels", "--only-site", "SITEA")
    manifest = json.loads((out / "manifest.json").read_text())
    label = ExportSiteLabel.objects.get(site__code="SITEA").label
    assert manifest["options"]["sites"] == [label]
    assert set(pd.read_csv(out / "cases.csv")["site"]) == {label}
    for text in (all_text(out), json.dumps(manifest)):
        assert "SITEA" not in text and "SITEB" not in text


def test_filters_choose_the_cases(exportable, tmp_path):
    out, _ = export(
        tmp_path,
        "--from-year",
        "2025",
        "--to-year",
        "2025",
        "--only-site",
        "SITEA",
        "--elements",
        "object_type,prints",
    )
    cases = pd.read_csv(out / "cases.csv", dtype=str)
    expected = [
        c
        for c in submitted(exportable)
        if c.site.code == "SITEA" and c.data["case_year_month"].startswith("2025")
    ]
    assert sorted(cases["case_code"]) == sorted(str(c.code) for c in expected)
    assert "object_type" in cases.columns and "sex" not in cases.columns
    assert sorted(p.name for p in out.iterdir()) == [
        "cases.csv",
        "dictionary.csv",
        "manifest.json",
        "prints.csv",
    ]


def test_unknown_elements_sites_and_values_are_refused_by_name(exportable, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "export",
            "--out",
            str(tmp_path / "x"),
            "--elements",
            "object_type,shoe_size",
            "--only-site",
            "NOWHERE",
            "--organ-system",
            "liver",
        ],
    )
    assert result.exit_code == 1
    assert "elements: 'shoe_size' is not an element of dictionary 1.1.0; see /dictionary/" in (
        result.output
    )
    assert "sites: 'NOWHERE' is not a site of this registry" in result.output
    assert "organ_system: 'liver' is not one of" in result.output
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
    assert Export.objects.count() == 0


def test_the_command_refuses_a_folder_that_holds_files(exportable, tmp_path):
    (tmp_path / "old.csv").write_text("x")
    result = CliRunner().invoke(main, ["export", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path} is not empty; name a new or empty folder\n"


def test_an_analyst_may_not_leave_safe_harbor_and_the_refusal_is_audited(exportable, world):
    for options in (
        services.ResearchOptions(months=True),
        services.ResearchOptions(identifiers=True),
        services.ResearchOptions(free_text=True),
    ):
        with pytest.raises(ExportRefused, match="Only registry administrators may export"):
            services.request_research_export(world.dan, options)
    refusals = AuditEvent.objects.filter(action="export.refused", actor=world.dan)
    assert refusals.count() == 3
    assert Export.objects.count() == 0


def test_an_administrator_may_export_case_ids_and_months(exportable, world, tmp_path):
    export_row = services.request_research_export(
        world.ada, services.ResearchOptions(months=True, identifiers=True), enqueue=False
    )
    services.write_export(export_row, tmp_path)
    cases = pd.read_csv(tmp_path / "cases.csv", dtype=str)
    assert set(cases["case_uid"]) == {c.case_uid for c in submitted(exportable)}
    assert set(cases["case_year_month"]) <= exportable.months


def test_site_users_cannot_export_research_data(exportable, world):
    for person in (world.alice, world.mona, world.carol):
        with pytest.raises(ExportRefused, match="Only registry analysts and administrators"):
            services.request_research_export(person, services.ResearchOptions())
        response = csrf_post(client_for(person), "/exports/", {"format": "csv"})
        assert response.status_code == 404
        assert client_for(person).get("/exports/").status_code == 404
    assert AuditEvent.objects.filter(action="export.refused").count() == 6
    assert Export.objects.count() == 0


def test_an_analyst_exports_on_the_page_and_downloads_the_zip(exportable, world):
    client = client_for(world.dan)
    page = client.get("/exports/")
    assert page.status_code == 200
    assert "HIPAA Safe Harbor" in page.content.decode()
    response = csrf_post(
        client, "/exports/", {"format": "parquet", "from_year": "2024", "site_labels": "on"}
    )
    assert response.status_code == 302
    export_row = Export.objects.get()
    assert response["Location"] == f"/exports/{export_row.code}/"
    detail = client.get(response["Location"]).content.decode()
    assert 'data-status="done"' in detail
    assert "14 cases" in detail
    download = client.get(f"/exports/{export_row.code}/download/")
    assert download.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    names = sorted(archive.namelist())
    assert "manifest.json" in names and "cases.parquet" in names
    manifest = json.loads(archive.read("manifest.json"))
    for entry in manifest["files"]:
        assert hashlib.sha256(archive.read(entry["name"])).hexdigest() == entry["sha256"]
    requested = AuditEvent.objects.get(action="export.requested")
    assert requested.actor == world.dan
    assert requested.changes["options"]["from_year"] == 2024
    assert requested.changes["options"]["site_labels"] is True
    assert AuditEvent.objects.filter(action="export.downloaded", actor=world.dan).count() == 1
    # Another analyst of the registry sees it; a site's manager does not.
    assert client_for(world.ada).get(f"/exports/{export_row.code}/").status_code == 200
    for person in (world.mona, world.carol, world.alice):
        assert client_for(person).get(f"/exports/{export_row.code}/").status_code == 404
        assert client_for(person).get(f"/exports/{export_row.code}/download/").status_code == 404


def test_the_page_names_what_it_refuses(exportable, world):
    response = csrf_post(client_for(world.dan), "/exports/", {"format": "csv", "months": "on"})
    assert response.status_code == 403
    assert "Only registry administrators may export dates with the month" in (
        response.content.decode()
    )
    bad = csrf_post(client_for(world.dan), "/exports/", {"format": "xml", "from_year": "1800"})
    assert bad.status_code == 400
    page = bad.content.decode()
    assert "Select a valid choice. xml is not one of the available choices." in page
    assert "Ensure this value is greater than or equal to 1990." in page
    assert Export.objects.count() == 0
