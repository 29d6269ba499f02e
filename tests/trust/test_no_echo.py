"""A refused value never comes back, at any door, and nothing refused is stored.

Planted identifiers (names, dates, SSNs, phone numbers, addresses, record
numbers, e-mails) are sent through every door that takes case data: REST
POST/PUT/PATCH, FHIR QuestionnaireResponse, the REDCap API (JSON and CSV),
CSV and XLSX imports (preview, the job in the API, problems.csv and the
command line's --problems), the web case form, the physician's
questionnaire page and withdrawal. Each string goes into a text element
(a part's comment), a code element (primary diagnosis), a number element
(age) and a choice element (sex) at once, and, where a door takes them,
into the case ID and patient key.

For every answer this asserts:

- the change is refused (a 4xx, or a problem listed);
- no answer, page or file holds the planted string (case-insensitively,
  and as its digits alone when it has seven or more);
- nothing was stored: the cases and their versions are unchanged, and the
  import's stored problems do not hold it either.

A code, number or choice element refuses any text, so refusal and no-echo
are proved for every string. A text element refuses a string only when the
identifier screen (``registry3d.lib.identifiers.find_identifier``) flags it:
for those strings the answer must also name the text element's refusal
("looks like a phone number"). Strings the screen misses today are still
checked for no-echo, and this test tightens by itself as the screen finds
more. The strings come from ``tests/corpora/identifiers/corpus.csv`` (one
per kind, rows that are not ``benign``) when it exists, else from the list
below.
"""

import csv
import html
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from django.core import mail
from django.test import Client

from registry3d.audit.models import AuditEvent
from registry3d.cases import services as cases
from registry3d.cases.models import Case, CaseVersion
from registry3d.cli import main
from registry3d.dictionary import registry
from registry3d.intake.models import ImportProblem
from registry3d.lib.identifiers import find_identifier
from registry3d.lib.pseudonym import patient_key
from registry3d.lib.ratelimit import limiter
from registry3d.questionnaires import services as questionnaires
from registry3d.sites import services as sites
from tests.cases.conftest import a_case, printers_for
from tests.conftest import client_for, csrf_post
from tests.intake.import_files import write_csv, write_xlsx
from tests.questionnaires.conftest import GOOD_ANSWERS, link_in

CORPUS = Path(__file__).resolve().parents[1] / "corpora" / "identifiers" / "corpus.csv"
BUILT_IN = [
    ("name", "John Smith"),
    ("name", "Smith, John"),
    ("date", "born 3rd March 1950"),
    ("date", "DOB 1950/03/03"),
    ("ssn", "SSN 123 45 6789"),
    ("ssn", "123-45-6789"),
    ("phone", "(617)555-0100"),
    ("address", "12 Elm Street, Springfield MA 01103"),
    ("record_number", "chart 123456"),
    ("record_number", "John Smith MRN 12345678"),
    ("email", "john.smith@example.org"),
    ("date", "03/03/1950"),
]
# Case IDs shaped like identifiers, and a patient key that is a name and a date.
PLANTED_CASE_IDS = [
    "123-45-6789",
    "1950-03-03",
    "6175550100",
    "jsmith@example.org",
    "John Smith",
    # Well formed, so refused by the screen alone (#15).
    "Smith_John_MRN1234567",
    "Garcia_Maria_MRN7654321",
    "Smith-John",
    "MRN00123456",
]
PLANTED_KEY = "JohnSmith19500303"
BASE = "BASE-1"  # the case PUT, PATCH, the form and withdrawal try to change


def planted() -> list[str]:
    """One string per identifier kind of the corpus, or the built-in list."""
    if CORPUS.exists():
        with CORPUS.open(encoding="utf-8", newline="") as handle:
            rows = [r for r in csv.DictReader(handle) if r["kind"] != "benign" and r["text"]]
        first: dict[str, str] = {}
        for row in rows:
            first.setdefault(row["kind"], row["text"])
        if first:
            return list(first.values())
    return [text for _kind, text in BUILT_IN]


