"""The real PyCap client (2.7.0) against /redcap/api/ on a live server, over HTTP.

PyCap checks the address (it must end in /api/) and the token (32
characters) itself, and raises its RedcapError for REDCap's error shapes;
these tests use it as a site's research team would.
"""

import datetime

import pandas as pd
import pytest
import semantic_version
from redcap import Project, RedcapError
from redcap import request as pycap_request

from registry3d.cases import services as case_services
from registry3d.cases.models import Case
from registry3d.lib.ratelimit import limiter
from registry3d.sites import services
from tests.conftest import make_world
from tests.redcap.conftest import add_printers, case_data


@pytest.fixture
def live(transactional_db, live_server):
    world = make_world()
    world.labels = add_printers(world.site_a)
    _, alice = services.create_token(
        world.site_a, world.alice, name="PyCap", scope="write", kind="redcap"
    )
    _, carol = services.create_token(
        world.site_b, world.carol, name="PyCap B", scope="write", kind="redcap"
    )
    url = f"{live_server.url}/redcap/api/"
    world.project = Project(url, alice)
    world.project_b = Project(url, carol)
    world.url = url
    limiter.clear()
    yield world
    # PyCap keeps its connections alive in one module-wide session; each
    # keeps a server thread, and its database session, open. Close them so
    # the test database can be dropped at the end of the run.
    pycap_request._session.close()


def test_pycap_reads_the_projects_metadata_field_names_and_instruments(live):
    project = live.project
    assert project.redcap_version == semantic_version.Version("14.0.0")
    assert project.def_field == "record_id"
    assert project.is_longitudinal is False
    assert {"case", "prints", "user_assessment"} <= set(project.forms)
    metadata = project.export_metadata(format_type="df")
    assert metadata.index.name == "field_name"
    assert metadata.loc["age_years", "text_validation_type_or_show_slider_number"] == "integer"
    assert metadata.loc["material", "form_name"] == "prints"
    assert len(metadata.columns) == 17  # the 18 columns, one of them the index
    names = project.export_field_names()
    assert {
        "original_field_name": "intended_uses",
        "choice_value": "other",
        "export_field_name": "intended_uses___other",
    } in names
    instruments = project.export_instruments()
    assert instruments[0] == {"instrument_name": "case", "instrument_label": "Case and patient"}
    repeating = project.export_repeating_instruments_events()
    assert [r["form_name"] for r in repeating] == [
        "imaging",
        "anatomic_parts",
        "prints",
        "cpt_lines",
    ]
    info = project.export_project_info()
    assert info["project_title"].startswith("SITEA")


def test_pycap_exports_the_sites_records_as_json_and_as_a_data_frame(live):
    data = case_data(11, live.labels)
    case_services.save_case(
        live.site_a, case_uid="A-1", data=data, status="submitted", actor=live.alice
    )
    case_services.save_case(live.site_a, case_uid="A-2", data={"sex": "female"})
    case_services.save_case(live.site_b, case_uid="B-1", data={"sex": "male"})
    rows = live.project.export_records()
    assert sorted({r["record_id"] for r in rows}) == ["A-1", "A-2"]
    main = next(r for r in rows if r["record_id"] == "A-1" and not r["redcap_repeat_instrument"])
    assert main["object_type"] == data["object_type"]
    assert main["case_complete"] == "2"
    frame = live.project.export_records(format_type="df")
    assert frame.index.name == "record_id"
    assert set(frame.index) == {"A-1", "A-2"}
    prints = live.project.export_records(forms=["prints"], records=["A-1"])
    assert {r["redcap_repeat_instrument"] for r in prints} == {"prints"}
    assert len(prints) == len(data["prints"])
    only = live.project.export_records(fields=["sex"], records=["A-2"])
    assert only == [
        {
            "record_id": "A-2",
            "redcap_repeat_instrument": "",
            "redcap_repeat_instance": "",
            "sex": "female",
        }
    ]
    # Site B's token sees site B's record and never site A's.
    assert [r["record_id"] for r in live.project_b.export_records()] == ["B-1"]
    assert live.project_b.export_records(records=["A-1"]) == []


def test_pycap_imports_a_record_and_the_registry_holds_it(live):
    answer = live.project.import_records(
        [
            {"record_id": "P-1", "object_type": "anatomic_model", "age_years": 61},
            {"record_id": "P-1", "intended_uses___pre_procedural_planning": 1},
        ]
    )
    assert answer == {"count": 1}
    case = Case.objects.get(site=live.site_a, case_uid="P-1")
    assert case.status == "draft"
    assert case.data == {
        "object_type": "anatomic_model",
        "age_years": 61,
        "intended_uses": ["pre_procedural_planning"],
    }
    assert case.created_by == live.alice
    # What PyCap exported it imports again as the same case, now complete.
    data = case_data(13, live.labels)
    case_services.save_case(
        live.site_a, case_uid="A-1", data=data, status="submitted", actor=live.alice
    )
    exported = live.project.export_records(format_type="df", records=["A-1"])
    Case.objects.filter(case_uid="A-1").delete()
    again = exported.rename(index={"A-1": "A-2"})
    ids = live.project.import_records(again, import_format="df", return_content="ids")
    assert ids == ["A-2"]
    copy = Case.objects.get(site=live.site_a, case_uid="A-2")
    assert copy.status == "submitted"
    assert copy.data["prints"] == data["prints"]
    assert copy.data["object_type"] == data["object_type"]


def test_pycap_raises_redcaps_error_for_a_bad_token_or_a_bad_record(live):
    with pytest.raises(RedcapError, match="You do not have permissions to use the API"):
        Project(live.url, "0" * 32).export_metadata()
    with pytest.raises(RedcapError) as error:
        live.project.import_records(
            [{"record_id": "P-1", "age_years": "old"}, {"record_id": "P-2", "sex": "robot"}]
        )
    text = error.value.args[0]["error"]
    assert (
        "P-1,age_years,,Patient age (years): the value is not valid; expected a whole number"
        in text
    )
    assert 'P-2,sex,,"Sex: the value is not a code of this list' in text
    assert "robot" not in text and "old" not in text.replace("P-1", "")
    assert Case.objects.exists() is False


def test_pycap_reads_the_log_of_the_sites_cases(live):
    live.project.import_records([{"record_id": "P-1", "sex": "male"}])
    live.project_b.import_records([{"record_id": "B-9", "sex": "female"}])
    log = live.project.export_logging(begin_time=datetime.datetime(2000, 1, 1))
    assert [(e["username"], e["action"]) for e in log] == [
        ("alice@a.example.org", "Create record P-1")
    ]
    frame = live.project.export_logging(format_type="df")
    assert isinstance(frame, pd.DataFrame) and list(frame["action"]) == ["Create record P-1"]
