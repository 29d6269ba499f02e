"""The public dictionary page, its downloads, and the login-only case form preview."""

import html
import random
import re

import pytest
from django.apps import apps
from django.test import Client

from registry3d.audit.models import AuditEvent
from registry3d.dictionary import flat, registry
from registry3d.dictionary.examples import synthetic_case
from tests.conftest import client_for, csrf_post

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def dictionary():
    return registry.current().dictionary


def text(response) -> str:
    return response.content.decode()


def shown(message: str) -> str:
    """A message as the page shows it, HTML-escaped by the template."""
    return html.escape(message)


def row_counts() -> dict[str, int]:
    """Rows of every table the registry has, by model."""
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


# --- The public dictionary page --------------------------------------------------------------


def test_the_dictionary_page_is_public_and_shows_the_version(db, dictionary):
    response = Client().get("/dictionary/")
    assert response.status_code == 200
    page = text(response)
    assert f"<title>Data dictionary {dictionary.version} · registry3d</title>" in page
    assert f'<span class="badge">version {dictionary.version}</span>' in page
    assert f"{len(dictionary.elements)} top-level elements." in page


def test_the_dictionary_page_lists_every_element_with_its_label(db, dictionary):
    page = text(Client().get("/dictionary/"))
    missing = [
        path
        for path, element in dictionary.all_elements.items()
        if f'id="el-{path}"' not in page or f"<strong>{shown(element.label)}</strong>" not in page
    ]
    assert missing == []


def test_the_dictionary_page_lists_every_value_set(db, dictionary):
    page = text(Client().get("/dictionary/"))
    assert [name for name in dictionary.value_sets if f'id="vs-{name}"' not in page] == []


def test_searching_for_laterality_finds_the_laterality_element_only(db):
    response = Client().get("/dictionary/", {"q": "laterality"})
    assert response.status_code == 200
    page = text(response)
    assert 'id="el-anatomic_parts.laterality"' in page
    assert "<strong>Laterality</strong>" in page
    assert 'id="vs-laterality"' in page
    assert "Organ system" not in page
    assert 'id="el-organ_system"' not in page
    assert 'id="el-age_years"' not in page


def test_searching_finds_an_element_by_a_code_of_its_value_set(db):
    # "medicare" is only a code of the payer_class value set, in no label or help.
    response = Client().get("/dictionary/", {"q": "Medicare"}, HTTP_HX_REQUEST="true")
    page = text(response)
    assert '<p class="muted" data-count="1">' in page
    assert re.findall(r'<article class="element card" id="el-([^"]+)"', page) == ["payer_class"]


def test_searching_for_a_cpt_code_finds_the_cpt_lines(db):
    page = text(Client().get("/dictionary/", {"q": "0560T"}))
    assert 'id="el-cpt_lines"' in page


def test_a_search_with_one_match_says_so_in_good_english(db):
    page = text(Client().get("/dictionary/", {"q": "laterality"}))
    assert "1 element matches “laterality”." in page


def test_every_value_set_link_of_a_search_leads_to_its_value_set(db):
    page = text(Client().get("/dictionary/", {"q": "laterality"}))
    linked = set(re.findall(r'href="#vs-([a-z0-9_]+)"', page))
    assert linked
    assert {name for name in linked if f'id="vs-{name}"' not in page} == set()