PLANTED = planted()
LABEL = "Distinguishing comment"  # anatomic_parts[].comment, the text element


# --- Checks --------------------------------------------------------------------------------------


def _forms(text: str) -> list[str]:
    """The planted string, and its digits alone when they are many enough to identify."""
    forms = [text.lower()]
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 7:
        forms.append(digits)
    return forms


def _readable(body) -> str:
    """Every way an answer can spell a string: as sent, unescaped, and JSON decoded."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    out = [text, html.unescape(text)]
    try:
        out.append(json.dumps(json.loads(text), ensure_ascii=False))
    except ValueError:
        pass
    return "\n".join(out).lower()


def _digits_view(text: str) -> str:
    """The answer with separators inside numbers dropped, to find ``123 45 6789`` too."""
    return re.sub(r"(?<=\d)[\s().\-/]+(?=\d)", "", text)


def assert_no_echo(body, strings, where: str) -> None:
    text = _readable(body)
    digits = _digits_view(text)
    for string in strings:
        for form in _forms(string):
            haystack = digits if form.isdigit() else text
            assert form not in haystack, f"{where} echoes {string!r}"


def without_inputs(page: str) -> str:
    """A form page without the values kept in its fields (the user may fix them there)."""
    page = re.sub(r'value="[^"]*"', 'value=""', page)
    return re.sub(r"(<textarea[^>]*>)[^<]*(</textarea>)", r"\1\2", page, flags=re.DOTALL)


def stored() -> tuple:
    """What a refused change must leave as it was."""
    return (
        sorted(Case.objects.values_list("site__code", "case_uid", "version", "status")),
        CaseVersion.objects.count(),
    )


def assert_not_stored(before: tuple, strings, where: str) -> None:
    assert stored() == before, f"{where} stored a refused change"
    kept = json.dumps(
        [
            list(Case.objects.values("case_uid", "patient_key", "data", "withdrawn_reason")),
            list(CaseVersion.objects.values("data", "changes", "patient_key")),
            list(ImportProblem.objects.values("case_uid", "element", "message")),
            list(AuditEvent.objects.values()),
        ],
        default=str,
        ensure_ascii=False,
    )
    assert_no_echo(kept, strings, f"{where} (stored)")


def assert_text_refusal_named(body, strings, where: str) -> None:
    """Each string the screen flags is refused in the text element, naming its kind."""
    text = _readable(body)
    for string in strings:
        kind = find_identifier(string)
        if kind:
            assert LABEL.lower() in text and f"looks like {kind}".lower() in text, (
                f"{where}: the comment holding {string!r} was not refused as {kind}"
            )


# --- The world -----------------------------------------------------------------------------------


def case_data(labels) -> dict:
    data = a_case(33, labels)
    data.update(primary_diagnosis_icd10="Q21.1", age_years=67, sex="female")
    data.pop("age_under_1_months", None)
    data["anatomic_parts"][0]["comment"] = "pulmonary trunk"
    return data


def plant(data: dict, text: str, text_only: bool = False) -> dict:
    """The case data with ``text`` in a text, a code, a number and a choice element.

    With ``text_only``, in the text element alone: a door reports the
    other elements' type problems before it screens text, so a text's
    refusal is seen alone.
    """
    out = json.loads(json.dumps(data))
    if not text_only:
        out.update(primary_diagnosis_icd10=text, age_years=text, sex=text)
    out["anatomic_parts"][0]["comment"] = text
    return out


FLAGGED = [t for t in PLANTED if find_identifier(t)]


@pytest.fixture
def door(world):
    limiter.clear()
    world.labels = printers_for(world.site_a)
    world.data = case_data(world.labels)
    world.base = cases.save_case(
        world.site_a,
        case_uid=BASE,
        data=world.data,
        status="submitted",
        patient_key=patient_key("SITEA", "MRN-0001"),
        actor=world.alice,
    ).case
    _, world.token = sites.create_token(world.site_a, world.alice, name="W", scope="write")
    _, world.redcap = sites.create_token(
        world.site_a, world.alice, name="REDCap", scope="write", kind="redcap"
    )
    world.api = Client(HTTP_AUTHORIZATION=f"Bearer {world.token}")
    return world


# --- REST ----------------------------------------------------------------------------------------


def rest(world, method: str, path: str, body: dict):
    limiter.clear()
    return world.api.generic(
        method, path, json.dumps(body).encode(), content_type="application/json"
    )


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_rest_writes_refuse_and_never_echo(door, method):
    before = stored()
    for text in PLANTED:
        data = plant(door.data, text)
        if method == "POST":
            reply = rest(door, "POST", "/api/v1/cases", {"case_uid": "NE-1", "data": data})
        elif method == "PUT":
            body = {"status": "draft", "data": data}
            reply = rest(door, "PUT", f"/api/v1/cases/{BASE}", body)
        else:
            reply = rest(door, "PATCH", f"/api/v1/cases/{BASE}", {"data": data})
        assert reply.status_code == 422, (text, reply.content)
        fields = {(e["field"], e["code"]) for e in reply.json()["errors"]}
        assert {"data.primary_diagnosis_icd10", "data.age_years", "data.sex"} <= {
            f for f, _c in fields
        }
        if find_identifier(text):
            assert ("data.anatomic_parts[1].comment", "identifier_suspected") in fields
        assert_no_echo(reply.content, [text], f"REST {method}")
    assert_not_stored(before, PLANTED, f"REST {method}")


def test_rest_refuses_identifier_case_ids_and_keys_without_echo(door):
    before = stored()
    for uid in PLANTED_CASE_IDS:
        reply = rest(door, "POST", "/api/v1/cases", {"case_uid": uid, "data": {}})
        assert reply.status_code == 422, (uid, reply.content)
        assert [e["field"] for e in reply.json()["errors"]] == ["case_uid"]
        assert_no_echo(reply.content, [uid], "REST case_uid")
        # A case ID in the path is refused the same way.
        reply = rest(door, "PUT", f"/api/v1/cases/{uid}", {"data": {}})
        assert reply.status_code in (404, 422), (uid, reply.content)
        assert_no_echo(reply.content, [uid], "REST PUT case_uid")
    reply = rest(
        door, "POST", "/api/v1/cases", {"case_uid": "NE-2", "patient_key": PLANTED_KEY, "data": {}}
    )
    assert reply.status_code == 422
    assert reply.json()["errors"][0]["message"] == (
        "Patient key: expected the pseudonymous key, 64 characters 0-9 and a-f made with "
        "'registry3d pseudonymize', never a name, date or record number"
    )
    assert_no_echo(reply.content, [PLANTED_KEY, "19500303"], "REST patient_key")
    assert_not_stored(before, PLANTED_CASE_IDS + [PLANTED_KEY], "REST case_uid")


def test_unknown_element_names_holding_identifiers_are_not_echoed(door):
    before = stored()
    for text in PLANTED:
        data = {text: 1, "anatomic_parts": [{"region": "heart", text: "x"}]}
        reply = rest(door, "POST", "/api/v1/cases", {"case_uid": "NE-3", "data": data})
        assert reply.status_code == 422, (text, reply.content)
        assert {e["code"] for e in reply.json()["errors"]} == {"unknown_element"}
        assert_no_echo(reply.content, [text], "REST unknown element")
    reply = rest(door, "POST", "/api/v1/cases", {"case_uid": "NE-3", "data": {"favourite": 1}})
    assert reply.json()["errors"][0]["field"] == "data.favourite"
    assert_not_stored(before, PLANTED, "REST unknown element")


def test_rest_withdrawal_refuses_a_reason_with_an_identifier_without_echo(door):
    before = stored()
    for text in FLAGGED:
        reply = rest(door, "POST", f"/api/v1/cases/{BASE}/withdraw", {"reason": text})
        assert reply.status_code == 422, (text, reply.content)
        assert_no_echo(reply.content, [text], "REST withdraw")
    assert_not_stored(before, FLAGGED, "REST withdraw")


# --- FHIR ----------------------------------------------------------------------------------------


def _answers(items: list, text: str, text_only: bool) -> None:
    for item in items:
        link = item.get("linkId")
        if link == "anatomic_parts.comment" or (
            not text_only and link in ("age_years", "primary_diagnosis_icd10")
        ):
            item["answer"] = [{"valueString": text}]
        elif link == "sex" and not text_only:
            item["answer"] = [{"valueCoding": {"code": text}}]
        _answers(item.get("item") or [], text, text_only)


def test_fhir_questionnaire_responses_refuse_and_never_echo(door):
    read = Client(HTTP_AUTHORIZATION=f"Bearer {door.token}")
    bundle = read.get(f"/api/v1/cases/{BASE}/fhir").json()
    response = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "QuestionnaireResponse"
        and e["resource"]["questionnaire"].split("|")[0].endswith("registry3d-case")
    )
    response.pop("id", None)
    response["subject"].pop("reference", None)
    before = stored()
    for text, text_only in [(t, False) for t in PLANTED] + [(t, True) for t in FLAGGED]:
        limiter.clear()
        resource = json.loads(json.dumps(response))
        _answers(resource["item"], text, text_only)
        for uid in ("NE-F", BASE):
            resource["identifier"]["value"] = uid
            reply = door.api.post(
                "/fhir/QuestionnaireResponse",
                json.dumps(resource),
                content_type="application/fhir+json",
            )
            assert reply.status_code == 422, (text, reply.content)
            assert reply.json()["resourceType"] == "OperationOutcome"
            assert_no_echo(reply.content, [text], "FHIR")
            if text_only:
                assert_text_refusal_named(reply.content, [text], "FHIR")
    for uid in PLANTED_CASE_IDS:
        resource = json.loads(json.dumps(response))
        resource["identifier"]["value"] = uid
        reply = door.api.post(
            "/fhir/QuestionnaireResponse",
            json.dumps(resource),
            content_type="application/fhir+json",
        )
        assert reply.status_code == 422, (uid, reply.content)
        assert_no_echo(reply.content, [uid], "FHIR case ID")
    assert_not_stored(before, PLANTED + PLANTED_CASE_IDS, "FHIR")


# --- REDCap --------------------------------------------------------------------------------------


def redcap_rows(text: str, record: str, text_only: bool = False) -> list[dict]:
    main = {"age_years": text, "sex": text, "primary_diagnosis_icd10": text}
    return [
        {"record_id": record, **({} if text_only else main)},
        {
            "record_id": record,
            "redcap_repeat_instrument": "anatomic_parts",
            "redcap_repeat_instance": "1",
            "comment": text,
        },
    ]


def redcap_import(token: str, fmt: str, rows: list[dict]):
    """Import ``rows`` through the REDCap API as JSON or CSV, as PyCap sends them."""
    if fmt == "json":
        payload = json.dumps(rows)
    else:
        out = io.StringIO()
        columns = list(dict.fromkeys(c for row in rows for c in row))
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        payload = out.getvalue()
    limiter.clear()
    return Client(enforce_csrf_checks=True).post(
        "/redcap/api/",
        {
            "token": token,
            "content": "record",
            "format": fmt,
            "type": "flat",
            "data": payload,
            "returnFormat": "json",
        },
    )


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_redcap_record_imports_refuse_and_never_echo(door, fmt):
    rows = []
    for number, text in enumerate(PLANTED, start=1):
        rows += redcap_rows(text, f"NE-{number}")
    rows += redcap_rows(PLANTED[0], BASE)
    for number, text in enumerate(FLAGGED, start=1):
        rows += redcap_rows(text, f"NT-{number}", text_only=True)
    for uid in PLANTED_CASE_IDS:
        rows.append({"record_id": uid, "sex": "female"})
    before = stored()
    reply = redcap_import(door.redcap, fmt, rows)
    assert reply.status_code == 400, reply.content
    error = json.loads(reply.content)["error"]
    lines = list(csv.reader(io.StringIO(error)))
    assert lines and all(len(line) == 4 and line[2] == "" for line in lines)
    assert {line[1] for line in lines} >= {"age_years", "sex", "primary_diagnosis_icd10"}
    assert_no_echo(reply.content, PLANTED + PLANTED_CASE_IDS, f"REDCap {fmt}")
    assert_text_refusal_named(reply.content, PLANTED, f"REDCap {fmt}")
    assert_not_stored(before, PLANTED + PLANTED_CASE_IDS, f"REDCap {fmt}")


# --- CSV and XLSX imports ------------------------------------------------------------------------


def import_rows() -> list[dict]:
    rows = []
    for number, text in enumerate(PLANTED, start=1):
        rows.append(
            {
                "case_uid": f"NE-{number}",
                "status": "draft",
                "primary_diagnosis_icd10": text,
                "age_years": text,
                "sex": text,
                "anatomic_parts_1_region": "heart",
                "anatomic_parts_1_comment": text,
            }
        )
    for number, text in enumerate(FLAGGED, start=1):
        rows.append(
            {
                "case_uid": f"NT-{number}",
                "status": "draft",
                "anatomic_parts_1_region": "heart",
                "anatomic_parts_1_comment": text,
            }
        )
    for uid in PLANTED_CASE_IDS:
        rows.append({"case_uid": uid, "status": "draft", "sex": "female"})
    return rows


def test_a_csv_upload_refuses_and_its_preview_and_problems_never_echo(door, tmp_path):
    path = write_csv(tmp_path / "lab.csv", import_rows())
    before = stored()
    client = client_for(door.alice)
    with path.open("rb") as handle:
        response = csrf_post(
            client,
            "/sites/SITEA/imports/",
            {"file": handle, "mode": "all-or-nothing", "default_status": "draft"},
        )
    assert response.status_code == 302, response.content
    page = client.get(response["Location"])
    assert page.status_code == 200
    problems = client.get(response["Location"].rstrip("/") + "/problems.csv")
    text = b"".join(problems.streaming_content)
    # The page shows the first problems; the file holds every one.
    assert "looks like a date" in text.decode()
    for body, where in ((page.content, "import preview"), (text, "problems.csv")):
        assert_no_echo(body, PLANTED + PLANTED_CASE_IDS, where)
    assert_text_refusal_named(text, PLANTED, "problems.csv")
    assert_not_stored(before, PLANTED + PLANTED_CASE_IDS, "CSV import")


def test_an_xlsx_import_through_the_api_refuses_and_its_job_never_echoes(door, tmp_path):
    path = write_xlsx(tmp_path / "lab.xlsx", import_rows())
    before = stored()
    limiter.clear()
    with path.open("rb") as handle:
        reply = door.api.post("/api/v1/imports", {"file": handle, "mode": "all-or-nothing"})
    assert reply.status_code == 202, reply.content
    job = reply.json()
    assert job["invalid"] == len(PLANTED) + len(FLAGGED) + len(PLANTED_CASE_IDS)
    assert job["written"] == 0
    followed = door.api.get(f"/api/v1/imports/{job['id']}")
    for body in (reply.content, followed.content):
        assert_no_echo(body, PLANTED + PLANTED_CASE_IDS, "import job")
    assert_not_stored(before, PLANTED + PLANTED_CASE_IDS, "XLSX import")


def test_the_import_command_and_its_problems_file_never_echo(door, tmp_path):
    path = write_csv(tmp_path / "lab.csv", import_rows())
    problems = tmp_path / "problems.csv"
    before = stored()
    result = CliRunner().invoke(
        main, ["import", str(path), "--site", "SITEA", "--problems", str(problems)]
    )
    assert result.exit_code == 1, result.output
    for body, where in (
        (result.stdout + result.stderr, "import command"),
        (problems.read_text(encoding="utf-8"), "--problems file"),
    ):
        assert_no_echo(body, PLANTED + PLANTED_CASE_IDS, where)
    assert_text_refusal_named(problems.read_text(encoding="utf-8"), PLANTED, "--problems")
    assert_not_stored(before, PLANTED + PLANTED_CASE_IDS, "import command")


# --- Web pages -----------------------------------------------------------------------------------


def test_the_case_form_refuses_keeps_the_input_and_never_echoes_it_beside(door):
    from registry3d.dictionary import flat

    client = client_for(door.alice)
    before = stored()
    for text, text_only in [(t, False) for t in PLANTED] + [(t, True) for t in FLAGGED]:
        row = flat.write_row(registry.current().dictionary, {}, door.data)
        row["anatomic_parts_1_comment"] = text
        if not text_only:
            row.update(primary_diagnosis_icd10=text, age_years=text, sex=text)
        for path, extra in (
            ("/sites/SITEA/cases/new/", {"case_uid": "NE-W"}),
            (f"/sites/SITEA/cases/{BASE}/edit/", {"version": "1"}),
        ):
            response = csrf_post(client, path, {**row, **extra, "action": "submit"})
            assert response.status_code == 400, (text, path)
            page = response.content.decode()
            assert_no_echo(without_inputs(page), [text], "case form")
            if text_only:
                assert_text_refusal_named(page, [text], "case form")
    for uid in PLANTED_CASE_IDS:
        response = csrf_post(
            client, "/sites/SITEA/cases/new/", {"case_uid": uid, "action": "draft"}
        )
        assert response.status_code == 400
        assert_no_echo(without_inputs(response.content.decode()), [uid], "case form case ID")
    assert_not_stored(before, PLANTED + PLANTED_CASE_IDS, "case form")


def test_the_withdrawal_form_refuses_a_reason_with_an_identifier_without_echo(door):
    client = client_for(door.alice)
    before = stored()
    for text in FLAGGED:
        response = csrf_post(
            client, f"/sites/SITEA/cases/{BASE}/withdraw/", {"reason": text, "version": "1"}
        )
        assert response.status_code == 302
        page = client.get(response["Location"]).content.decode()
        assert "Reason: this looks like" in html.unescape(page)
        assert_no_echo(without_inputs(page), [text], "withdrawal")
    assert_not_stored(before, FLAGGED, "withdrawal")


def open_questionnaire(case, capture) -> tuple[Client, str]:
    """Send the case's questionnaire; return the physician's browser on its link, and the link."""
    mail.outbox.clear()
    with capture(execute=True):
        questionnaires.send(
            case, email="dr.lee@hospital.example.org", specialty="cardiothoracic_surgery"
        )
    path = link_in(mail.outbox[-1])
    physician = Client(enforce_csrf_checks=True)
    physician.get(path)
    return physician, path


def test_the_questionnaire_page_refuses_keeps_the_input_and_never_echoes_it_beside(
    door, django_capture_on_commit_callbacks
):
    physician, path = open_questionnaire(door.base, django_capture_on_commit_callbacks)
    before = stored()
    for text in PLANTED:
        limiter.clear()
        answers = {
            **GOOD_ANSWERS,
            "ua_comment": text,
            "est_procedure_time_saved_min": text,
            "ua_important": text,
        }
        page = physician.post(path, answers, HTTP_X_CSRFTOKEN=physician.cookies["csrftoken"].value)
        assert page.status_code == 422, text
        content = page.content.decode()
        assert_no_echo(without_inputs(content), [text], "questionnaire page")
        kind = find_identifier(text)
        if kind:
            assert f"looks like {kind}" in html.unescape(content)
    assert_not_stored(before, PLANTED, "questionnaire page")
