"""Reading DICOM headers from real files written by pydicom: what comes out, and what never does."""

import hashlib
import io
import json
import logging
import os
import shutil
import time
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, MediaStorageDirectoryStorage

from registry3d.intake.dicom import MB, DicomError, read_dicom
from tests.intake import fixtures_dicom as dicom
from tests.intake.fixtures_dicom import (
    any_image,
    compressed_ct_slice,
    ct_slice,
    enhanced_ct,
    mr_slice,
    planted_strings,
    save,
    write_ct_series,
    write_study,
    write_zip_bomb,
    zip_folder,
)

CT_SERIES = {
    "series_number": 3,
    "modality": "CT",
    "suggested_modality": "cardiac_ct",
    "manufacturer": "SIEMENS",
    "model": "SOMATOM Force",
    "slice_thickness_mm": 0.75,
    "pixel_spacing_mm": [0.390625, 0.390625],
    "kvp": 100.0,
    "field_strength_t": None,
    "contrast": True,
    "body_part": "HEART",
    "series_description": "CorCTA 0.75 Bv40 75%",
    "images": 6,
    "files": 6,
    "exam_year": 2025,
    "varies": [],
    "withheld": [],
    "suggested_imaging_item": {
        "modality": "cardiac_ct",
        "contrast": "iv_contrast",
        "slice_thickness_mm": 0.75,
    },
}
MR_SERIES = {
    "series_number": 5,
    "modality": "MR",
    "suggested_modality": "mr",
    "manufacturer": "SIEMENS",
    "model": "Prisma",
    "slice_thickness_mm": 1.0,
    "pixel_spacing_mm": [1.0, 1.0],
    "kvp": None,
    "field_strength_t": 3.0,
    "contrast": False,
    "body_part": "HEAD",
    "series_description": "t1_mprage_sag_p2_iso",
    "images": 4,
    "files": 4,
    "exam_year": 2025,
    "varies": [],
    "withheld": [],
    "suggested_imaging_item": {"modality": "mr", "contrast": "none", "slice_thickness_mm": 1.0},
}


def without_fingerprints(result: dict) -> list[dict]:
    return [{k: v for k, v in s.items() if k != "fingerprint"} for s in result["series"]]


def refusal(source, **options) -> str:
    with pytest.raises(DicomError) as caught:
        read_dicom(source, **options)
    return str(caught.value)


class CountingFile(io.FileIO):
    """A file that counts the bytes read from it."""

    bytes_read = 0

    def read(self, size=-1):
        data = super().read(size)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer):
        count = super().readinto(buffer)
        self.bytes_read += count or 0
        return count


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    return write_zip_bomb(tmp_path_factory.mktemp("bomb") / "series.zip")


# --- What comes out ---------------------------------------------------------------


def test_a_study_folder_gives_one_summary_per_series_and_skips_other_files(tmp_path):
    result = read_dicom(write_study(tmp_path / "study"))
    assert result["source"] == "folder"
    assert result["files"] == 10
    assert result["skipped_files"] == 1
    assert without_fingerprints(result) == [CT_SERIES, MR_SERIES]


def test_a_zip_of_the_study_gives_the_same_summary_as_the_folder(tmp_path):
    folder = write_study(tmp_path / "study")
    from_zip = read_dicom(zip_folder(folder, tmp_path / "study.zip", prefix="EXPORT/"))
    assert from_zip["source"] == "zip"
    assert from_zip["series"] == read_dicom(folder)["series"]


def test_a_single_file_is_one_series_of_one_image(tmp_path):
    path = save(mr_slice(1), tmp_path / "MR000001")
    result = read_dicom(path)
    assert result["source"] == "file"
    assert result["files"] == 1
    assert without_fingerprints(result) == [{**MR_SERIES, "images": 1, "files": 1}]


def test_bytes_and_open_files_are_read_like_paths(tmp_path):
    folder = write_study(tmp_path / "study")
    archive = zip_folder(folder, tmp_path / "study.zip")
    expected = read_dicom(archive)
    assert read_dicom(archive.read_bytes(), name="study.zip") == expected
    with archive.open("rb") as handle:
        assert read_dicom(handle, name="study.zip") == expected
    one = folder / "S0003" / "IM0001.dcm"
    assert read_dicom(one.read_bytes(), name="IM0001.dcm") == read_dicom(one)


