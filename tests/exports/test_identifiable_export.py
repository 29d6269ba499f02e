"""Who gets which research export: Safe Harbor for analysts, identifiable ones for admins.

An export that keeps months, case IDs and patient keys or free text leaves
HIPAA Safe Harbor: it is an identifiable export (a limited data set), asked
for, listed and downloaded by registry administrators alone, and titled so
on its page, in its manifest, its dictionary and its file name. Free text
is never in a de-identified export, whatever the identifier screen misses.
"""

import io
import json
import zipfile

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from django.http import Http404

from registry3d.audit.models import AuditEvent
from registry3d.cases.models import Case
from registry3d.cli import main
from registry3d.exports import services
from registry3d.exports.errors import ExportRefused
from registry3d.exports.models import Export, ExportCase
from tests.conftest import client_for, csrf_post

IDENTIFIABLE = "Identifiable export (limited data set)"
DEIDENTIFIED = "Research (de-identified) export"
# A name the identifier screen misses: no cue word, no pattern.
MISSED = "Mimics run by Jane Roe"


def submitted(exportable):
    return [c for c in exportable.cases if c.status == "submitted"]


def zip_of(client, export) -> zipfile.ZipFile:
    download = client.get(f"/exports/{export.code}/download/")
    assert download.status_code == 200
    return zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))


def every_value(archive: zipfile.ZipFile) -> str:
    """Every file of the ZIP as text; Parquet files as their values read back."""
    out = []
    for name in archive.namelist():
        content = archive.read(name)
        out.append(content.decode("utf-8", errors="replace"))
        if name.endswith(".parquet"):
            frame = pq.read_table(io.BytesIO(content)).to_pandas()
            out += [str(v) for v in frame.to_numpy().ravel().tolist()]
    return "\n".join(out)


def ask(client, **options):
    response = csrf_post(client, "/exports/", {"format": "csv", **options})
    assert response.status_code == 302, response.content.decode()[:2000]
    return Export.objects.get(code=response["Location"].split("/")[2])


@pytest.fixture
def planted(exportable):
    """A name in a case's comment and a part's comment, as if the screen let it in."""
    case = submitted(exportable)[4]
    data = {**case.data, "ua_comment": MISSED}
    if data.get("anatomic_parts"):
        data["anatomic_parts"] = [{**data["anatomic_parts"][0], "comment": MISSED}]
    # Written past the write path: the test must hold whatever the screen does.
    Case.objects.filter(pk=case.pk).update(data=data)
    return case


def test_an_analyst_neither_lists_nor_downloads_an_admins_identifiable_export(exportable, world):
    ada, dan = client_for(world.ada), client_for(world.dan)
    identifiable = ask(ada, months="on", identifiers="on")
    assert identifiable.identifiable is True
    safe = ask(dan)
    assert safe.identifiable is False

    listing = dan.get("/exports/").content.decode()
    assert str(safe.code) in listing and str(identifiable.code) not in listing
    assert IDENTIFIABLE not in listing
    for url in (f"/exports/{identifiable.code}/", f"/exports/{identifiable.code}/download/"):
        assert dan.get(url).status_code == 404, url
        assert dan.get(url, HTTP_HX_REQUEST="true").status_code == 404, url
    with pytest.raises(Http404):
        services.get_export_for_user(world.dan, identifiable.code)
    assert not AuditEvent.objects.filter(action="export.downloaded", actor=world.dan).exists()

    # The admin lists both, each under its own title.
    listing = ada.get("/exports/").content.decode()
    assert f'data-export="{identifiable.code}" data-identifiable' in listing
    assert IDENTIFIABLE in listing and DEIDENTIFIED in listing
    page = ada.get(f"/exports/{identifiable.code}/").content.decode()
    assert f"<h1>{IDENTIFIABLE}</h1>" in page and DEIDENTIFIED not in page
    download = ada.get(f"/exports/{identifiable.code}/download/")
    assert "registry3d-identifiable-registry-" in download["Content-Disposition"]
    manifest = json.loads(zip_of(ada, identifiable).read("manifest.json"))
    assert (manifest["title"], manifest["identifiable"]) == (IDENTIFIABLE, True)
    # The analyst's own export opens for both, titled de-identified.
    for client in (ada, dan):
        page = client.get(f"/exports/{safe.code}/").content.decode()
        assert f"<h1>{DEIDENTIFIED}</h1>" in page
        manifest = json.loads(zip_of(client, safe).read("manifest.json"))
        assert (manifest["title"], manifest["identifiable"]) == (DEIDENTIFIED, False)


