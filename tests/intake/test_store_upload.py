"""Uploaded files are kept apart, even two of one name in the same instant."""

import re

import time_machine
from django.utils import timezone

from registry3d.intake.services import store_upload


def test_two_uploads_of_one_name_at_one_instant_keep_both_files():
    with time_machine.travel(timezone.now(), tick=False):
        first, first_digest = store_upload("SITEA", "cases.csv", [b"case_uid\nA-1\n"])
        second, second_digest = store_upload("SITEA", "cases.csv", [b"case_uid\nB-1\n"])
    assert first != second
    assert first.read_bytes() == b"case_uid\nA-1\n"
    assert second.read_bytes() == b"case_uid\nB-1\n"
    assert first_digest != second_digest
    # Stored under random names with the upload's extension, never its name.
    assert re.fullmatch(r"upload-[0-9a-f]{32}\.csv", first.name)
    assert re.fullmatch(r"upload-[0-9a-f]{32}\.csv", second.name)