def test_the_fingerprint_is_a_keyed_hash_of_the_series_uid(tmp_path, settings):
    result = read_dicom(write_study(tmp_path / "study"))
    ct, mr = (series["fingerprint"] for series in result["series"])
    assert len(ct) == 64 and int(ct, 16) >= 0
    assert ct != mr
    assert ct != hashlib.sha256(dicom.CT_SERIES_UID.encode()).hexdigest()
    assert read_dicom(tmp_path / "study")["series"][0]["fingerprint"] == ct
    settings.SECRET_KEY = "another-installation-" + "y" * 40
    assert read_dicom(tmp_path / "study")["series"][0]["fingerprint"] != ct


def test_an_enhanced_multiframe_ct_counts_its_frames_and_reads_the_shared_spacing(tmp_path):
    result = read_dicom(save(enhanced_ct(frames=40), tmp_path / "enhanced.dcm"))
    (series,) = result["series"]
    assert series["images"] == 40
    assert series["files"] == 1
    assert series["slice_thickness_mm"] == 1.0
    assert series["pixel_spacing_mm"] == [0.7, 0.7]
    assert series["contrast"] is True
    assert series["suggested_imaging_item"] == {
        "modality": "ct",
        "contrast": "iv_contrast",
        "slice_thickness_mm": 1.0,
    }


def test_a_compressed_series_is_read_without_decoding_its_pixels(tmp_path):
    for number in (1, 2, 3):
        save(compressed_ct_slice(number), tmp_path / "rle" / f"IM{number}")
    (series,) = read_dicom(tmp_path / "rle")["series"]
    assert series["images"] == 3
    assert series["suggested_modality"] == "cardiac_ct"


def test_copies_of_the_same_image_count_once(tmp_path):
    write_ct_series(tmp_path / "ct")
    shutil.copy(tmp_path / "ct" / "IM0002.dcm", tmp_path / "ct" / "IM0002 (copy).dcm")
    (series,) = read_dicom(tmp_path / "ct")["series"]
    assert series["files"] == 7
    assert series["images"] == 6


def test_a_value_that_differs_within_a_series_is_left_out_and_named(tmp_path):
    write_ct_series(tmp_path / "ct")
    save(ct_slice(7, SliceThickness="1.5"), tmp_path / "ct" / "IM0007.dcm")
    (series,) = read_dicom(tmp_path / "ct")["series"]
    assert series["slice_thickness_mm"] is None
    assert series["varies"] == ["slice_thickness_mm"]
    assert series["suggested_imaging_item"] == {"modality": "cardiac_ct", "contrast": "iv_contrast"}


def test_a_slice_thickness_the_dictionary_would_refuse_is_not_suggested(tmp_path):
    (series,) = read_dicom(save(ct_slice(1, SliceThickness="12"), tmp_path / "a.dcm"))["series"]
    assert series["slice_thickness_mm"] == 12.0
    assert "slice_thickness_mm" not in series["suggested_imaging_item"]


def test_only_the_study_year_comes_through(tmp_path):
    result = read_dicom(save(ct_slice(1), tmp_path / "a.dcm"))
    assert result["series"][0]["exam_year"] == 2025
    assert "20250314" not in json.dumps(result)
    undated = read_dicom(save(ct_slice(1, StudyDate=None), tmp_path / "b.dcm"))
    assert undated["series"][0]["exam_year"] is None


@pytest.mark.parametrize(
    "agent, route, contrast, code",
    [
        ("Omnipaque 350", "IV", True, "iv_contrast"),
        ("Iopamidol", None, True, "iv_contrast"),
        ("Gastrografin", "ORAL", True, "intra_articular_or_other"),
        ("Gadoterate", "INTRA-ARTICULAR", True, "intra_articular_or_other"),
        ("", None, False, "none"),
        (None, None, False, "none"),
    ],
)
def test_contrast_is_only_what_the_header_says(tmp_path, agent, route, contrast, code):
    ds = ct_slice(1, ContrastBolusAgent=agent, ContrastBolusRoute=route)
    (series,) = read_dicom(save(ds, tmp_path / "a.dcm"))["series"]
    assert series["contrast"] is contrast
    assert series["suggested_imaging_item"]["contrast"] == code


