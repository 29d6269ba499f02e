"""Write the bad-input corpora: files every door of the registry must refuse.

Run ``python tests/corpora/make_corpora.py`` from the repository's root; it
writes the same bytes every time (no clocks, no randomness but a seeded
one), and the files are committed beside it so that the replay test
(``tests/trust/test_bad_input_corpora.py``) reads real files:

- ``json/``: bodies for the case API (POST, PUT, PATCH) and FHIR's
  QuestionnaireResponse POST: malformed JSON, wrong types, huge numbers,
  deep nesting, NUL characters, unknown fields, invalid codes, dates out of
  range, identifiers (MRN, SSN) in free text;
- ``csv/``: imports: wrong headers, UTF-16, Latin-1, ragged rows, formula
  cells, an empty file, binary garbage, a huge field;
- ``dicom/``: DICOM intake: truncated DICOM, not DICOM at all, DICOM
  without the tags a series needs, a ZIP bomb, a damaged ZIP;
- ``mesh/``: 3D model intake: truncated and miscounted binary STL, ASCII
  STL garbage, an empty file, OBJ and PLY garbage, NaN coordinates, a 3MF
  that claims to unpack to more than the limit.

Each file is under 50 KB. ``EXPECTED.json`` names, per file, what the
answer must name (a field, a row, a file) so a refusal is also useful.
"""

import io
import json
import random
import struct
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MRN_TEXT = "Seen in clinic, MRN 48213377, SSN 123-45-6789, John Q Smith"
PATIENT_NAME = "CORPUS^PLANTED^NAME"
FIXED_ZIP_TIME = (2026, 1, 1, 0, 0, 0)
CASE_Q = "https://registry3d.org/fhir/Questionnaire/registry3d-case"

written: dict[str, dict] = {}


def put(kind: str, name: str, content: bytes | str, expect: str, answer: str = "refused") -> None:
    """Write one corpus file; ``expect`` is a word its refusal must name.

    ``answer`` is "refused" (a 4xx), "job" (a CSV file that is a table: its
    rows are refused by the import job, which writes no case) or "accepted"
    (a file the door reads by design, still writing and echoing nothing).
    """
    data = content.encode("utf-8") if isinstance(content, str) else content
    assert len(data) < 50 * 1024, (name, len(data))
    folder = HERE / kind
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    written[f"{kind}/{name}"] = {"names": expect, "answer": answer}


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1)


# --- JSON --------------------------------------------------------------------------------


