"""Bulk NDJSON files of many cases, read back line by line with fhir.resources."""

import json

import pytest

from registry3d.cases import services as cases
from registry3d.cases.models import Case
from registry3d.fhir.bulk import write_ndjson
from registry3d.fhir.common import model_of
from registry3d.fhir.resources import bundle
from registry3d.lib.pseudonym import patient_key
from tests.cases.conftest import a_case, printers_for
from tests.fhir.conftest import MRN, save_full_case


@pytest.fixture
def many(world):
    labels = printers_for(world.site_a)
    labels_b = printers_for(world.site_b)
    save_full_case(world, labels)
    for number in range(2, 7):
        cases.save_case(
            world.site_a,
            case_uid=f"A-{number}",
            data=a_case(number, labels),
            status="submitted",
            patient_key=patient_key("SITEA", f"MRN-{number:04d}"),
        )
    cases.save_case(
        world.site_a, case_uid="A-DRAFT", data={"age_years": 95, "sex": "female"}, status="draft"
    )
    cases.save_case(
        world.site_b,
        case_uid="B-1",
        data=a_case(40, labels_b),
        status="submitted",
        patient_key=patient_key("SITEB", MRN),
    )
    return world


def read_back(out_dir) -> dict[str, list]:
    """Every line of every file, parsed by the fhir.resources class of its resourceType."""
    found = {}
    for path in sorted(out_dir.glob("*.ndjson")):
        resources = []
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                resource = json.loads(line)
                assert path.name == f"{resource['resourceType']}.ndjson"
                resources.append(model_of(resource["resourceType"]).model_validate(resource))
        found[path.name] = resources
    return found


def test_each_resource_type_gets_its_file_and_every_line_is_valid_fhir(many, tmp_path):
    counts = write_ndjson((c for c in Case.objects.order_by("pk")), tmp_path)
    found = read_back(tmp_path)
    assert counts == {name: len(resources) for name, resources in found.items()}
    assert set(counts) == {
        "Device.ndjson",
        "Observation.ndjson",
        "Patient.ndjson",
        "Procedure.ndjson",
        "QuestionnaireResponse.ndjson",
    }
    assert counts["Patient.ndjson"] == Case.objects.count() == 8
    prints = sum(len(c.data.get("prints") or []) for c in Case.objects.all())
    assert counts["Device.ndjson"] == prints


def test_references_are_relative_and_resolve_inside_the_files(many, tmp_path):
    write_ndjson(Case.objects.iterator(), tmp_path)
    ids = set()
    references = []
    for path in tmp_path.glob("*.ndjson"):
        for line in path.read_text(encoding="utf-8").splitlines():
            resource = json.loads(line)
            ids.add(f"{resource['resourceType']}/{resource['id']}")
            references += [m for m in _references(resource)]
    assert references
    assert set(references) <= ids


def _references(value):
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            yield value["reference"]
        for v in value.values():
            yield from _references(v)
    elif isinstance(value, list):
        for v in value:
            yield from _references(v)


def test_ids_are_those_of_the_cases_bundle(many, tmp_path):
    write_ndjson(Case.objects.filter(case_uid="A-1"), tmp_path)
    in_files = {
        json.loads(line)["id"]
        for path in tmp_path.glob("*.ndjson")
        for line in path.read_text().splitlines()
    }
    in_bundle = {e["resource"]["id"] for e in bundle(Case.objects.get(case_uid="A-1"))["entry"]}
    assert in_files == in_bundle


def test_it_streams_and_reads_each_site_once(many, tmp_path, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):  # the cases, then Site A and Site B once each
        counts = write_ndjson(Case.objects.order_by("pk").iterator(chunk_size=2), tmp_path)
    assert counts["Patient.ndjson"] == 8


def test_no_planted_identifier_is_written_and_free_text_can_be_left_out(many, tmp_path):
    write_ndjson(Case.objects.all(), tmp_path / "all")
    text = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "all").glob("*.ndjson"))
    assert MRN not in text and "MRN-0002" not in text
    assert "birthDate" not in text
    assert "pulmonary trunk" in text and "The model showed the defect clearly." in text
    write_ndjson(Case.objects.all(), tmp_path / "coded", free_text=False, validate=True)
    coded = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "coded").glob("*.ndjson"))
    assert "pulmonary trunk" not in coded and "The model showed the defect clearly." not in coded
    assert "ua_comment" not in coded


def test_a_top_coded_age_says_90_or_more_and_a_draft_is_preliminary(many, tmp_path):
    write_ndjson(Case.objects.filter(case_uid="A-DRAFT"), tmp_path)
    found = read_back(tmp_path)
    (age,) = found["Observation.ndjson"]
    assert (float(age.valueQuantity.value), age.valueQuantity.comparator) == (90, ">=")
    assert age.status == "preliminary"
    (response,) = found["QuestionnaireResponse.ndjson"]
    assert response.status == "in-progress"
    (printing,) = found["Procedure.ndjson"]
    assert printing.status == "in-progress"
    (patient,) = found["Patient.ndjson"]
    assert patient.identifier is None and patient.gender == "female"


def test_an_empty_iterable_writes_no_file(db, tmp_path):
    assert write_ndjson(iter(()), tmp_path / "out") == {}
    assert list((tmp_path / "out").iterdir()) == []