@pytest.mark.parametrize(
    "modality, description, body_part, agent, code",
    [
        ("CT", "Thorax 1.0 Br40", "CHEST", None, "ct"),
        ("CT", "Thorax 1.0 Br40", "CHEST", "Omnipaque 350", "ct"),
        ("CT", "CTA_Aorta 1.0 Bv36", "CHEST", "Omnipaque 350", "cta"),
        ("CT", "Angio Run-off 1.0", "LEG", "Omnipaque 350", "cta"),
        ("CT", "CTA Aorta (no contrast given)", "CHEST", None, "ct"),
        ("CT", "CorCTA 0.6 Bv40 70%", "CHEST", "Omnipaque 350", "cta"),
        ("CT", "CCTA 0.6 Bv40 70%", "CHEST", "Omnipaque 350", "cardiac_ct"),
        ("CT", "Cor 3.0 Br40", "CHEST", "Omnipaque 350", "ct"),
        ("CT", "Calcium Score 3.0", "HEART", None, "ct"),
        ("CT", "Thorax 0.75", "HEART", "Iopromide", "cardiac_ct"),
        ("CT", "Coronaries 0.6", "", "Iopromide", "cardiac_ct"),
        ("MR", "t1_mprage_sag_p2_iso", "HEAD", None, "mr"),
        ("MR", "tof_3d_multi-slab", "HEAD", None, "mra"),
        ("MR", "CE-MRA carotids", "NECK", "Gadobutrol", "mra"),
        ("MR", "fl3d_angio_coronal", "ABDOMEN", "Gadobutrol", "mra"),
        ("US", "Liver 3D", "ABDOMEN", None, "us_3d"),
        ("US", "3D TEE mitral valve", "HEART", None, "echocardiography_3d"),
        ("PT", "PET WB AC", "WHOLEBODY", None, "pet_ct"),
        ("NM", "SPECT Myocardial perfusion", "HEART", None, "spect"),
        ("XA", "3D rotational angio", "HEAD", "Iodixanol", "other"),
        ("OT", "Screen capture", "", None, "other"),
    ],
)
def test_the_modality_suggestion_follows_the_header_honestly(
    tmp_path, modality, description, body_part, agent, code
):
    ds = any_image(
        modality,
        SeriesDescription=description,
        BodyPartExamined=body_part,
        ContrastBolusAgent=agent,
    )
    (series,) = read_dicom(save(ds, tmp_path / "a.dcm"))["series"]
    assert series["modality"] == modality
    assert series["suggested_modality"] == code
    assert series["suggested_imaging_item"]["modality"] == code


@pytest.mark.parametrize(
    "charset, description",
    [
        ("ISO_IR 100", "Thorax nativ Übersicht"),
        ("ISO_IR 192", "Грудная клетка 1.0"),
        (None, "Chest 1.0"),
    ],
)
def test_text_is_decoded_with_the_files_character_set(tmp_path, charset, description):
    ds = ct_slice(1, SpecificCharacterSet=charset, SeriesDescription=description)
    (series,) = read_dicom(save(ds, tmp_path / "a.dcm"))["series"]
    assert series["series_description"] == description


def test_a_dicomdir_in_a_folder_is_skipped(tmp_path):
    write_ct_series(tmp_path / "cd" / "IMAGES")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MediaStorageDirectoryStorage
    meta.MediaStorageSOPInstanceUID = "2.25.4242"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    directory = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    directory.FileSetID = "EXPORT"
    directory.DirectoryRecordSequence = []
    save(directory, tmp_path / "cd" / "DICOMDIR")
    result = read_dicom(tmp_path / "cd")
    assert (result["files"], result["skipped_files"]) == (6, 1)
    assert refusal(tmp_path / "cd" / "DICOMDIR") == (
        f"{tmp_path / 'cd' / 'DICOMDIR'}: a DICOMDIR only lists other files; "
        "send the folder or a ZIP"
    )


