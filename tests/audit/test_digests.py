"""Keyed digests stand in for case values in the audit trail."""

import hashlib
import hmac

import pytest
from django.test import override_settings

from registry3d.audit import digests
from registry3d.audit.digests import digest, digest_changes, digest_values
from registry3d.lib import pseudonym


@pytest.fixture
def secret():
    with override_settings(REGISTRY3D_PSEUDONYM_KEY="k" * 40):
        yield "k" * 40


def test_a_digest_is_sixteen_hex_characters_of_an_hmac_under_the_derived_key(secret):
    key = hmac.new(secret.encode(), b"registry3d-audit-digest:v1", hashlib.sha256).digest()
    expected = hmac.new(key, b'"Mimics run by Jane Roe"', hashlib.sha256).hexdigest()[:16]
    assert digest("Mimics run by Jane Roe") == expected
    assert len(expected) == 16 and int(expected, 16) >= 0


def test_the_same_value_gives_the_same_digest_and_a_different_one_another(secret):
    assert digest("left") == digest("left")
    assert digest("left") != digest("right")
    # The JSON type counts: a code "5" is not the number 5.
    assert digest("5") != digest(5)
    assert digest(["a", "b"]) == digest(["a", "b"]) != digest(["b", "a"])
    assert digest(True) != digest("true")


def test_none_stays_none_so_additions_and_removals_show(secret):
    assert digest(None) is None
    assert digest_changes({"ua_comment": [None, "x"], "sex": ["male", None]}) == {
        "ua_comment": [None, digest("x")],
        "sex": [digest("male"), None],
    }


def test_the_status_and_the_patient_key_marker_are_kept_as_they_are(secret):
    changes = {"status": ["draft", "submitted"], "patient_key": ["(changed)", "(changed)"]}
    assert digest_changes(changes) == changes
    assert digest_values({"ua_important": "5", "ua_comment": None}) == {
        "ua_important": digest("5"),
        "ua_comment": None,
    }


def test_the_digest_key_is_not_a_site_key_and_follows_the_secret(secret):
    key = digests.digest_key()
    assert key not in {pseudonym.site_secret(code) for code in ("SITEA", "AUDIT", "")}
    first = digest("x")
    with override_settings(REGISTRY3D_PSEUDONYM_KEY="z" * 40):
        assert digest("x") != first
    assert digest("x") == first
