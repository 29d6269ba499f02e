"""GET /api/v1/cases/{case_uid}/fhir over real HTTP, read back with fhir.resources."""

import json
import re

from registry3d.cases.models import Case
from tests.fhir.conftest import (
    MRN,
    published_questionnaire,
    read_answers,
    read_bundle,
    resources_of,
    split,
)

PATH = "/api/v1/cases/{}/fhir"


def get(fhir_world, token="read", uid="A-1"):
    return fhir_world["http"].call("GET", PATH.format(uid), token=fhir_world[token])


def test_a_case_comes_back_as_a_bundle_of_its_resources(fhir_world):
    reply = get(fhir_world)
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"] == "application/fhir+json; fhirVersion=4.3"
    bundle = read_bundle(reply.body)
    assert bundle.type == "collection"
    case = fhir_world["case"]
    kinds = [e.resource.get_resource_type() for e in bundle.entry]
    assert kinds[0] == "Patient"
    assert kinds.count("Procedure") == 2
    assert kinds.count("Device") == len(case.data["prints"]) == 2
    assert kinds.count("QuestionnaireResponse") == 2
    # Every reference points at an entry of the bundle.
    urls = {e.fullUrl for e in bundle.entry}
    references = []

    def collect(value):
        if isinstance(value, dict):
            if isinstance(value.get("reference"), str):
                references.append(value["reference"])
            for v in value.values():
                collect(v)
        elif isinstance(value, list):
            for v in value:
                collect(v)

    collect(json.loads(reply.body))
    assert references and set(references) <= urls


def test_the_patient_is_pseudonymous(fhir_world):
    bundle = read_bundle(get(fhir_world).body)
    (patient,) = resources_of(bundle, "Patient")
    case = fhir_world["case"]
    assert [(i.system, i.value) for i in patient.identifier] == [
        ("urn:registry3d:site:SITEA:patient-key", case.patient_key)
    ]
    assert patient.gender == case.data["sex"]
    assert patient.name is None and patient.birthDate is None and patient.address is None
    assert patient.telecom is None
    assert patient.meta.security[0].code == "PSEUDED"
    ages = [
        o
        for o in resources_of(bundle, "Observation")
        if o.code.coding[0].system == "http://loinc.org"
    ]
    assert [(float(o.valueQuantity.value), o.valueQuantity.code) for o in ages] == [
        (case.data["age_years"], "a")
    ]


def test_the_procedure_carries_the_cpt_lines_with_their_units(fhir_world):
    bundle = read_bundle(get(fhir_world).body)
    case = fhir_world["case"]
    printing, clinical = resources_of(bundle, "Procedure")
    lines = [(c.system, c.code, c.extension[0].valueInteger) for c in printing.code.coding]
    assert lines == [
        ("http://www.ama-assn.org/go/cpt", line["code"], line["units"])
        for line in case.data["cpt_lines"]
    ]
    assert [code for _, code, _ in lines] == ["0559T", "0560T"]
    assert printing.status == "completed"
    assert printing.category.coding[0].code == "anatomic_model"
    assert {c.coding[0].code for c in printing.reasonCode} >= {
        case.data["organ_system"],
        "Q21.1",
        *case.data["intended_uses"],
    }
    assert len(printing.bodySite) == len(case.data["anatomic_parts"])
    assert clinical.status == "completed"  # procedure_performed: yes
    assert [(c.system, c.code) for c in clinical.code.coding] == [
        ("https://registry3d.org/fhir/CodeSystem/procedure_type", case.data["procedure_type"]),
        ("http://www.ama-assn.org/go/cpt", "33690"),
    ]
    assert len(clinical.usedReference) == 2
    assert clinical.complication[0].coding[0].code == "none"


def test_each_print_is_a_device_with_its_properties(fhir_world):
    bundle = read_bundle(get(fhir_world).body)
    case = fhir_world["case"]
    devices = resources_of(bundle, "Device")
    for device, item in zip(devices, case.data["prints"], strict=True):
        properties = {p.type.coding[0].code: p for p in device.property}
        assert properties["prints.technology"].valueCode[0].coding[0].code == item["technology"]
        assert properties["prints.material"].valueCode[0].coding[0].code == item["material"]
        assert properties["prints.printer_label"].valueCode[0].text == item["printer_label"]
        assert float(properties["prints.scale_percent"].valueQuantity[0].value) == 100.0
        assert properties["prints.scale_percent"].valueQuantity[0].code == "%"
        assert "prints.print_time_minutes" not in properties  # an Observation
        assert device.type.coding[0].code == "anatomic_model"