def test_a_large_pixel_payload_is_fine_and_never_read(tmp_path):
    frames = 80
    ds = enhanced_ct(frames=1)
    ds.NumberOfFrames = frames
    ds.Rows = ds.Columns = 512
    ds.PixelData = bytes(512 * 512 * 2 * frames)  # 40 MB, under the 50 MB limit
    path = save(ds, tmp_path / "enhanced.dcm")
    with CountingFile(path) as handle:
        (series,) = read_dicom(handle, name="enhanced.dcm")["series"]
        assert handle.bytes_read < 64 * 1024
    assert series["images"] == frames


# --- What never comes out -----------------------------------------------------------


def test_planted_patient_details_never_reach_the_result_or_the_logs(tmp_path, caplog):
    folder = write_study(tmp_path / "study")
    save(enhanced_ct(), folder / "S0007" / "E0001")
    save(compressed_ct_slice(7), folder / "S0003" / "IM0007.dcm")
    archive = zip_folder(folder, tmp_path / "study.zip")
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="pydicom")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = [read_dicom(folder), read_dicom(archive), read_dicom(archive.read_bytes())]
    output = json.dumps(results)
    said = caplog.text + "\n".join(str(w.message) for w in caught)
    for planted in planted_strings():
        assert planted not in output, planted
        assert planted not in said, planted
    assert "registry3d.intake.dicom" in caplog.text  # the reader does log, just not these


def test_malformed_identifying_values_are_not_quoted_by_the_parser(tmp_path, caplog):
    # pydicom's validation warnings quote a bad value; the reader must never ask for one.
    ds = ct_slice(1)
    bad = {
        0x00080020: ("DA", b"2025-03-14"),  # StudyDate in the wrong format
        0x0020000E: ("UI", b"2.25.0099PLANTBADUID"),  # SeriesInstanceUID
        0x00080018: ("UI", b"2.25.0099PLANTBADSOP"),  # SOPInstanceUID
        0x00100030: ("DA", b"12/03/1947"),  # PatientBirthDate
        0x00180050: ("DS", b"0,75"),  # SliceThickness with a decimal comma
    }
    for tag, (vr, value) in bad.items():
        ds[tag] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # writing them warns, as it should
        path = save(ds, tmp_path / "bad.dcm")
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = read_dicom(path)
    said = caplog.text + "\n".join(str(w.message) for w in caught) + json.dumps(result)
    for planted in ("2025-03-14", "PLANTBADUID", "PLANTBADSOP", "12/03/1947", *planted_strings()):
        assert planted not in said, planted
    (series,) = result["series"]
    assert series["exam_year"] == 2025
    assert series["slice_thickness_mm"] is None
    assert f"{path}: SliceThickness is not a number; left out" in caplog.text


def test_refusals_of_files_full_of_patient_details_name_only_the_file(tmp_path):
    folder = write_study(tmp_path / "study")
    path = folder / "S0003" / "IM0004.dcm"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    message = refusal(folder)
    assert message == f"{path}: the DICOM file is truncated; copy it again from the source"
    for planted in planted_strings():
        assert planted not in message


# --- Bad input -------------------------------------------------------------------------


def test_a_file_that_is_not_dicom_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Patient notes, not an image.\n" * 10)
    assert refusal(path) == (
        f"{path}: not a DICOM file (no DICM marker at byte 128) and not a ZIP of DICOM files"
    )
    assert refusal(b"tiny", name="upload.dcm") == (
        "upload.dcm: not a DICOM file (no DICM marker at byte 128) and not a ZIP of DICOM files"
    )


def test_a_missing_path_is_refused(tmp_path):
    assert refusal(tmp_path / "nowhere") == f"{tmp_path / 'nowhere'}: no such file or folder"


def _pixel_data_at(data: bytes) -> int:
    return data.index(b"\xe0\x7f\x10\x00")


