"""The case endpoints over real HTTP, as a site's software uses them."""

import json

import pytest
from django.test import override_settings

from registry3d.audit.models import AuditEvent
from registry3d.cases.models import Case, CaseVersion
from registry3d.lib.ratelimit import limiter
from registry3d.sites import services
from tests.cases.conftest import a_case, printers_for

PROBLEM = "application/problem+json"


@pytest.fixture
def api(http_world, http):
    limiter.clear()
    labels = printers_for(http_world.site_a)
    printers_for(http_world.site_b)
    _, write = services.create_token(http_world.site_a, http_world.alice, name="W", scope="write")
    _, read = services.create_token(http_world.site_a, http_world.bob, name="R", scope="read")
    _, other = services.create_token(http_world.site_b, http_world.carol, name="B", scope="write")
    return {
        "http": http,
        "labels": labels,
        "write": write,
        "read": read,
        "other": other,
        "world": http_world,
    }


def post(api, body, token="write"):
    return api["http"].call("POST", "/api/v1/cases", token=api[token], body=body)


def test_a_case_is_created_read_and_listed(api):
    data = a_case(1, api["labels"])
    created = post(api, {"case_uid": "A-1", "status": "submitted", "data": data})
    assert created.status == 201, created.body
    assert created.json()["version"] == 1
    got = api["http"].call("GET", "/api/v1/cases/A-1", token=api["read"])
    assert got.status == 200
    assert got.headers["ETag"] == '"1"'
    assert got.json()["data"] == data
    listed = api["http"].call("GET", "/api/v1/cases?status=submitted", token=api["read"])
    assert [c["case_uid"] for c in listed.json()["items"]] == ["A-1"]


def test_invalid_data_gets_422_with_every_problem_and_nothing_stored(api):
    reply = post(
        api,
        {"case_uid": "A-2", "status": "submitted", "data": {"age_years": "forty", "sex": "robot"}},
    )
    assert reply.status == 422
    assert reply.headers["Content-Type"] == PROBLEM
    errors = {(e["field"], e["code"]) for e in reply.json()["errors"]}
    assert {
        ("data.age_years", "wrong_type"),
        ("data.sex", "not_in_value_set"),
        ("data.object_type", "required"),
    } <= errors
    assert Case.objects.exists() is False


def test_put_twice_is_one_version_and_if_match_guards_changes(api):
    body = {"status": "submitted", "data": a_case(2, api["labels"])}
    first = api["http"].call("PUT", "/api/v1/cases/P-1", token=api["write"], body=body)
    again = api["http"].call("PUT", "/api/v1/cases/P-1", token=api["write"], body=body)
    assert (first.status, again.status) == (201, 200)
    assert first.json()["version"] == again.json()["version"] == 1
    changed = dict(body, data=dict(body["data"], turnaround_days=3))
    ok = api["http"].call(
        "PUT", "/api/v1/cases/P-1", token=api["write"], body=changed, headers={"If-Match": '"1"'}
    )
    assert (ok.status, ok.headers["ETag"]) == (200, '"2"')
    stale = api["http"].call(
        "PUT",
        "/api/v1/cases/P-1",
        token=api["write"],
        body=dict(body, data=dict(body["data"], turnaround_days=9)),
        headers={"If-Match": '"1"'},
    )
    assert stale.status == 412
    assert stale.json()["errors"] == [
        {
            "field": "data.turnaround_days",
            "code": "changed",
            "message": f"now 3, was {body['data'].get('turnaround_days')}",
        }
    ]
    case = Case.objects.get(case_uid="P-1")
    assert (case.version, case.data["turnaround_days"]) == (2, 3)
    assert CaseVersion.objects.filter(case=case).count() == 2


def test_patch_and_withdraw(api):
    post(api, {"case_uid": "W-1", "status": "draft", "data": {"age_years": 40}})
    patched = api["http"].call(
        "PATCH",
        "/api/v1/cases/W-1",
        token=api["write"],
        body={"data": {"age_years": 41, "sex": "female"}},
    )
    assert patched.json()["data"] == {"age_years": 41, "sex": "female"}
    withdrawn = api["http"].call(
        "POST",
        "/api/v1/cases/W-1/withdraw",
        token=api["write"],
        body={"reason": "Entered at the wrong site"},
    )
    assert (withdrawn.status, withdrawn.json()["status"]) == (200, "withdrawn")
    again = api["http"].call(
        "PATCH", "/api/v1/cases/W-1", token=api["write"], body={"data": {"age_years": 42}}
    )
    assert again.status == 409
    assert again.json()["detail"] == "Case W-1 was withdrawn and cannot be changed"


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "/api/v1/cases/B-1", None),
        ("PATCH", "/api/v1/cases/B-1", {"data": {"age_years": 1}}),
        ("POST", "/api/v1/cases/B-1/withdraw", {"reason": "not mine"}),
    ],
)
def test_another_sites_case_is_404_and_untouched(api, method, path, body):
    other = api["http"].call(
        "PUT",
        "/api/v1/cases/B-1",
        token=api["other"],
        body={"status": "draft", "data": {"age_years": 7}},
    )
    assert other.status == 201
    reply = api["http"].call(method, path, token=api["write"], body=body)
    assert reply.status == 404
    assert reply.headers["Content-Type"] == PROBLEM
    case = Case.objects.get(case_uid="B-1")
    assert (case.site.code, case.version, case.data) == ("SITEB", 1, {"age_years": 7})


