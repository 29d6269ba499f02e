"""The identifier detector, measured on the labelled corpora.

The targets of issue 15 are asserted on ``tests/corpora/identifiers/
corpus.csv``; the held-out corpora (``heldout.csv``, ``heldout2.csv``) are
measured and reported, never asserted (they are not tuned against).
``review.csv`` holds the strings a hostile reviewer found; the detector was
fixed against them, so they are reported on their own, not as held out. The
tables are printed (``pytest -s``) and kept in ``docs/identifier-detector.md``:
run with ``REGISTRY3D_WRITE_DOCS=1`` to rewrite it; without it, a stale doc
fails the test.

Rows whose text is a model file name are screened with
``find_identifier_in_file_name``, every other row with ``find_identifier``.
"""

import csv
import os
import re
from pathlib import Path

import pytest

from registry3d.lib.identifiers import find_identifier, find_identifier_in_file_name

ROOT = Path(__file__).resolve().parents[2]
CORPORA = ROOT / "tests" / "corpora" / "identifiers"
DOC = ROOT / "docs" / "identifier-detector.md"
FILE_NAME = re.compile(r"\.(?:stl|obj|3mf|ply|amf)\Z", re.IGNORECASE)
MUST_FIND_ALL = ("ssn", "phone", "email", "date", "mrn")

KIND_PHRASES = {
    "a person's name",
    "a US Social Security number",
    "a phone number",
    "a full date",
    "an e-mail address",
    "a street address",
    "a ZIP code",
    "a web address",
    "an IP address",
    "a medical record or account number",
    "a device serial number",
    "a long number that may be a record number",
}


def screen(text: str) -> str | None:
    if FILE_NAME.search(text):
        return find_identifier_in_file_name(text)
    return find_identifier(text)


def measure(name: str) -> dict[str, tuple[int, int]]:
    """Per kind: (rows, rows where something was found)."""
    counts: dict[str, tuple[int, int]] = {}
    with (CORPORA / name).open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            n, hits = counts.get(row["kind"], (0, 0))
            counts[row["kind"]] = (n + 1, hits + (screen(row["text"]) is not None))
    return counts


def table(counts: dict[str, tuple[int, int]]) -> str:
    lines = ["| kind | strings | detected | recall |", "|---|---:|---:|---:|"]
    total = found = 0
    for kind in sorted(k for k in counts if k != "benign"):
        n, hits = counts[kind]
        total, found = total + n, found + hits
        lines.append(f"| {kind} | {n} | {hits} | {hits / n:.1%} |")
    lines.append(f"| **all identifiers** | {total} | {found} | {found / total:.1%} |")
    n, hits = counts["benign"]
    lines += [
        "",
        "| benign | strings | false positives | rate |",
        "|---|---:|---:|---:|",
        f"| benign lab text | {n} | {hits} | {hits / n:.1%} |",
    ]
    return "\n".join(lines)


CORPORA_AND_MARKERS = (
    ("corpus.csv", "main"),
    ("heldout.csv", "heldout"),
    ("heldout2.csv", "heldout2"),
    ("review.csv", "review"),
)


def rendered_doc() -> str:
    text = DOC.read_text(encoding="utf-8")
    for name, marker in CORPORA_AND_MARKERS:
        start, end = f"<!-- table:{marker} -->", f"<!-- /table:{marker} -->"
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = f"{before}{start}\n{table(measure(name))}\n{end}{after}"
    return text


def recall(counts: dict[str, tuple[int, int]], kinds=None) -> float:
    chosen = [v for k, v in counts.items() if k != "benign" and (kinds is None or k in kinds)]
    return sum(h for _, h in chosen) / sum(n for n, _ in chosen)


def test_the_main_corpus_meets_the_targets():
    counts = measure("corpus.csv")
    print("\nMain corpus\n" + table(counts))
    print("\nHeld-out corpus (reported, not asserted)\n" + table(measure("heldout.csv")))
    print("\nHeld-out corpus 2 (reported, not asserted)\n" + table(measure("heldout2.csv")))
    print("\nReviewer's strings (fixed against, not held out)\n" + table(measure("review.csv")))
    assert sum(n for k, (n, _) in counts.items() if k != "benign") >= 250
    assert counts["benign"][0] >= 250
    assert recall(counts) >= 0.99
    for kind in MUST_FIND_ALL:
        assert counts[kind][0] == counts[kind][1], f"{kind}: {counts[kind]}"
    n, false_positives = counts["benign"]
    assert false_positives / n <= 0.02


def test_the_doc_holds_the_current_table():
    expected = rendered_doc()
    if os.environ.get("REGISTRY3D_WRITE_DOCS") == "1":
        DOC.write_text(expected, encoding="utf-8")
    assert DOC.read_text(encoding="utf-8") == expected, (
        "docs/identifier-detector.md is stale: run this test with REGISTRY3D_WRITE_DOCS=1"
    )


