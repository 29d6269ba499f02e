"""The physician questionnaire on a phone: from the site's page to the e-mailed link,
answered once, with errors in place and nothing to scroll sideways."""

import pytest
from django.core import mail
from playwright.sync_api import expect

from registry3d.cases.models import Case
from registry3d.questionnaires import services
from registry3d.questionnaires.models import QuestionnaireRequest, QuestionnaireResponse
from registry3d.sites.services import add_user
from tests.browser.conftest import log_in
from tests.conftest import PASSWORD
from tests.questionnaires.conftest import LINK_RE, submitted_case

ALICE = "alice@a.example.org"
DOCTOR = "dr.lee@hospital.example.org"
PHONE = {"width": 390, "height": 844}


def field(page, name):
    return page.locator(f'[id="i-{name}"]')


def scroll_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def send_from_the_case_page(page, case) -> None:
    log_in(page, ALICE)
    expect(page.get_by_role("heading", level=1)).to_have_text("Site A Hospital")
    page.goto(f"/sites/SITEA/cases/{case.case_uid}/")
    panel = page.locator("#questionnaire")
    panel.get_by_label("Physician's e-mail").fill(DOCTOR)
    panel.get_by_label("Specialty").select_option(label="Cardiothoracic surgery")
    panel.get_by_role("button", name="Send the questionnaire").click()
    expect(page.locator(".messages")).to_have_text("The questionnaire is on its way.")
    expect(page.locator("#questionnaire .badge")).to_have_text("Sent")


@pytest.mark.browser
def test_a_physician_answers_the_emailed_link_on_a_phone(browser_world, new_page):
    case = submitted_case(browser_world)
    mail.outbox.clear()
    send_from_the_case_page(new_page(viewport=PHONE), case)
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [DOCTOR]
    link = LINK_RE.search(mail.outbox[0].body).group(0)

    page = new_page(viewport=PHONE)  # the physician: no account, no cookies
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_contain_text("What was the 3D printed")
    assert scroll_width(page) <= PHONE["width"]

    # Everything but a required question: the error is shown there, the rest kept.
    field(page, "respondent_role").select_option("surgeon_or_proceduralist")
    field(page, "ua_plan_altered").select_option(label="Agree")
    field(page, "est_procedure_time_saved_min").fill("25")
    page.locator('[id="f-plan_change_type"]').get_by_label("Approach changed").check()
    field(page, "ua_comment").fill("Helped us choose the approach.")
    page.get_by_role("button", name="Send my answers").click()

    important = page.locator('[id="f-ua_important"]')
    expect(important).to_have_class("field has-error")
    expect(important.locator('[id="err-ua_important"]').get_by_role("alert")).to_contain_text(
        "required"
    )
    expect(page.locator(".field.has-error")).to_have_count(1)
    expect(page.locator("#problems")).to_contain_text("1 answer needs a look")
    expect(field(page, "respondent_role")).to_have_value("surgeon_or_proceduralist")
    expect(field(page, "ua_plan_altered")).to_have_value("4")
    expect(field(page, "est_procedure_time_saved_min")).to_have_value("25")
    expect(page.get_by_label("Approach changed")).to_be_checked()
    expect(page.get_by_label("Procedure changed")).not_to_be_checked()
    expect(field(page, "ua_comment")).to_have_value("Helped us choose the approach.")
    assert scroll_width(page) <= PHONE["width"]
    assert not QuestionnaireResponse.objects.exists()

    field(page, "ua_important").select_option(label="Strongly agree")
    page.get_by_role("button", name="Send my answers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you")
    assert page.url == link  # redirected to the link itself: reloads are safe
    assert scroll_width(page) <= PHONE["width"]

    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you")
    expect(page.get_by_role("button", name="Send my answers")).to_have_count(0)
    later = new_page(viewport=PHONE)  # the e-mail opened again, another day
    later.goto(link)
    expect(later.get_by_role("heading", level=1)).to_have_text("Thank you")
    expect(later.locator("form.questionnaire")).to_have_count(0)

    stored = QuestionnaireResponse.objects.get(request__case=case)
    assert stored.answers == {
        "respondent_role": "surgeon_or_proceduralist",
        "ua_important": "5",
        "ua_plan_altered": "4",
        "est_procedure_time_saved_min": 25,
        "plan_change_type": ["approach_changed"],
        "ua_comment": "Helped us choose the approach.",
    }
    assert QuestionnaireRequest.objects.get(case=case).status == "answered"
    assert Case.objects.get(pk=case.pk).data["est_procedure_time_saved_min"] == 25


@pytest.mark.browser
def test_a_physician_with_an_account_answers_from_their_list(browser_world, new_page):
    doctor = add_user(DOCTOR, PASSWORD)
    case = submitted_case(browser_world)
    services.send(case, email=DOCTOR, specialty="cardiology", actor=browser_world.alice)
    page = new_page(viewport=PHONE)
    log_in(page, DOCTOR)
    page.goto("/questionnaires/")
    page.get_by_role("link", name="Answer").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("What was the 3D printed")
    assert scroll_width(page) <= PHONE["width"]
    field(page, "respondent_role").select_option("trainee")
    field(page, "ua_important").select_option("3")
    page.get_by_role("button", name="Send my answers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you")
    stored = QuestionnaireResponse.objects.get(request__case=case)
    assert stored.answered_by == doctor
    assert stored.answers == {"respondent_role": "trainee", "ua_important": "3"}