def test_put_with_another_sites_case_id_makes_a_separate_case(api):
    api["http"].call(
        "PUT",
        "/api/v1/cases/B-2",
        token=api["other"],
        body={"status": "draft", "data": {"age_years": 7}},
    )
    mine = api["http"].call(
        "PUT",
        "/api/v1/cases/B-2",
        token=api["write"],
        body={"status": "draft", "data": {"age_years": 8}},
    )
    assert mine.status == 201
    assert sorted(Case.objects.filter(case_uid="B-2").values_list("site__code", "data")) == [
        ("SITEA", {"age_years": 8}),
        ("SITEB", {"age_years": 7}),
    ]
    listed = api["http"].call("GET", "/api/v1/cases", token=api["write"]).json()["items"]
    assert [c["site"] for c in listed] == ["SITEA"]


def test_a_read_token_cannot_write(api):
    reply = post(api, {"case_uid": "R-1", "data": {}}, token="read")
    assert reply.status == 403
    assert Case.objects.exists() is False


def test_the_list_pages_with_a_cursor(api):
    for n in range(5):
        post(api, {"case_uid": f"L-{n}", "data": {"case_year_month": f"202{n}-01"}})
    seen, cursor = [], None
    while True:
        path = "/api/v1/cases?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api["http"].call("GET", path, token=api["read"]).json()
        seen += [c["case_uid"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"L-{n}" for n in range(5)]
    year = api["http"].call("GET", "/api/v1/cases?year=2023", token=api["read"]).json()
    assert [c["case_uid"] for c in year["items"]] == ["L-3"]
    bad = api["http"].call("GET", "/api/v1/cases?cursor=nonsense", token=api["read"])
    assert bad.status == 422


@pytest.mark.parametrize(
    "raw, status",
    [
        (b'{"case_uid": "X-1", "data": ', 400),
        (b"[" * 200 + b"]" * 200, 400),
        (json.dumps({"case_uid": "X-1", "data": {"ua_comment": "x" * 900_000}}).encode(), 422),
        (b'{"case_uid": "X-1", "data": {"ua_comment": "a\\u0000b"}}', 400),
        (b'{"case_uid": "X-1", "data": {"ua_comment": "\\ud800"}}', 422),
        (b'{"case_uid": "X-1", "data": [1, 2]}', 422),
        (b'"just a string"', 422),
    ],
)
def test_bad_bodies_get_a_clear_4xx_and_nothing_is_stored(api, raw, status):
    reply = api["http"].call("POST", "/api/v1/cases", token=api["write"], raw=raw)
    assert reply.status == status, reply.body[:300]
    assert reply.headers["Content-Type"] == PROBLEM
    assert Case.objects.exists() is False


def test_a_body_of_10_megabytes_gets_413(api):
    raw = b'{"case_uid": "X-1", "data": {"ua_comment": "' + b"x" * (10 * 1024 * 1024) + b'"}}'
    reply = api["http"].call("POST", "/api/v1/cases", token=api["write"], raw=raw)
    assert reply.status == 413
    assert reply.json()["title"] == "Content Too Large"


@override_settings(REGISTRY3D_API_WRITES_PER_SECOND=1, REGISTRY3D_API_WRITE_BURST=3)
def test_a_client_that_writes_too_fast_gets_429_with_retry_after(api):
    answers = [post(api, {"case_uid": f"F-{n}", "data": {}}) for n in range(5)]
    assert [a.status for a in answers[:3]] == [201, 201, 201]
    assert answers[4].status == 429
    assert int(answers[4].headers["Retry-After"]) >= 1
    assert Case.objects.count() == 3


def test_writes_are_audited_with_the_token(api):
    reply = post(api, {"case_uid": "T-1", "data": {"age_years": 3}})
    assert reply.status == 201
    event = AuditEvent.objects.get(action="case.created")
    prefix = api["write"][:10]
    assert (event.via, event.actor.email) == (f"api token {prefix}", "alice@a.example.org")


def test_the_dictionary_is_served(api):
    reply = api["http"].call("GET", "/api/v1/dictionary", token=api["read"])
    assert reply.status == 200
    body = reply.json()
    assert body["version"] == "1.1.0"
    assert "age_years" in body["schema"]["properties"]


@pytest.mark.parametrize(
    "since", ["0132-01-01T21:54:53.4-19:31", "0001-01-01T00:00:00-23:00", "1850-01-01T00:00:00Z"]
)
def test_an_unusable_updated_since_gets_422_not_a_server_error(api, since):
    from urllib.parse import quote

    reply = api["http"].call(
        "GET", f"/api/v1/cases?updated_since={quote(since)}", token=api["read"]
    )
    assert reply.status == 422
    assert reply.json()["errors"][0]["field"] == "updated_since"


def test_updated_since_with_an_offset_is_compared_in_utc(api):
    post(api, {"case_uid": "U-1", "data": {}})
    reply = api["http"].call(
        "GET", "/api/v1/cases?updated_since=2000-01-01T00:00:00%2B05:30", token=api["read"]
    )
    assert [c["case_uid"] for c in reply.json()["items"]] == ["U-1"]


def test_a_forged_cursor_with_an_odd_time_gets_422(api):
    import base64
    import json as json_module

    forged = (
        base64.urlsafe_b64encode(json_module.dumps(["0132-01-01T21:54:53-19:31", 1]).encode())
        .decode()
        .rstrip("=")
    )
    reply = api["http"].call("GET", f"/api/v1/cases?cursor={forged}", token=api["read"])
    assert reply.status == 422