@pytest.mark.parametrize(
    "make, cut",
    [
        (ct_slice, lambda data: len(data) - 1000),  # inside the pixel data
        (ct_slice, lambda data: len(data) - 1),  # one byte short
        (ct_slice, lambda data: _pixel_data_at(data)),  # the pixel data is missing
        (ct_slice, lambda data: 700),  # inside the header
        (compressed_ct_slice, lambda data: len(data) - 500),  # inside a compressed frame
        (compressed_ct_slice, lambda data: len(data) - 8),  # no end-of-frames marker
        (mr_slice, lambda data: 140),  # inside the file meta information
    ],
)
def test_a_truncated_file_is_refused_by_name(tmp_path, make, cut):
    path = save(make(1), tmp_path / "IM0001.dcm")
    data = path.read_bytes()
    path.write_bytes(data[: cut(data)])
    assert refusal(path) == f"{path}: the DICOM file is truncated; copy it again from the source"


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    ds = ct_slice(1)
    ds.PixelData = bytes(51 * MB)
    path = save(ds, tmp_path / "IM0001.dcm")
    with CountingFile(path) as handle:
        assert refusal(handle, name="IM0001.dcm") == (
            "IM0001.dcm: the file is 51 MB, over the limit of 50 MB per DICOM file"
        )
        assert handle.bytes_read <= 132
    small = save(ct_slice(2), tmp_path / "IM0002.dcm")
    assert small.stat().st_size == 10218
    assert refusal(small, max_file_bytes=4000) == (
        f"{small}: the file is 10 KB, over the limit of 3.9 KB per DICOM file"
    )


def _with_private_element(size: int) -> Dataset:
    ds = ct_slice(1)
    block = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
    block.add_new(0x20, "OB", bytes(size))
    return ds