def json_corpus() -> None:
    put("json", "truncated.json", '{"case_uid": "BAD-1", "data": {"age_years": 4', "body")
    put("json", "trailing-comma.json", '{"case_uid": "BAD-2", "data": {},}', "body")
    put("json", "single-quotes.json", "{'case_uid': 'BAD-3', 'data': {}}", "body")
    put("json", "empty.json", "", "payload")
    put("json", "not-an-object.json", '["BAD-4", {"data": {}}]', "body")
    put("json", "bare-string.json", '"BAD-5"', "body")
    put("json", "null.json", "null", "body")
    put("json", "nan-literal.json", '{"case_uid": "BAD-6", "data": {"age_years": NaN}}', "age")
    put("json", "latin1-bytes.json", b'{"case_uid": "BAD-7\xe9", "data": {}}', "body")
    put("json", "wrong-type-uid.json", dumps({"case_uid": 12345, "data": {}}), "case_uid")
    put("json", "wrong-type-data.json", dumps({"case_uid": "BAD-8", "data": [1, 2]}), "data")
    put(
        "json",
        "wrong-type-status.json",
        dumps({"case_uid": "BAD-9", "status": 1, "data": {}}),
        "status",
    )
    put(
        "json",
        "wrong-type-age.json",
        dumps({"case_uid": "BAD-10", "data": {"age_years": "forty"}}),
        "age_years",
    )
    put(
        "json",
        "huge-integer.json",
        '{"case_uid": "BAD-11", "data": {"age_years": ' + "9" * 400 + "}}",
        "age_years",
    )
    put(
        "json",
        "huge-float.json",
        '{"case_uid": "BAD-12", "data": {"age_years": 1e400, "turnaround_days": -1e400}}',
        "age_years",
    )
    put(
        "json",
        "negative-number.json",
        dumps({"case_uid": "BAD-13", "data": {"age_years": -5, "turnaround_days": -1}}),
        "age_years",
    )
    deep = "0"
    for _ in range(40):
        deep = "[" + deep + "]"
    put("json", "deep-nesting-40.json", '{"case_uid": "BAD-14", "data": {"x": ' + deep + "}}", "")
    shallow = "0"
    for _ in range(28):
        shallow = '{"a": ' + shallow + "}"
    put(
        "json",
        "deep-nesting-28.json",
        '{"case_uid": "BAD-15", "data": {"anatomic_parts": ' + shallow + "}}",
        "anatomic_parts",
    )
    put(
        "json",
        "nul-in-uid.json",
        dumps({"case_uid": "BAD\u000016", "data": {}}).replace("\\u0000", "\\u0000"),
        "NUL",
    )
    put(
        "json",
        "nul-raw-byte.json",
        b'{"case_uid": "BAD-17", "data": {"age_years": 4\x00}}',
        "NUL",
    )
    put(
        "json",
        "unknown-element.json",
        dumps({"case_uid": "BAD-18", "data": {"favourite_colour": "teal"}}),
        "favourite_colour",
    )
    put(
        "json",
        "unknown-top-level-field.json",
        dumps({"case_uid": "BAD-19", "dta": {"age_years": 40}, "data": {"age_years": "x"}}),
        "dta",
    )
    put(
        "json",
        "invalid-enum-status.json",
        dumps({"case_uid": "BAD-20", "status": "final", "data": {}}),
        "status",
    )
    put(
        "json",
        "invalid-enum-code.json",
        dumps({"case_uid": "BAD-21", "data": {"organ_system": "spleenish", "sex": "Q"}}),
        "organ_system",
    )
    put(
        "json",
        "invalid-uid.json",
        dumps({"case_uid": "../../etc/passwd", "data": {}}),
        "case_uid",
    )
    put("json", "long-uid.json", dumps({"case_uid": "U" * 300, "data": {}}), "case_uid")
    put(
        "json",
        "date-out-of-range.json",
        dumps({"case_uid": "BAD-22", "data": {"case_year_month": "1899-13"}}),
        "case_year_month",
    )
    put(
        "json",
        "date-before-min.json",
        dumps({"case_uid": "BAD-23", "data": {"case_year_month": "2018-12"}}),
        "case_year_month",
    )
    put(
        "json",
        "date-garbage.json",
        dumps({"case_uid": "BAD-24", "data": {"case_year_month": "2026-02-30T25:61"}}),
        "case_year_month",
    )
    put(
        "json",
        "mrn-in-comment.json",
        dumps(
            {
                "case_uid": "BAD-25",
                "data": {
                    "anatomic_parts": [
                        {"region": "abdomen", "structure": "kidney", "comment": MRN_TEXT}
                    ]
                },
            }
        ),
        "anatomic_parts",
    )
    put(
        "json",
        "mrn-as-patient-key.json",
        dumps({"case_uid": "BAD-26", "patient_key": "MRN48213377", "data": {}}),
        "patient_key",
    )
    put(
        "json",
        "fhir-wrong-resource.json",
        dumps({"resourceType": "Patient", "name": [{"family": "Smith"}]}),
        "resourceType",
    )
    questionnaire_response = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{CASE_Q}|1.1.0",
        "identifier": {"system": "urn:registry3d:case-uid", "value": "BAD-27"},
        "status": "in-progress",
        "item": [
            {
                "linkId": "case",
                "item": [
                    {"linkId": "age_years", "answer": [{"valueString": "forty"}]},
                    {"linkId": "no_such_item", "answer": [{"valueInteger": 1}]},
                    {"linkId": "case_year_month", "answer": [{"valueString": "1899-13"}]},
                ],
            }
        ],
    }
    put("json", "fhir-bad-answers.json", dumps(questionnaire_response), "age_years")
    named = {
        **questionnaire_response,
        "identifier": {"system": "urn:registry3d:case-uid", "value": "BAD-28"},
        "subject": {"display": "John Q Smith"},
        "status": "completed",
        "item": [
            {
                "linkId": "case",
                "item": [{"linkId": "age_years", "answer": [{"valueInteger": 40}]}],
            }
        ],
    }
    put("json", "fhir-patient-name.json", dumps(named), "subject")
    wrong_status = {**named, "subject": None, "status": "entered-in-error"}
    del wrong_status["subject"]
    wrong_status["identifier"] = {"system": "urn:registry3d:case-uid", "value": "BAD-29"}
    put("json", "fhir-wrong-status.json", dumps(wrong_status), "status")