def test_site_people_get_404_for_every_research_export(exportable, world):
    identifiable = ask(client_for(world.ada), free_text="on")
    safe = ask(client_for(world.dan))
    for person in (world.alice, world.bob, world.mona, world.carol):
        client = client_for(person)
        for export in (identifiable, safe):
            assert client.get(f"/exports/{export.code}/").status_code == 404
            assert client.get(f"/exports/{export.code}/download/").status_code == 404


def test_an_analyst_asking_for_free_text_is_refused_and_the_refusal_audited(exportable, world):
    client = client_for(world.dan)
    page = client.get("/exports/").content.decode()
    assert 'name="free_text"' not in page and 'name="months"' not in page
    assert 'name="free_text"' in client_for(world.ada).get("/exports/").content.decode()
    response = csrf_post(client, "/exports/", {"format": "csv", "free_text": "on"})
    assert response.status_code == 403
    assert (
        "Only registry administrators may export free text: it leaves HIPAA Safe Harbor "
        "(an identifiable export)" in response.content.decode()
    )
    with pytest.raises(ExportRefused, match="may export free text"):
        services.request_research_export(world.dan, services.ResearchOptions(free_text=True))
    refusals = AuditEvent.objects.filter(action="export.refused", actor=world.dan)
    assert refusals.count() == 2
    assert all(e.changes["options"]["free_text"] is True for e in refusals)
    assert Export.objects.count() == 0


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_safe_harbor_export_never_holds_free_text(exportable, world, planted, fmt):
    client = client_for(world.dan)
    export = ask(client, format=fmt)
    archive = zip_of(client, export)
    assert MISSED not in every_value(archive)
    assert "Jane Roe" not in every_value(archive)
    manifest = json.loads(archive.read("manifest.json"))
    left_out = {item["element"]: item["why"] for item in manifest["left_out"]}
    assert left_out["ua_comment"].startswith("Free text: never in a de-identified export")
    assert "anatomic_parts.comment" in left_out and "case_uid" in left_out
    dictionary = pd.read_csv(
        io.BytesIO(archive.read("dictionary.csv")), dtype=str, keep_default_na=False
    )
    assert dictionary.iloc[0][["table", "column", "label"]].tolist() == [
        "export",
        "title",
        DEIDENTIFIED,
    ]
    gone = dictionary[dictionary["table"] == "left_out"]
    assert {"ua_comment", "anatomic_parts.comment"} <= set(gone["column"])
    assert manifest["files"][[f["name"] for f in manifest["files"]].index("dictionary.csv")][
        "rows"
    ] == len(dictionary)


def test_the_command_line_titles_what_it_writes(exportable, planted, tmp_path):
    plain, free = tmp_path / "plain", tmp_path / "free"
    result = CliRunner().invoke(main, ["export", "--out", str(plain)])
    assert result.exit_code == 0 and "(14 cases; de-identified)" in result.output
    result = CliRunner().invoke(main, ["export", "--out", str(free), "--free-text"])
    assert result.exit_code == 0, result.output
    assert "(14 cases; identifiable export (limited data set))" in result.output
    for folder, title in ((plain, DEIDENTIFIED), (free, IDENTIFIABLE)):
        assert json.loads((folder / "manifest.json").read_text())["title"] == title
        dictionary = pd.read_csv(folder / "dictionary.csv", dtype=str, keep_default_na=False)
        assert dictionary.iloc[0]["label"] == title
    text = "\n".join(p.read_text() for p in plain.iterdir())
    assert MISSED not in text
    # The administrator's free text is there, screened as before.
    assert "ua_comment" in pd.read_csv(free / "cases.csv", nrows=0).columns
    assert Export.objects.get(options__free_text=True).identifiable is True


def test_an_identifiable_export_records_which_cases_it_held(exportable, world, tmp_path):
    export = services.request_research_export(
        world.ada, services.ResearchOptions(identifiers=True), enqueue=False
    )
    services.write_export(export, tmp_path / "one")
    held = set(ExportCase.objects.filter(export=export).values_list("case_id", flat=True))
    assert held == {c.pk for c in submitted(exportable)}
    services.write_export(export, tmp_path / "two")  # a job that runs again
    assert ExportCase.objects.filter(export=export).count() == len(held)
    safe = services.request_research_export(world.dan, services.ResearchOptions(), enqueue=False)
    services.write_export(safe, tmp_path / "three")
    assert not ExportCase.objects.filter(export=safe).exists()