def test_times_and_costs_are_observations_in_ucum_units(fhir_world):
    bundle = read_bundle(get(fhir_world).body)
    case = fhir_world["case"]
    found = {}
    for observation in resources_of(bundle, "Observation"):
        code = observation.code.coding[0].code
        if observation.valueQuantity is not None:
            quantity = observation.valueQuantity
            assert quantity.system == "http://unitsofmeasure.org"
            found[code] = (float(quantity.value), quantity.code)
        else:
            found[code] = observation.dataAbsentReason.coding[0].code
    assert found["effort_consultation_clinician"] == (
        case.data["effort_consultation_clinician"],
        "min",
    )
    assert found["effort_cad_non_clinician"] == "unknown"
    assert found["turnaround_days"] == (case.data["turnaround_days"], "d")
    assert found["vendor_equivalent_price_usd"] == (1250.5, "[USD]")
    assert found["procedure_duration_min"] == (184, "min")
    # Per-print figures are named by the element, one Observation for each print.
    per_print = [
        (o.code.coding[0].code, float(o.valueQuantity.value), o.valueQuantity.code)
        for o in resources_of(bundle, "Observation")
        if o.focus
    ]
    assert sorted(per_print) == sorted(
        [("prints.print_time_minutes", p["print_time_minutes"], "min") for p in case.data["prints"]]
        + [
            ("prints.material_cost_usd", p["material_cost_usd"], "[USD]")
            for p in case.data["prints"]
        ]
    )


def test_the_responses_hold_the_case_data_and_the_physicians_answers(fhir_world):
    bundle = read_bundle(get(fhir_world).body)
    case = fhir_world["case"]
    lab, physician = split(case.data)
    responses = {
        r.questionnaire.split("|")[0]: r for r in resources_of(bundle, "QuestionnaireResponse")
    }
    case_response = responses["https://registry3d.org/fhir/Questionnaire/registry3d-case"]
    answers = responses["https://registry3d.org/fhir/Questionnaire/registry3d-physician"]
    assert case_response.questionnaire.endswith("|1.1.0")
    assert read_answers(case_response, published_questionnaire("registry3d-case")) == lab
    assert read_answers(answers, published_questionnaire("registry3d-physician")) == physician
    assert physician["ua_important"] == "5" and physician["est_procedure_time_saved_min"] == -15
    assert (case_response.identifier.system, case_response.identifier.value) == (
        "urn:registry3d:site:SITEA:case-uid",
        "A-1",
    )
    assert case_response.status == "completed"


def test_a_case_without_physician_answers_has_no_physician_response(fhir_world):
    case = fhir_world["case"]
    _, physician = split(case.data)
    Case.objects.filter(pk=case.pk).update(
        data={k: v for k, v in case.data.items() if k not in physician}
    )
    bundle = read_bundle(get(fhir_world).body)
    (only,) = resources_of(bundle, "QuestionnaireResponse")
    assert only.questionnaire.startswith(
        "https://registry3d.org/fhir/Questionnaire/registry3d-case"
    )


def test_ids_are_stable_and_reveal_neither_the_case_id_nor_the_patient_key(fhir_world):
    first, second = get(fhir_world), get(fhir_world)
    assert first.body == second.body
    case = fhir_world["case"]
    ids = [e.resource.id for e in read_bundle(first.body).entry]
    assert len(ids) == len(set(ids))
    for rid in ids:
        assert "A-1" not in rid and case.patient_key not in rid and str(case.code) != rid


def test_no_direct_identifier_and_no_date_gets_out(fhir_world):
    body = get(fhir_world).body.decode()
    assert MRN not in body
    assert MRN.replace("-", "") not in body
    assert "birthDate" not in body
    # No full dates: only the month of the request, inside the case's response.
    assert re.findall(r"\d{4}-\d{2}-\d{2}", body) == []
    assert "created_at" not in body and "lastUpdated" not in body


def test_another_sites_token_gets_404_and_no_token_401(fhir_world):
    other = get(fhir_world, token="other")
    assert other.status == 404
    assert other.json()["detail"] == "No case with this ID at the token's site"
    missing = get(fhir_world, uid="NOPE-1")
    assert missing.status == 404
    anonymous = fhir_world["http"].call("GET", PATH.format("A-1"))
    assert anonymous.status == 401