# --- CSV ---------------------------------------------------------------------------------

HEADER = "case_uid,status,age_years,case_year_month,organ_system"


def csv_corpus() -> None:
    put("csv", "wrong-headers.csv", "id,colour,size\n1,teal,3\n2,red,4\n", "case_uid")
    put("csv", "header-only-unknown.csv", "nothing,here\n", "case_uid")
    put(
        "csv",
        "utf16.csv",
        (HEADER + "\nCSV-1,draft,40,2026-01,cardiovascular\n").encode("utf-16"),
        "UTF-8",
    )
    put(
        "csv",
        "latin1.csv",
        (HEADER + "\nCSV-2,draft,40,2026-01,cardiovascular caf\xe9\n").encode("latin-1"),
        "UTF-8",
    )
    put(
        "csv",
        "bom-bad-rows.csv",
        "\ufeff" + HEADER + "\nCSV-3,submitted,forty,2026-13,spleen\n",
        "row",
        "job",
    )
    put(
        "csv",
        "ragged-rows.csv",
        HEADER + "\nCSV-4,draft,40\nCSV-5,draft,40,2026-01,cardiovascular,extra,cells\n",
        "row",
        "job",
    )
    put(
        "csv",
        "formula-cells.csv",
        HEADER + '\n=HYPERLINK("http://evil.example","x"),draft,=1+1,@SUM(A1),+cmd|calc\n',
        "row",
        "job",
    )
    put("csv", "empty.csv", b"", "empty")
    put("csv", "blank-lines.csv", "\n\n   \n", "empty")
    rng = random.Random(7)
    put("csv", "binary-garbage.csv", bytes(rng.randrange(256) for _ in range(4096)), "UTF-8")
    put(
        "csv",
        "huge-field.csv",
        HEADER + "\nCSV-6,draft,40,2026-01," + "x" * 40_000 + "\n",
        "row",
        "job",
    )
    put(
        "csv",
        "mrn-in-uid.csv",
        HEADER + "\nMRN 48213377 SSN 123-45-6789,draft,40,2026-01,cardiovascular\n",
        "row",
        "job",
    )
    put("csv", "not-csv.txt", "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "case_uid")


# --- DICOM -------------------------------------------------------------------------------


def _dicom(**changes) -> bytes:
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = "2.25.1111.1"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = "2.25.9876543210"
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "2.25.1111.1"
    ds.Modality = "CT"
    ds.PatientName = PATIENT_NAME
    ds.PatientID = "MRN48213377"
    ds.StudyInstanceUID = "2.25.1111"
    ds.SeriesInstanceUID = "2.25.1111.0"
    ds.StudyDate = "20260105"
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = b"\1\0" * 256
    for keyword, value in changes.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _zip(members: list[tuple[str, bytes]], **kwargs) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, **kwargs) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return out.getvalue()


def dicom_corpus() -> None:
    whole = _dicom()
    put("dicom", "truncated-in-pixels.dcm", whole[: len(whole) - 300], "truncated")
    put("dicom", "truncated-in-header.dcm", whole[:200], "file")
    put("dicom", "preamble-only.dcm", b"\0" * 128 + b"DICM", "file")
    put("dicom", "not-dicom.dcm", b"%PDF-1.7\n" + b"not a DICOM file\n" * 40, "DICOM")
    put("dicom", "empty.dcm", b"", "file")
    put("dicom", "text-with-patient.dcm", f"PatientName={PATIENT_NAME}\n", "DICOM")
    put(
        "dicom",
        "no-sop-class.dcm",
        _dicom(SOPClassUID=None, Modality=None, SeriesInstanceUID=None),
        "",
        "accepted",  # headers only: read as a series of unknown modality
    )
    put("dicom", "bomb.zip", _zip([("slice.dcm", b"\0" * (3 * 1024 * 1024))]), "ZIP bomb")
    put(
        "dicom",
        "unsafe-names.zip",
        _zip([("../../etc/slice.dcm", whole), ("/abs/slice.dcm", whole)]),
        "name",
    )
    damaged = bytearray(_zip([("a.dcm", whole), ("b.dcm", whole)]))
    middle = len(damaged) // 3
    damaged[middle : middle + 64] = b"\xff" * 64
    put("dicom", "damaged.zip", bytes(damaged), "ZIP")
    put("dicom", "empty.zip", _zip([]), "DICOM")


