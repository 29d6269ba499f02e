"""Property: no list, filter or search answers another site's rows.

Both sites get cases (drafts, submitted, withdrawn, over several years, one
case ID used at both), printers, an import job, a kept 3D model file, a
physician questionnaire and a site export. Everything of site B carries a
marker: its case IDs, a comment in its case data, its patient keys, its
printer's label, its files' names, its physician's address, its withdrawal
reason. Then hypothesis asks site A's doors generated questions, among them
site B's codes, IDs, cursors and markers as parameters, and no answer may
hold any of site B's markers (nor be a server error):

- the API: the case list with every filter, cursors (also cursors made from
  site B's rows) and paging to the end; one case, its FHIR Bundle and its
  questionnaire by ID; printers; import jobs; kept model files;
- the case list page (filters, search, pages, htmx partial) and site B's
  pages asked for by site A's members;
- the audit pages;
- the REDCap API: record export with records, fields and forms, and the log;
- the physician's questionnaire list;
- site exports (CSV, XLSX, FHIR NDJSON, REDCap) and the export pages.

Search terms taken from site B's markers are strict parts of them, so a page
that echoes its search box does not count as a leak, while a leaked row would.
"""

import base64
import io
import json
import random
import zipfile

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from registry3d.cases.models import Case
from registry3d.cases.services import save_case, withdraw_case
from registry3d.dictionary import registry
from registry3d.dictionary.examples import synthetic_case
from registry3d.exports import services as exports
from registry3d.exports.models import Export
from registry3d.intake import services as intake
from registry3d.intake.models import Import, ModelFile
from registry3d.lib.pseudonym import patient_key
from registry3d.questionnaires import services as questionnaires
from registry3d.sites import services
from tests.conftest import bounded, client_for
from tests.intake import mesh_fixtures

EXAMPLES = 25
SHARED_UID = "SHARED-1"  # a case ID both sites use, each for its own case
B_COMMENT = "ZULUB7COMMENT"
B_REASON = "ZULUB7WITHDRAWN by mistake"
B_PRINTER = "BRAVOPRN-7"
B_IMPORT = "bravo-import-ZULUB7IMP.csv"
B_MESH = "bravo-heart-ZULUB7MESH.stl"
B_DOCTOR = "dr.zulub7@b.example.org"
A_DOCTOR = "dr.alfa@a.example.org"
from tests.cases.conftest import TECHNOLOGIES  # noqa: E402