def test_the_corpora_are_what_their_script_writes():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_corpus", CORPORA / "make_corpus.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    for name, rows in (("corpus.csv", make.build_main()), ("heldout.csv", make.build_heldout())):
        with (CORPORA / name).open(encoding="utf-8", newline="") as f:
            assert [(r["kind"], r["text"]) for r in csv.DictReader(f)] == rows, name


def test_the_second_held_out_corpus_is_what_its_script_writes():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_heldout2", CORPORA / "make_heldout2.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    with (CORPORA / "heldout2.csv").open(encoding="utf-8", newline="") as f:
        assert [(r["kind"], r["text"]) for r in csv.DictReader(f)] == make.build()


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("John Smith", "a person's name"),
        ("Smith, John", "a person's name"),
        ("Mimics run by John Smith", "a person's name"),
        ("born 3rd March 1950", "a full date"),
        ("DOB 1950/03/03", "a full date"),
        ("SSN 123 45 6789", "a US Social Security number"),
        ("(617)555-0100", "a phone number"),
        ("+44 20 7946 0958", "a phone number"),
        ("12 Elm Street, Springfield MA 01103", "a street address"),
        ("Springfield, MA 01103", "a ZIP code"),
        ("chart 123456", "a medical record or account number"),
        ("S/N: PJN123456H", "a device serial number"),
        ("https://portal.example.org/patient/1", "a web address"),
        ("10.0.4.17", "an IP address"),
        ("jane.doe@example.org", "an e-mail address"),
        ("john(at)example(dot)org", "an e-mail address"),
        ("pacs01.hospital.org", "a web address"),
        ("ftp server 10.0.0.5", "an IP address"),
        ("the third of March 1950", "a full date"),
        ("born on 3/3", "a full date"),
        ("acct# 12-3456", "a medical record or account number"),
        ("pt # 123456", "a medical record or account number"),
        ("device S/N: X7Q-2231", "a device serial number"),
        ("CARDIAC OKAFOR CHINEDU", "a person's name"),
    ],
)
def test_it_names_the_kind_of_each_identifier_from_issue_15(text, kind):
    assert find_identifier(text) == kind
    assert kind in KIND_PHRASES


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Smith_John_MRN1234567_DOB1950-03-03.stl", "a full date"),
        ("MRN1234567_heart.stl", "a medical record or account number"),
        ("DOB19500303_pelvis.obj", "a full date"),
        ("john.smith.liver.stl", "a person's name"),
        ("SMITH-JOHN_skull.3mf", "a person's name"),
        ("JohnSmith_heart.stl", "a person's name"),
        ("KOWALCZYK_AGNIESZKA_heart.stl", "a person's name"),
        ("Bogdan-Petrenko-skull.stl", "a person's name"),
        ("heart_03_03_1950.stl", "a full date"),
    ],
)
def test_it_reads_file_names_split_on_separators_and_glued_cues(name, kind):
    assert find_identifier_in_file_name(name) == kind


@pytest.mark.parametrize(
    "text",
    [
        "Thanks Tunde Bakare for the files",
        "Segmented by Anjali MEHTA",
        "Zoltan Szabo's pelvis",
        "surgeon: Bongani Dlamini",
        "Dr Amber Okafor",
    ],
)
def test_it_finds_names_beyond_the_census_lists(text):
    assert find_identifier(text) == "a person's name"


@pytest.mark.parametrize(
    "text",
    [
        "BioMed Amber",
        "Grey Resin V4 on a Form 3B+",
        "Vero PureWhite with Agilus30 Clear",
        "Jade Clear guide, Ruby Red vessels",
        "Tommy John reconstruction",
        "Per surgeon request, cut plane at the RVOT",
        "Jackson-Pratt drain",
        "Fontan, Glenn and Norwood stages",
        "Ross procedure; Bentall considered",
        "Ebstein anomaly, Wilms tumor, Tetralogy of Fallot",
        "Mimics 25 / 3-matic 17 / 3D Slicer 5.6",
        "Stratasys J850, VeroClear, BioMed Clear, Formlabs Form 3B",
        "Smith fracture, distal radius",
        "AX 0.625 STND",
        "Q21.3, 120 kVp, 0.625 mm, v2.1.3, 2026-07",
        "HU threshold 226-3071",
        "Follow-up visit 2026, reprint in July 2026",
        "heart_v2_final.stl",
        "VeroClear_TissueMatrix_heart.stl",
        "Version 25.0.1.7; Mimics 25.0.0.123",
        "Printed with Elastic Resin, then Surgical Guide resin",
        "Reviewed with Cardiac Surgery for Tumor Board",
        "Stanford Type A dissection",
        "Jefferson Health, Mayo Clinic",
        "CTA CHEST",
        "PULMONARY VEIN",
        "Boston Scientific",
        "Abbott Vascular",
        "build 20240315",
        "Version 25.0.1.7 on the server",
        "printed at lab dot matrix",
        "visit 2026-07",
    ],
)
def test_lab_text_passes(text):
    assert screen(text) is None