def test_a_huge_private_element_is_refused_without_being_loaded(tmp_path):
    path = save(_with_private_element(20 * MB), tmp_path / "IM0001.dcm")
    tracemalloc.start()
    try:
        message = refusal(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message == (
        f"{path}: the DICOM header (everything before the pixel data) is over the limit of 16 MB"
    )
    assert peak < 5 * MB


def test_private_elements_over_their_limit_are_refused(tmp_path):
    path = save(_with_private_element(5 * MB), tmp_path / "IM0001.dcm")
    assert refusal(path) == (
        f"{path}: private elements take 5 MB, over the limit of 4 MB; "
        "remove them (anonymise) and try again"
    )
    assert read_dicom(path, max_private_bytes=6 * MB)["files"] == 1


def test_a_zip_bomb_is_refused_from_its_directory_without_inflating_it(bomb):
    info = zipfile.ZipFile(bomb).getinfo("CT/IM0003.dcm")
    assert info.file_size == 200 * MB
    assert info.compress_size < 300 * 1024
    ratio = info.file_size / info.compress_size
    started = time.perf_counter()
    tracemalloc.start()
    try:
        with CountingFile(bomb) as handle:
            message = refusal(handle, name="series.zip")
            bytes_read = handle.bytes_read
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message == (
        f"series.zip: CT/IM0003.dcm is compressed {ratio:,.0f}:1, over the limit of 100:1; "
        "refused as a possible ZIP bomb"
    )
    # The directory and end record only: less than half the compressed zeros.
    assert bytes_read < info.compress_size / 2
    assert peak < 5 * MB
    assert time.perf_counter() - started < 2


def test_a_zip_that_would_expand_over_the_total_limit_is_refused(bomb):
    assert refusal(bomb, max_ratio=10_000, max_total_bytes=100 * MB) == (
        f"{bomb}: the ZIP would expand to 200 MB, over the limit of 100 MB"
    )


def test_a_zip_with_too_many_entries_is_refused(tmp_path):
    target = tmp_path / "many.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for n in range(30):
            archive.writestr(f"x/{n}", b"")
    assert refusal(target, max_files=20) == (
        f"{target}: the ZIP has 30 entries, over the limit of 20; "
        "send one study or series at a time"
    )


def test_a_zip64_directory_of_millions_of_entries_is_refused_before_it_is_parsed(tmp_path):
    target = dicom.write_directory_bomb(tmp_path / "many.zip")
    with CountingFile(target) as handle:
        assert refusal(handle, name="many.zip") == (
            "many.zip: the ZIP has 10,000,000 entries, over the limit of 20,000; "
            "send one study or series at a time"
        )
        assert handle.bytes_read < 1024


def test_a_folder_with_too_many_files_is_refused(tmp_path):
    write_ct_series(tmp_path / "ct")
    assert refusal(tmp_path / "ct", max_files=4) == (
        f"{tmp_path / 'ct'}: the folder has more than 4 files; send one study or series at a time"
    )


@pytest.mark.parametrize(
    "name",
    ["../evil.dcm", "/etc/evil.dcm", "CT/../../evil.dcm", "..\\evil.dcm", "C:/evil.dcm"],
)
def test_a_zip_with_a_path_traversal_name_is_refused(tmp_path, name):
    target = tmp_path / "series.zip"
    data = dicom._dicom_bytes(ct_slice(1))
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("CT/IM0001.dcm", data)
        archive.writestr(name, data)
    assert refusal(target) == (
        f"{target}: unsafe name {name!r} in the ZIP; names must be relative and without '..'"
    )


def _patch_zip(path: Path, offset_local: int, offset_central: int, value: bytes) -> None:
    """Change the same field of the local and central headers of the only member."""
    data = bytearray(path.read_bytes())
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    data[local + offset_local : local + offset_local + len(value)] = value
    data[central + offset_central : central + offset_central + len(value)] = value
    path.write_bytes(bytes(data))


def test_an_encrypted_zip_is_refused(tmp_path):
    target = tmp_path / "series.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("CT/IM0001.dcm", dicom._dicom_bytes(ct_slice(1)))
    _patch_zip(target, 6, 8, b"\x01\x00")  # general purpose flag: encrypted
    assert refusal(target) == (
        f"{target}: CT/IM0001.dcm is encrypted; send the ZIP without a password"
    )


def test_a_zip_compressed_with_an_unsupported_method_is_refused(tmp_path):
    target = tmp_path / "series.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("CT/IM0001.dcm", dicom._dicom_bytes(ct_slice(1)))
    _patch_zip(target, 8, 10, b"\x09\x00")  # compression method: Deflate64
    assert refusal(target) == (
        f"{target}: CT/IM0001.dcm: compressed with a method this reader does not support; "
        "zip it again with the standard (deflate) method"
    )


def test_a_damaged_zip_is_refused(tmp_path):
    target = tmp_path / "series.zip"
    target.write_bytes(b"PK\x03\x04" + bytes(500))
    assert refusal(target) == f"{target}: not a readable ZIP file"


def test_a_truncated_member_of_a_zip_is_named_inside_the_zip(tmp_path):
    data = dicom._dicom_bytes(ct_slice(1))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("CT/IM0001.dcm", data[:-100])
    assert refusal(buffer.getvalue(), name="upload.zip") == (
        "upload.zip: CT/IM0001.dcm: the DICOM file is truncated; copy it again from the source"
    )


def test_a_zip_with_no_dicom_in_it_is_refused(tmp_path):
    target = tmp_path / "photos.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("report.pdf", b"%PDF-1.7\n" + bytes(300))
        archive.writestr("viewer/readme.txt", b"Open the viewer.\n")
    assert refusal(target) == f"{target}: no DICOM files in the ZIP (looked at 2 other files)"
    empty = tmp_path / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    assert refusal(empty) == f"{empty}: no DICOM files in the ZIP (looked at 0 other files)"


def test_a_folder_with_no_dicom_in_it_is_refused(tmp_path):
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "README.TXT").write_text("Nothing here.\n")
    assert refusal(tmp_path / "export") == (
        f"{tmp_path / 'export'}: no DICOM files in the folder (looked at 1 other file)"
    )
    (tmp_path / "empty").mkdir()
    assert refusal(tmp_path / "empty") == (
        f"{tmp_path / 'empty'}: no DICOM files in the folder (looked at 0 other files)"
    )


def test_a_deflated_dicom_file_is_refused_rather_than_inflated(tmp_path):
    ds = mr_slice(1, transfer_syntax="1.2.840.10008.1.2.1.99")
    path = save(ds, tmp_path / "MR000001")
    assert refusal(path) == (
        f"{path}: deflated DICOM (transfer syntax 1.2.840.10008.1.2.1.99) is not supported; "
        "export the series uncompressed or with image compression"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_in_a_folder_is_named(tmp_path):
    paths = write_ct_series(tmp_path / "ct", count=2)
    paths[1].chmod(0)
    try:
        assert refusal(tmp_path / "ct") == f"{paths[1]}: cannot be read (Permission denied)"
    finally:
        paths[1].chmod(0o644)
