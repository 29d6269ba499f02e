"""Helpers to write variations of the dictionary file for a test."""

from pathlib import Path

import pytest

from registry3d.dictionary.registry import DATA_DIR

CASE_FILE = DATA_DIR / "case.yaml"


@pytest.fixture
def dictionary_copy(tmp_path):
    """Return a function that writes case.yaml, edited, into a temp folder."""

    def write(*replacements: tuple[str, str], append: str = "") -> Path:
        text = CASE_FILE.read_text(encoding="utf-8")
        for old, new in replacements:
            assert old in text, f"not in case.yaml: {old!r}"
            text = text.replace(old, new, 1)
        (tmp_path / "appropriateness.yaml").write_text(
            (DATA_DIR / "appropriateness.yaml").read_text(encoding="utf-8"), encoding="utf-8"
        )
        path = tmp_path / "case.yaml"
        path.write_text(text + append, encoding="utf-8")
        return path

    return write


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")