def test_an_htmx_search_answers_only_the_results(db):
    response = Client().get("/dictionary/", {"q": "laterality"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    page = text(response)
    assert "<html" not in page
    assert "<form" not in page
    assert page.lstrip().startswith('<p class="muted" data-count="1">')
    assert 'id="el-anatomic_parts.laterality"' in page


def test_a_search_without_a_match_says_so(db):
    response = Client().get("/dictionary/", {"q": "xyzzy"}, HTTP_HX_REQUEST="true")
    page = text(response)
    assert "No element matches “xyzzy”." in page
    assert "0 elements match “xyzzy”." in page
    assert 'class="element card"' not in page
    assert "Value sets" not in page


def test_a_search_is_shown_escaped(db):
    page = text(Client().get("/dictionary/", {"q": "<script>x"}))
    assert "<script>x" not in page
    assert "No element matches “&lt;script&gt;x”." in page


def test_the_link_to_the_form_preview_is_shown_only_to_people_logged_in(world):
    assert 'href="/dictionary/form/"' not in text(Client().get("/dictionary/"))
    assert 'href="/dictionary/form/"' in text(client_for(world.bob).get("/dictionary/"))


def test_the_dictionary_page_refuses_a_post(world):
    response = csrf_post(client_for(world.alice), "/dictionary/", {"q": "x"})
    assert response.status_code == 405


# --- Downloads -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, content_type, filename, starts",
    [
        (
            "dictionary.csv",
            "text/csv; charset=utf-8",
            "registry3d-dictionary-1.1.0.csv",
            b"section,element,label,",
        ),
        ("dictionary.xlsx", XLSX, "registry3d-dictionary-1.1.0.xlsx", b"PK"),
        (
            "redcap-data-dictionary.csv",
            "text/csv; charset=utf-8",
            "registry3d-redcap-data-dictionary-1.1.0.csv",
            b"Variable / Field Name,Form Name,",
        ),
        (
            "case.schema.json",
            "application/schema+json",
            "registry3d-case.schema-1.1.0.json",
            b'{\n  "$schema"',
        ),
        (
            "import-template.csv",
            "text/csv; charset=utf-8",
            "registry3d-import-template-1.1.0.csv",
            b"case_uid,patient_key,status,",
        ),
        ("import-template.xlsx", XLSX, "registry3d-import-template-1.1.0.xlsx", b"PK"),
    ],
)
def test_each_download_is_public_with_its_type_and_a_versioned_filename(
    db, name, content_type, filename, starts
):
    response = Client().get(f"/dictionary/download/{name}")
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    body = response.content
    if name in ("dictionary.csv", "import-template.csv"):
        # Spreadsheet files carry a byte-order mark so Excel reads UTF-8.
        assert body.startswith("\ufeff".encode())
        body = body[3:]
    assert body.startswith(starts)


def test_every_download_is_linked_from_the_dictionary_page(db):
    page = text(Client().get("/dictionary/"))
    for name in (
        "dictionary.csv",
        "dictionary.xlsx",
        "redcap-data-dictionary.csv",
        "case.schema.json",
        "import-template.csv",
        "import-template.xlsx",
    ):
        assert f'href="/dictionary/download/{name}"' in page


@pytest.mark.parametrize("name", ["nothing.csv", "case.yaml", "settings.py", "dictionary.CSV"])
def test_an_unknown_download_is_404(db, name):
    assert Client().get(f"/dictionary/download/{name}").status_code == 404


# --- The form preview ------------------------------------------------------------------------


def test_the_form_preview_sends_anonymous_people_to_log_in(db):
    response = Client().get("/dictionary/form/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/dictionary/form/"


@pytest.mark.parametrize("who", ["alice", "bob", "carol", "dan", "ada"])
def test_anyone_logged_in_may_open_the_form_preview(world, who):
    response = client_for(getattr(world, who)).get("/dictionary/form/")
    assert response.status_code == 200
    page = text(response)
    assert '<h1>Case form <span class="badge">dictionary 1.1.0</span></h1>' in page
    assert '<button type="submit" name="check" value="complete">Check as submitted</button>' in page


def test_an_empty_form_checked_as_submitted_lists_what_is_required(world):
    response = csrf_post(client_for(world.alice), "/dictionary/form/", {"check": "complete"})
    assert response.status_code == 400
    page = text(response)
    assert "problems to fix before the case can be submitted:" in page
    assert (
        '<li><a href="#f-object_type">object_type</a>: Type of 3D printed object is required</li>'
        in page
    )
    assert '<p class="errorlist" role="alert">Type of 3D printed object is required</p>' in page
    assert "Sex is required" in page
    assert "Prints is required" in page
    # Answered by the physician later, so not needed to submit.
    assert "Your role is required" not in page


def test_an_unanswered_point_of_care_question_is_reported_once_as_required(world):
    response = csrf_post(client_for(world.alice), "/dictionary/form/", {"check": "complete"})
    page = text(response)
    assert "Made at the point of care is required" in page
    problems = page[
        page.index("problems to fix") : page.index("</ul>", page.index("problems to fix"))
    ]
    assert "outside the registry" not in problems


def test_an_empty_form_checked_as_a_draft_has_no_errors(world):
    response = csrf_post(client_for(world.alice), "/dictionary/form/", {"check": "draft"})
    assert response.status_code == 200
    assert "<strong>No errors: this case could be saved as a draft.</strong>" in text(response)


def test_a_guide_without_a_guide_type_is_told_when_it_is_required(world):
    response = csrf_post(
        client_for(world.alice),
        "/dictionary/form/",
        {"object_type": "anatomic_guide", "check": "complete"},
    )
    assert response.status_code == 400
    assert shown(
        "Type of anatomic guide is required when Type of 3D printed object is Anatomic guide"
    ) in text(response)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_synthetic_valid_case_posted_as_a_form_could_be_submitted(world, dictionary, seed):
    row = flat.write_row(dictionary, {}, synthetic_case(dictionary, random.Random(seed)))
    response = csrf_post(client_for(world.carol), "/dictionary/form/", {**row, "check": "complete"})
    page = text(response)
    assert response.status_code == 200, page[page.find("problems to fix") :][:2000]
    assert "<strong>No errors: this case could be submitted.</strong>" in page
    assert 'role="alert"' not in page


def test_a_bad_value_is_shown_at_its_field_with_the_value_kept(world):
    response = csrf_post(
        client_for(world.alice),
        "/dictionary/form/",
        {"age_years": "forty", "prints_1_copies": "1", "prints_2_copies": "0", "check": "draft"},
    )
    assert response.status_code == 400
    page = text(response)
    message = "Patient age (years): the value is not valid; expected a whole number"
    assert f'<a href="#f-age_years">age_years</a>: {shown(message)}</li>' in page
    assert 'name="age_years" value="forty"' in page
    message = "Number of copies: the value is out of range; expected a whole number from 1 to 50"
    assert f'<a href="#f-prints_2_copies">prints[2].copies</a>: {message}</li>' in page
    assert f'<p class="errorlist" role="alert">{message}</p>' in page
    assert 'name="prints_2_copies" value="0"' in page


def test_a_gap_in_numbered_items_is_refused_as_such(world):
    response = csrf_post(
        client_for(world.alice), "/dictionary/form/", {"prints_2_copies": "0", "check": "draft"}
    )
    page = text(response)
    assert response.status_code == 400
    assert (
        '<a href="#f-prints">prints[1]</a>: Prints: item 1 is empty but item 2 is filled; '
        "number the items 1, 2, 3… without gaps</li>"
    ) in page


def test_the_example_fills_the_form_with_a_synthetic_case(world, dictionary):
    response = client_for(world.alice).get("/dictionary/form/", {"example": "1"})
    assert response.status_code == 200
    page = text(response)
    case = synthetic_case(dictionary, random.Random("1"))
    assert f'name="age_years" value="{case["age_years"]}"' in page
    assert f'<option value="{case["object_type"]}" selected>' in page
    assert f'name="case_year_month" value="{case["case_year_month"]}"' in page
    printer = case["prints"][0]["printer_label"]
    assert f'name="prints_1_printer_label" value="{printer}"' in page
    assert "No errors" not in page  # nothing is checked until the form is posted


def test_the_example_form_posted_back_as_is_could_be_submitted(world, dictionary):
    case = synthetic_case(dictionary, random.Random("1"))
    row = flat.write_row(dictionary, {}, case)
    response = csrf_post(client_for(world.alice), "/dictionary/form/", {**row, "check": "complete"})
    assert response.status_code == 200
    assert "No errors: this case could be submitted." in text(response)


def test_the_form_preview_stores_nothing(world, dictionary):
    client = client_for(world.alice)
    client.get("/accounts/")  # the CSRF cookie, before counting
    before = row_counts()
    audit_before = AuditEvent.objects.count()
    row = flat.write_row(dictionary, {}, synthetic_case(dictionary, random.Random(11)))
    assert csrf_post(client, "/dictionary/form/", {**row, "check": "complete"}).status_code == 200
    assert csrf_post(client, "/dictionary/form/", {"check": "complete"}).status_code == 400
    assert (
        csrf_post(
            client, "/dictionary/form/", {"ua_comment": "Patient John Smith", "check": "draft"}
        ).status_code
        == 400
    )
    assert AuditEvent.objects.count() == audit_before
    assert row_counts() == before


def test_a_comment_naming_the_patient_is_refused(world):
    response = csrf_post(
        client_for(world.alice),
        "/dictionary/form/",
        {"ua_comment": "Patient John Smith", "check": "draft"},
    )
    assert response.status_code == 400
    message = (
        "Comment: this looks like a person's name; the registry never stores patient "
        "identifiers, so remove it"
    )
    page = text(response)
    assert f'<p class="errorlist" role="alert">{shown(message)}</p>' in page
    assert f'<a href="#f-ua_comment">ua_comment</a>: {shown(message)}' in page


def test_a_part_comment_with_a_record_number_is_refused_at_its_item(world):
    response = csrf_post(
        client_for(world.alice),
        "/dictionary/form/",
        {"anatomic_parts_1_comment": "MRN 12345678", "check": "draft"},
    )
    assert response.status_code == 400
    message = (
        "Distinguishing comment: this looks like a medical record or account number; the "
        "registry never stores patient identifiers, so remove it"
    )
    assert (
        f'<a href="#f-anatomic_parts_1_comment">anatomic_parts[1].comment</a>: {shown(message)}'
        in text(response)
    )


def test_the_form_preview_needs_the_csrf_token(world):
    client = client_for(world.alice)
    assert client.post("/dictionary/form/", {"check": "complete"}).status_code == 403


def test_a_month_before_the_earliest_allowed_month_is_refused(world):
    response = csrf_post(
        client_for(world.alice),
        "/dictionary/form/",
        {"case_year_month": "2018-12", "check": "draft"},
    )
    assert response.status_code == 400
    assert '<a href="#f-case_year_month">case_year_month</a>' in text(response)
