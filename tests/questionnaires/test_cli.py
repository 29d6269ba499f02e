"""The questionnaire commands: reminders from cron, response rates."""

from datetime import timedelta

import pytest
from click.testing import CliRunner
from django.core import mail
from django.utils import timezone

from registry3d.cli import main
from registry3d.questionnaires import services
from registry3d.questionnaires.models import QuestionnaireRequest
from tests.questionnaires.conftest import submitted_case

pytestmark = pytest.mark.django_db(transaction=True)


def test_remind_sends_what_is_due_and_expires_what_is_past(world):
    due = submitted_case(world, uid="QC-1", seed=21)
    past = submitted_case(world, uid="QC-2", seed=22)
    fresh = submitted_case(world, uid="QC-3", seed=23)
    for case in (due, past, fresh):
        services.send(case, email="dr.kim@hospital.example.org", specialty="urology")
    now = timezone.now()
    QuestionnaireRequest.objects.filter(case=due).update(sent_at=now - timedelta(days=8))
    QuestionnaireRequest.objects.filter(case=past).update(expires_at=now - timedelta(minutes=1))
    mail.outbox.clear()
    result = CliRunner().invoke(main, ["questionnaire", "remind"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "1 reminded, 1 expired"
    assert [m.subject.startswith("Reminder: ") for m in mail.outbox] == [True]
    statuses = dict(QuestionnaireRequest.objects.values_list("case__case_uid", "status"))
    assert statuses == {"QC-1": "sent", "QC-2": "expired", "QC-3": "sent"}
    again = CliRunner().invoke(main, ["questionnaire", "remind"])
    assert again.stdout.strip() == "0 reminded, 0 expired"


def test_rates_per_site_and_for_the_registry(world):
    services.send(
        submitted_case(world, uid="QC-4", seed=24), email="a@h.example.org", specialty="cardiology"
    )
    services.set_aside(submitted_case(world, uid="QC-5", seed=25), "ask_later")
    result = CliRunner().invoke(main, ["questionnaire", "rates", "--site", "SITEA"])
    assert result.exit_code == 0, result.output
    assert "sent 1 · opened 0 · answered 0 · expired 0 · waiting 1 · response rate 0%" in (
        result.output
    )
    other = CliRunner().invoke(main, ["questionnaire", "rates", "--site", "SITEB"])
    assert "sent 0" in other.output and "response rate –" in other.output
    missing = CliRunner().invoke(main, ["questionnaire", "rates", "--site", "NOPE"])
    assert missing.exit_code == 1 and "No site NOPE" in missing.output