@pytest.fixture(autouse=True)
def own_storage(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"


def _clear_limits():
    try:
        from registry3d.lib.ratelimit import limiter
    except ImportError:
        from registry3d.api.middleware import buckets as limiter
    limiter.clear()


def _cases(site, prefix, comment, world, printer_prefix, rng):
    labels = {}
    for n, technology in enumerate(TECHNOLOGIES):
        label = f"{printer_prefix}-{n}"
        services.add_printer(
            site, label=label, manufacturer="Maker", model="Model", technology=technology
        )
        labels[technology] = label
    dictionary = registry.current().dictionary
    made, keys = [], []
    uids = [f"{prefix}-CASE-{n:03d}" for n in range(5)] + [SHARED_UID]
    for n, uid in enumerate(uids):
        data = synthetic_case(
            dictionary,
            rng,
            printer_labels=labels,
            year_months=[f"{2024 + n % 3}-{1 + n:02d}"],
            with_questionnaire=n % 2 == 0,
        )
        for part in data.get("anatomic_parts") or []:
            part["comment"] = f"{comment} {n}"
        key = patient_key(site.code, f"MRN{site.code}{n:05d}")
        case = save_case(
            site,
            case_uid=uid,
            data=data,
            status="draft" if n == 1 else "submitted",
            patient_key=key,
            actor=world.alice if site == world.site_a else world.carol,
        ).case
        if n == 2:
            reason = B_REASON if site == world.site_b else "Entered twice"
            withdraw_case(case, reason, actor=world.alice if site == world.site_a else world.carol)
        made.append(case)
        keys.append(key)
    assert any(comment in json.dumps(c.data) for c in Case.objects.filter(site=site))
    return made, keys


def _keep_a_mesh(site, token, name, tmp_path):
    services.set_keep_model_files(site, True)
    path = mesh_fixtures.write_stl_binary(tmp_path / name, mesh_fixtures.cube(10 + len(name)))
    with path.open("rb") as handle:
        reply = Client(HTTP_AUTHORIZATION=f"Bearer {token}").post(
            "/api/v1/intake/mesh", {"file": handle}
        )
    assert reply.status_code == 200 and reply.json()["kept"], reply.content


def _import(site, user, name, tmp_path):
    source = tmp_path / name
    source.write_text("case_uid,status\nX-1,draft\n", encoding="utf-8")
    path, _ = intake.store_upload(site.code, name, [source.read_bytes()])
    return intake.create_import(site, path, actor=user, file_name=name)


def _cursor(case) -> str:
    raw = json.dumps([case.updated_at.isoformat(), case.pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Two:
    """The two populated sites, site A's clients and tokens, and site B's markers."""


@pytest.fixture
def two(world, tmp_path, mailoutbox):
    rng = random.Random(20261203)
    t = Two()
    t.world = world
    t.a_cases, t.a_keys = _cases(world.site_a, "ALFA", "ALFA7COMMENT", world, "ALFAPRN", rng)
    t.b_cases, t.b_keys = _cases(world.site_b, "BRAVO", B_COMMENT, world, "BRAVOPRN", rng)
    services.add_printer(
        world.site_b,
        label=B_PRINTER,
        manufacturer="Maker",
        model="Model",
        technology="material_jetting",
    )
    _, t.a_write = services.create_token(world.site_a, world.alice, name="A write", scope="write")
    _, t.a_read = services.create_token(world.site_a, world.bob, name="A read", scope="read")
    _, b_write = services.create_token(world.site_b, world.carol, name="B write", scope="write")
    _, t.a_redcap = services.create_token(
        world.site_a, world.alice, name="A REDCap", scope="read", kind="redcap"
    )
    _clear_limits()
    _keep_a_mesh(world.site_a, t.a_write, "alfa-heart.stl", tmp_path)
    _keep_a_mesh(world.site_b, b_write, B_MESH, tmp_path)
    t.a_import = _import(world.site_a, world.alice, "alfa-import.csv", tmp_path)
    t.b_import = _import(world.site_b, world.carol, B_IMPORT, tmp_path)
    questionnaires.send(
        t.a_cases[0], email=A_DOCTOR, specialty="cardiothoracic_surgery", actor=world.alice
    )
    questionnaires.send(
        t.b_cases[0], email=B_DOCTOR, specialty="cardiothoracic_surgery", actor=world.carol
    )
    t.a_export = exports.request_site_export(world.mona, world.site_a, "csv")
    t.b_export = exports.request_site_export(world.carol, world.site_b, "csv")
    t.b_model = ModelFile.objects.get(site=world.site_b)
    for case in t.a_cases + t.b_cases:
        case.refresh_from_db()
    t.b_uids = [c.case_uid for c in t.b_cases if c.case_uid != SHARED_UID]
    t.markers = [
        *t.b_uids,
        *t.b_keys,
        B_COMMENT,
        B_REASON,
        B_PRINTER,
        "BRAVOPRN-0",
        "ZULUB7IMP",
        "ZULUB7MESH",
        B_DOCTOR,
        world.carol.email,
        str(t.b_import.code),
        str(t.b_model.code),
        t.b_model.sha256,
        str(t.b_export.code),
        *[str(c.code) for c in t.b_cases],
    ]
    t.b_cursors = [_cursor(c) for c in t.b_cases]
    t.a_cursors = [_cursor(c) for c in t.a_cases]
    t.all_uids = [c.case_uid for c in t.a_cases] + t.b_uids
    t.api = Client(HTTP_AUTHORIZATION=f"Bearer {t.a_read}")
    return t


def assert_no_leak(t: Two, response, where: str) -> bytes:
    assert response.status_code < 500, (where, response.status_code)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    for marker in t.markers:
        assert marker.encode() not in body, f"{where} answered site B's {marker!r}"
    return body


def strict_parts(words: list[str]) -> st.SearchStrategy[str]:
    """A part of a word, never the whole word (so an echo of it is not a leak)."""

    def cut(word: str):
        return st.integers(0, len(word) - 3).flatmap(
            lambda start: st.integers(start + 2, min(len(word) - 1, start + 12)).map(
                lambda end: word[start:end]
            )
        )

    return st.sampled_from(words).flatmap(cut)


JUNK = st.sampled_from(["", "SITEB", "siteb", "SITEA", "*", "%", "' OR 1=1 --", "\u00e9", "0"])


# --- The API -----------------------------------------------------------------------


@st.composite
def list_queries(draw, two_sites):
    """Query parameters for GET /api/v1/cases: its own, and ones it does not know."""
    params = {}
    for name, values in (
        ("status", st.sampled_from(["draft", "submitted", "withdrawn"]) | JUNK),
        ("year", st.integers(2023, 2027).map(str) | JUNK),
        (
            "updated_since",
            st.sampled_from(["2000-01-01T00:00:00Z", "2026-01-01", "1800-01-01T00:00:00"]) | JUNK,
        ),
        (
            "cursor",
            st.sampled_from(two_sites.b_cursors + two_sites.a_cursors) | st.text(max_size=8),
        ),
        ("limit", st.sampled_from(["1", "2", "3", "500", "0", "-1", "501"])),
        ("site", JUNK),
        ("site_code", JUNK),
        ("q", st.sampled_from(two_sites.markers) | JUNK),
        ("search", st.sampled_from(two_sites.markers)),
        ("case_uid", st.sampled_from(two_sites.b_uids)),
        ("ordering", st.sampled_from(["-updated_at", "site", "pk", "-id"])),
        ("page", st.sampled_from(["1", "2", "999"])),
    ):
        if draw(st.booleans()):
            params[name] = draw(values)
    return params


def test_api_case_lists_and_reads_answer_only_the_tokens_site(two):
    seen_own = set()

    @given(params=list_queries(two), uid=st.sampled_from(two.all_uids + [SHARED_UID]))
    @bounded(EXAMPLES)
    def check(params, uid):
        # The list, followed page by page to its end.
        query, pages = dict(params), 0
        while True:
            response = two.api.get("/api/v1/cases", query)
            body = assert_no_leak(two, response, f"/api/v1/cases?{query}")
            assert response.status_code in (200, 422), response.status_code
            if response.status_code != 200:
                break
            page = json.loads(body)
            for item in page["items"]:
                assert item["site"] == "SITEA", item
                seen_own.add(item["case_uid"])
            pages += 1
            if not page["next_cursor"] or pages > 12:
                break
            query["cursor"] = page["next_cursor"]
        # One case, as itself, a FHIR Bundle and its questionnaire.
        for path in (f"/api/v1/cases/{uid}", f"/api/v1/cases/{uid}/fhir"):
            response = two.api.get(path)
            assert_no_leak(two, response, path)
            assert response.status_code == (404 if uid in two.b_uids else 200), path
        path = f"/api/v1/cases/{uid}/questionnaire"
        assert_no_leak(two, two.api.get(path), path)

    check()
    assert seen_own >= {c.case_uid for c in two.a_cases}  # the lists did answer


def test_api_site_lists_and_jobs_answer_only_the_tokens_site(two):
    @given(
        path=st.sampled_from(
            [
                "/api/v1/printers",
                "/api/v1/intake/models",
                "/api/v1/whoami",
                f"/api/v1/imports/{two.b_import.code}",
                f"/api/v1/imports/{two.a_import.code}",
                f"/api/v1/intake/models/{two.b_model.code}",
            ]
        ),
        params=st.dictionaries(
            st.sampled_from(["site", "code", "q", "limit", "page", "sha256"]),
            st.sampled_from(two.markers) | JUNK,
            max_size=3,
        ),
        token=st.sampled_from([two.a_read, two.a_write]),
    )
    @bounded(EXAMPLES)
    def check(path, params, token):
        response = Client(HTTP_AUTHORIZATION=f"Bearer {token}").get(path, params)
        assert_no_leak(two, response, f"{path}?{params}")
        if str(two.b_import.code) in path or str(two.b_model.code) in path:
            assert response.status_code == 404
        else:
            assert response.status_code == 200

    check()
    kept = json.loads(two.api.get("/api/v1/intake/models").content)
    assert [k["file_name"] for k in kept] == ["alfa-heart.stl"]


# --- Pages -------------------------------------------------------------------------


@st.composite
def page_queries(draw, two_sites):
    dictionary = registry.current().dictionary

    def codes(value_set):
        return [c.code for c in dictionary.value_sets[value_set].codes]

    params = {}
    for name, values in (
        ("status", st.sampled_from(["draft", "submitted", "withdrawn"]) | JUNK),
        ("year", st.sampled_from(["2024", "2025", "2026", "1999"]) | JUNK),
        ("organ_system", st.sampled_from(codes("organ_system")) | JUNK),
        ("object_type", st.sampled_from(codes("object_type")) | JUNK),
        ("q", strict_parts(two_sites.markers) | st.sampled_from(["CASE", "SHARED", "-00"])),
        ("page", st.sampled_from(["1", "2", "last", "0", "-3", "99"])),
        ("site", JUNK),
    ):
        if draw(st.booleans()):
            params[name] = draw(values)
    return params


def test_case_list_page_shows_only_its_sites_cases(two):
    w = two.world
    users = {"alice": w.alice, "bob": w.bob, "mona": w.mona}
    clients = {name: client_for(user) for name, user in users.items()}

    @given(
        params=page_queries(two),
        who=st.sampled_from(sorted(clients)),
        code=st.sampled_from(["SITEA", "SITEB", "siteb"]),
        htmx=st.booleans(),
    )
    @bounded(EXAMPLES)
    def check(params, who, code, htmx):
        extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
        response = clients[who].get(f"/sites/{code}/cases/", params, **extra)
        assert_no_leak(two, response, f"{who} /sites/{code}/cases/?{params}")
        if code != "SITEA":
            assert response.status_code in (403, 404)
        else:
            assert response.status_code == 200

    check()
    everything = clients["alice"].get("/sites/SITEA/cases/")
    for case in two.a_cases:
        assert case.case_uid.encode() in everything.content


def test_audit_pages_show_only_their_site(two):
    w = two.world
    mona, alice = client_for(w.mona), client_for(w.alice)

    @given(
        page=st.sampled_from(["1", "2", "3", "last", "-1", "x"]),
        code=st.sampled_from(["SITEA", "SITEB"]),
        action=st.sampled_from(["", "case.", "import.", "site.", "export."]),
        who=st.sampled_from(["mona", "alice"]),
    )
    @bounded(EXAMPLES)
    def check(page, code, action, who):
        client = mona if who == "mona" else alice
        response = client.get(f"/sites/{code}/audit/", {"page": page, "action": action})
        assert_no_leak(two, response, f"{who} /sites/{code}/audit/")
        expected = 200 if (code == "SITEA" and who == "mona") else (403, 404)
        assert response.status_code in (expected if isinstance(expected, tuple) else (expected,))
        # The registry-wide trail is for registry administrators only.
        response = client.get("/audit/", {"page": page, "action": action})
        assert_no_leak(two, response, f"{who} /audit/")
        assert response.status_code == 403

    check()
    trail = mona.get("/sites/SITEA/audit/").content
    assert b"ALFA-CASE-000" in trail


def test_physician_questionnaire_lists_show_only_their_own(two):
    a_doctor = services.add_user(A_DOCTOR, "correct-horse-battery-9")
    clients = {"doctor": client_for(a_doctor), "alice": client_for(two.world.alice)}

    @given(
        who=st.sampled_from(sorted(clients)),
        params=st.dictionaries(
            st.sampled_from(["site", "email", "case", "page"]),
            strict_parts(two.markers) | JUNK,
            max_size=2,
        ),
    )
    @bounded(10)
    def check(who, params):
        response = clients[who].get("/questionnaires/", params)
        assert_no_leak(two, response, f"{who} /questionnaires/")
        assert response.status_code == 200

    check()
    page = clients["doctor"].get("/questionnaires/").content
    assert b"ALFA-CASE-000" in page or b"Site A Hospital" in page


# --- REDCap ------------------------------------------------------------------------


def _redcap(params: dict):
    from urllib.parse import urlencode

    fields = []
    for key, value in params.items():
        if isinstance(value, list):
            fields += [(f"{key}[{i}]", v) for i, v in enumerate(value)]
        else:
            fields.append((key, value))
    return Client().post(
        "/redcap/api/", urlencode(fields), content_type="application/x-www-form-urlencoded"
    )


def test_redcap_exports_and_log_answer_only_the_tokens_site(two):
    @given(
        content=st.sampled_from(["record", "record", "log", "generateNextRecordName"]),
        fmt=st.sampled_from(["json", "csv"]),
        records=st.lists(st.sampled_from(two.all_uids + [SHARED_UID]), max_size=3),
        record=st.sampled_from(two.b_uids + [SHARED_UID, ""]),
        user=st.sampled_from(["", two.world.carol.email, two.world.alice.email]),
        forms=st.sampled_from([[], ["anatomic_parts"], ["case"]]),
    )
    @bounded(EXAMPLES)
    def check(content, fmt, records, record, user, forms):
        params = {"token": two.a_redcap, "content": content, "format": fmt}
        if content == "record":
            params.update(records=records, forms=forms, type="flat")
        elif content == "log":
            params.update(record=record, user=user, logtype="record")
        response = _redcap(params)
        body = assert_no_leak(two, response, f"REDCap {params}")
        assert response.status_code in (200, 400), (response.status_code, body[:300])

    check()
    everything = _redcap({"token": two.a_redcap, "content": "record", "format": "json"})
    rows = json.loads(assert_no_leak(two, everything, "REDCap all records"))
    assert {r["record_id"] for r in rows} >= {
        c.case_uid for c in two.a_cases if c.status != "withdrawn"
    }


# --- Exports -----------------------------------------------------------------------


def _unpacked(content: bytes) -> list[tuple[str, bytes]]:
    """Every file in a ZIP, and the files of ZIPs (XLSX) inside it."""
    out = []
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for name in archive.namelist():
            data = archive.read(name)
            if data[:2] == b"PK":
                out += [(f"{name}/{inner}", d) for inner, d in _unpacked(data)]
            else:
                out.append((name, data))
    return out


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "fhir", "redcap"])
def test_a_site_export_holds_only_the_sites_own_cases(two, fmt):
    w = two.world
    export = exports.request_site_export(w.mona, w.site_a, fmt)
    export.refresh_from_db()
    assert export.status == "done", export.message if hasattr(export, "message") else export
    mona = client_for(w.mona)
    response = mona.get(f"/exports/{export.code}/download/")
    assert response.status_code == 200
    content = b"".join(response.streaming_content)
    files = _unpacked(content)
    assert files
    for name, data in files:
        for marker in two.markers:
            assert marker.encode() not in data, f"{fmt} export {name} holds site B's {marker!r}"
    assert any(b"ALFA-CASE-000" in data for _, data in files), [name for name, _ in files]


def test_export_pages_show_only_the_sites_exports(two):
    w = two.world
    mona = client_for(w.mona)

    @given(
        path=st.sampled_from(
            [
                "/sites/SITEA/export/",
                "/sites/SITEB/export/",
                f"/exports/{two.b_export.code}/",
                f"/exports/{two.b_export.code}/download/",
                f"/exports/{two.a_export.code}/",
                "/exports/",
            ]
        ),
        params=st.dictionaries(
            st.sampled_from(["site", "code", "page"]), strict_parts(two.markers) | JUNK, max_size=2
        ),
    )
    @bounded(15)
    def check(path, params):
        response = mona.get(path, params)
        assert_no_leak(two, response, f"mona {path}")
        if "SITEB" in path or str(two.b_export.code) in path or path == "/exports/":
            assert response.status_code in (403, 404), path
        else:
            assert response.status_code == 200, path

    check()
    assert Export.objects.filter(site=w.site_b).count() == 1
    assert Import.objects.filter(site=w.site_b).count() == 1