# --- Meshes ------------------------------------------------------------------------------


def _binary_stl(triangles: list, declared: int | None = None) -> bytes:
    out = io.BytesIO()
    out.write(b"corpus".ljust(80, b" "))
    out.write(struct.pack("<I", len(triangles) if declared is None else declared))
    for triangle in triangles:
        out.write(struct.pack("<3f", 0, 0, 0))
        for vertex in triangle:
            out.write(struct.pack("<3f", *vertex))
        out.write(b"\0\0")
    return out.getvalue()


TETRA = [
    [(0, 0, 0), (10, 0, 0), (0, 10, 0)],
    [(0, 0, 0), (0, 10, 0), (0, 0, 10)],
    [(0, 0, 0), (0, 0, 10), (10, 0, 0)],
    [(10, 0, 0), (0, 0, 10), (0, 10, 0)],
]


def mesh_corpus() -> None:
    whole = _binary_stl(TETRA)
    put("mesh", "truncated-binary.stl", whole[: len(whole) - 30], "STL")
    put("mesh", "wrong-count.stl", _binary_stl(TETRA, declared=1000), "STL")
    put("mesh", "header-only.stl", whole[:84], "STL")
    put("mesh", "empty.stl", b"", "STL")
    put(
        "mesh",
        "ascii-garbage.stl",
        "solid x\n facet normal what\n  outer loop\n  vertex a b c\n",
        "",
    )
    put("mesh", "ascii-no-facets.stl", "solid empty\nendsolid empty\n", "triangles")
    nan = float("nan")
    put("mesh", "nan-coordinates.stl", _binary_stl([[(nan, 0, 0), (1, 0, 0), (0, 1, 0)]]), "")
    put("mesh", "huge-coordinates.stl", _binary_stl([[(1e12, 0, 0), (0, 1, 0), (0, 0, 1)]]), "")
    put("mesh", "garbage.obj", "v 1 2\nf 1 2 3 4 5\nvn what\n" + "x" * 200 + "\n", "")
    put("mesh", "binary.obj", bytes(random.Random(3).randrange(256) for _ in range(2048)), "OBJ")
    put("mesh", "faces-out-of-range.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 99\n", "")
    put("mesh", "garbage.ply", "ply\nformat ascii 1.0\nelement vertex 3\nend_header\n1 2\n", "")
    put("mesh", "not-ply.ply", "this is not a ply file\n", "PLY")
    put(
        "mesh",
        "ply-count-lies.ply",
        "ply\nformat binary_little_endian 1.0\nelement vertex 999999\nproperty float x\n"
        "property float y\nproperty float z\nelement face 999999\n"
        "property list uchar int vertex_indices\nend_header\n",
        "",
    )
    put("mesh", "not-a-zip.3mf", b"PK\x03\x04 this is not really a zip", "3MF")
    put("mesh", "no-model.3mf", _zip([("readme.txt", b"hello")]), "3MF")
    # A 3MF whose directory claims its model unpacks to far more than the limit.
    forged = bytearray(_zip([("3D/3dmodel.model", b"<model/>")]))
    directory = forged.rfind(b"PK\x01\x02")
    forged[directory + 24 : directory + 28] = struct.pack("<I", 0xFFFFFFF0)
    put("mesh", "claims-huge.3mf", bytes(forged), "")
    put("mesh", "model.exe", b"MZ" + b"\0" * 200, "type")


def main() -> None:
    json_corpus()
    csv_corpus()
    dicom_corpus()
    mesh_corpus()
    (HERE / "EXPECTED.json").write_text(json.dumps(written, indent=1, sort_keys=True) + "\n")
    total = sum((HERE / name).stat().st_size for name in written)
    print(f"{len(written)} files, {total:,} bytes")


if __name__ == "__main__":
    main()
