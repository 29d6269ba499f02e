"""schemathesis against the live API: no 5xx, and every answer is one the schema documents.

The schema is loaded from the live server's ``/api/openapi.json``. Every
operation in it is called with generated requests (valid and invalid ones,
a bounded number each), authenticated with a write token of a site that has
printers. Generated bodies almost never make a valid case, so a second test
walks a case through its whole life with requests built from the same
schema (create, read, list, replace, patch, withdraw, and the refusals in
between), so the success bodies are checked too. Each answer must not be a
server error and must match the schema: a documented status code, content
type, headers and body.
"""

import random

import pytest
import schemathesis

from registry3d.cases import services as case_services
from registry3d.dictionary import registry
from registry3d.dictionary.examples import synthetic_case
from registry3d.lib.ratelimit import limiter
from registry3d.sites import services
from tests.conftest import bounded, make_world

# Generated examples per operation, bounded so the file runs in about half a
# minute: more for the hunt for server errors, fewer for the schema checks,
# which reach every documented status with fewer.
SERVER_ERROR_EXAMPLES = 75
CONFORMANCE_EXAMPLES = 25

PRINTERS = [
    ("J750-1", "Stratasys", "J750 Digital Anatomy", "material_jetting"),
    ("FORM3B-1", "Formlabs", "Form 3B+", "vat_photopolymerization"),
    ("MK4-1", "Prusa Research", "MK4", "material_extrusion"),
]

SERVER_ERRORS = [schemathesis.checks.not_a_server_error]
CONFORMANCE = [
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]
ALL_CHECKS = SERVER_ERRORS + CONFORMANCE


@pytest.fixture
def api_world(transactional_db, live_server):
    world = make_world()
    for label, maker, model, technology in PRINTERS:
        services.add_printer(
            world.site_a, label=label, manufacturer=maker, model=model, technology=technology
        )
    _, world.write_token = services.create_token(
        world.site_a, world.alice, name="schemathesis", scope="write"
    )
    limiter.clear()  # each test starts with a full write allowance
    return world


@pytest.fixture
def api_schema(live_server, api_world):
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/openapi.json")
    schema.config.update(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {api_world.write_token}"},
        request_timeout=20,
    )
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


# Two tests over the same requests, so that a server error is reported on its
# own and is not hidden behind a schema mismatch found earlier in the same run.
@schema.parametrize()
@bounded(SERVER_ERROR_EXAMPLES)
def test_no_request_gets_a_server_error(case):
    case.call_and_validate(checks=SERVER_ERRORS)


@schema.parametrize()
@bounded(CONFORMANCE_EXAMPLES)
def test_every_answer_is_documented_in_the_schema(case):
    case.call_and_validate(checks=CONFORMANCE)


def test_a_case_through_its_life_gets_only_documented_answers(api_schema, api_world, subtests):
    dictionary = registry.current().dictionary
    labels = {technology: label for label, _, _, technology in PRINTERS}
    data = synthetic_case(dictionary, random.Random(7), printer_labels=labels)
    other_site_case = case_services.save_case(
        api_world.site_b, case_uid="B-1", data={}, actor=api_world.carol
    ).case
    _, read_token = services.create_token(
        api_world.site_a, api_world.bob, name="reader", scope="read"
    )
    uid = "SCHEMA-1"
    cases, one = api_schema["/api/v1/cases"], api_schema["/api/v1/cases/{case_uid}"]
    steps = [
        (
            "add a printer",
            201,
            api_schema["/api/v1/printers"]["POST"].Case(
                body={
                    "label": "S5-1",
                    "manufacturer": "EOS",
                    "model": "Formiga P 110",
                    "technology": "powder_bed_fusion",
                }
            ),
        ),
        (
            "create a submitted case",
            201,
            cases["POST"].Case(body={"case_uid": uid, "status": "submitted", "data": data}),
        ),
        (
            "create it again",
            409,
            cases["POST"].Case(body={"case_uid": uid, "status": "submitted", "data": data}),
        ),
        (
            "create an incomplete submitted case",
            422,
            cases["POST"].Case(body={"case_uid": "SCHEMA-2", "status": "submitted", "data": {}}),
        ),
        (
            "write with a read token",
            403,
            cases["POST"].Case(body={"case_uid": "SCHEMA-3", "data": {}}),
        ),
        ("read it", 200, one["GET"].Case(path_parameters={"case_uid": uid})),
        (
            "list the submitted cases",
            200,
            cases["GET"].Case(query={"status": "submitted", "limit": 1}),
        ),
        (
            "replace it with the same body",
            200,
            one["PUT"].Case(
                path_parameters={"case_uid": uid}, body={"status": "submitted", "data": data}
            ),
        ),
        (
            "replace it against a stale version",
            412,
            one["PUT"].Case(
                path_parameters={"case_uid": uid},
                headers={"If-Match": '"7"'},
                body={"status": "submitted", "data": {**data, "turnaround_days": 3}},
            ),
        ),
        (
            "patch one element",
            200,
            one["PATCH"].Case(
                path_parameters={"case_uid": uid}, body={"data": {"turnaround_days": 2}}
            ),
        ),
        (
            "read another site's case",
            404,
            one["GET"].Case(path_parameters={"case_uid": other_site_case.case_uid}),
        ),
        (
            "withdraw it",
            200,
            api_schema["/api/v1/cases/{case_uid}/withdraw"]["POST"].Case(
                path_parameters={"case_uid": uid}, body={"reason": "Entered twice by mistake"}
            ),
        ),
        (
            "withdraw it again",
            409,
            api_schema["/api/v1/cases/{case_uid}/withdraw"]["POST"].Case(
                path_parameters={"case_uid": uid}, body={"reason": "Entered twice by mistake"}
            ),
        ),
    ]
    for name, expected, case in steps:
        with subtests.test(step=name):
            # Requests built by hand do not get the configured headers.
            token = read_token if "read token" in name else api_world.write_token
            response = case.call_and_validate(
                checks=ALL_CHECKS, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == expected, response.text
