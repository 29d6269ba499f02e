"""Write real DICOM files with pydicom, with patient details planted in them.

The headers look like what Siemens scanners write for a CT angiogram and a
3 T brain MR, and carry recognisable identifying values in every field the
registry must never pass on, so a test can search the output for them.
"""

import random
import struct
import sys
import zipfile
from array import array
from pathlib import Path

from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    EnhancedCTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    NuclearMedicineImageStorage,
    PositronEmissionTomographyImageStorage,
    RLELossless,
    SecondaryCaptureImageStorage,
    UltrasoundMultiFrameImageStorage,
    XRayAngiographicImageStorage,
)

# Every value here must stay out of results, logs and messages.
STUDY_UID = "2.25.271828182845904523536028747135266249"
CT_SERIES_UID = "2.25.314159265358979323846264338327950288"
MR_SERIES_UID = "2.25.161803398874989484820458683436563811"
FRAME_OF_REFERENCE_UID = "2.25.141421356237309504880168872420969807"
PLANTED = {
    "PatientName": "PLANTEDNAME^Zelda^Quinn",
    "PatientID": "PLANTID8812345",
    "PatientBirthDate": "19470312",
    "OtherPatientIDs": "PLANTOTHERID77",
    "PatientAddress": "12 Plantedstreet, Hiddenville",
    "PatientTelephoneNumbers": "555-0199-PLANT",
    "AccessionNumber": "PLANTACC0077",
    "StudyID": "PLANTSTUDY9",
    "InstitutionName": "Plantedville Memorial Hospital",
    "InstitutionAddress": "1 Secret Plaza, Plantedville",
    "InstitutionalDepartmentName": "PLANTDEPT Radiology",
    "StationName": "PLANTSTATION",
    "DeviceSerialNumber": "PLANTSERIAL4411",
    "ReferringPhysicianName": "PLANTREF^Doctor",
    "PerformingPhysicianName": "PLANTPERF^Doctor",
    "OperatorsName": "PLANTOP^Tech",
    "NameOfPhysiciansReadingStudy": "PLANTREADER^Doctor",
    "PhysiciansOfRecord": "PLANTRECORD^Doctor",
    "RequestingPhysician": "PLANTREQ^Doctor",
    "ImageComments": "PLANTIMAGECOMMENT patient was anxious",
    "StudyComments": "PLANTSTUDYCOMMENT call daughter",
    "PatientComments": "PLANTPATIENTCOMMENT allergic to shellfish",
    "AdditionalPatientHistory": "PLANTHISTORY prior sternotomy",
    "RequestedProcedureDescription": "PLANTREQUESTED CTA for Zelda",
    "StudyDate": "20250314",
    "StudyTime": "101532",
}
UIDS = [STUDY_UID, CT_SERIES_UID, MR_SERIES_UID, FRAME_OF_REFERENCE_UID]
PRIVATE_CREATOR = "PLANTED VENDOR 1.0"
PRIVATE_VALUE = "PLANTPRIVATE Zelda Quinn 8812345"


def planted_strings() -> list[str]:
    """Each planted value and, for person names, each part of it."""
    strings = set(UIDS) | {PRIVATE_VALUE, PRIVATE_CREATOR}
    for value in PLANTED.values():
        strings.add(value)
        strings.update(part for part in value.split("^") if len(part) > 3)
    # The digits of the UIDs without their root, in case one were cut.
    strings.update(uid.removeprefix("2.25.")[:20] for uid in UIDS)
    return sorted(strings)


def image(
    modality: str,
    sop_class: str,
    series_uid: str,
    number: int,
    *,
    rows: int = 64,
    columns: int = 64,
    pixel_data: bytes | None = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
    **attributes,
) -> FileDataset:
    """One image of a series, with the planted details and equipment filled in."""
    instance_uid = f"{series_uid}.{number}"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = instance_uid
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = "2.25.9876543210"
    meta.ImplementationVersionName = "SYNGO_VB20"
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = instance_uid
    ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = PLANTED["StudyDate"]
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = "101745.123000"
    ds.Modality = modality
    ds.Manufacturer = "SIEMENS"
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = FRAME_OF_REFERENCE_UID
    ds.SeriesNumber = 3
    ds.InstanceNumber = number
    ds.PatientSex = "F"
    ds.PatientAge = "078Y"
    ds.PatientWeight = "61"
    for keyword, value in PLANTED.items():
        setattr(ds, keyword, value)
    ds.ImagePositionPatient = [-125.0, -125.0, -50.0 + number]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SliceLocation = -50.0 + number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    block = ds.private_block(0x0019, PRIVATE_CREATOR, create=True)
    block.add_new(0x10, "LO", PRIVATE_VALUE)
    for keyword, value in attributes.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    if pixel_data is None:
        pixel_data = pixels(rows, columns, seed=number)
    ds.PixelData = pixel_data
    return ds


def pixels(rows: int, columns: int, frames: int = 1, seed: int = 0) -> bytes:
    """12-bit little-endian pixels: a noisy disc of soft tissue in air."""
    rng = random.Random(seed)
    radius = min(rows, columns) * 0.4
    values = array("H")
    for _ in range(frames):
        for y in range(rows):
            for x in range(columns):
                inside = (x - columns / 2) ** 2 + (y - rows / 2) ** 2 < radius**2
                values.append((1064 if inside else 24) + rng.randrange(0, 40))
    if sys.byteorder == "big":
        values.byteswap()
    return values.tobytes()


def ct_slice(number: int, series_uid: str = CT_SERIES_UID, **attributes) -> FileDataset:
    """A slice of a coronary CT angiogram on a Siemens SOMATOM Force."""
    values = {
        "ManufacturerModelName": "SOMATOM Force",
        "SoftwareVersions": "syngo CT VB20A",
        "SeriesDescription": "CorCTA 0.75 Bv40 75%",
        "ProtocolName": "CorCTA_ECG",
        "BodyPartExamined": "HEART",
        "KVP": "100",
        "SliceThickness": "0.75",
        "PixelSpacing": ["0.390625", "0.390625"],
        "ConvolutionKernel": ["Bv40d", "3"],
        "XRayTubeCurrent": 412,
        "ContrastBolusAgent": "Omnipaque 350",
        "ContrastBolusRoute": "IV",
        "ContrastBolusVolume": "80",
        "RescaleIntercept": "-1024",
        "RescaleSlope": "1",
        "WindowCenter": "300",
        "WindowWidth": "800",
    }
    values.update(attributes)
    return image("CT", CTImageStorage, series_uid, number, **values)


def mr_slice(number: int, series_uid: str = MR_SERIES_UID, **attributes) -> FileDataset:
    """A slice of a 3 T T1 MPRAGE of the head on a Siemens MAGNETOM Prisma."""
    values = {
        "ManufacturerModelName": "Prisma",
        "SoftwareVersions": "syngo MR E11",
        "SeriesDescription": "t1_mprage_sag_p2_iso",
        "ProtocolName": "t1_mprage_sag_p2_iso",
        "BodyPartExamined": "HEAD",
        "SeriesNumber": 5,
        "MagneticFieldStrength": "3",
        "SliceThickness": "1",
        "PixelSpacing": ["1", "1"],
        "ScanningSequence": ["GR", "IR"],
        "SequenceVariant": ["SK", "SP", "MP"],
        "MRAcquisitionType": "3D",
        "RepetitionTime": "2300",
        "EchoTime": "2.98",
        "FlipAngle": "9",
        "ImagingFrequency": "123.2",
    }
    values.update(attributes)
    return image("MR", MRImageStorage, series_uid, number, **values)


SOP_CLASSES = {
    "CT": CTImageStorage,
    "MR": MRImageStorage,
    "US": UltrasoundMultiFrameImageStorage,
    "PT": PositronEmissionTomographyImageStorage,
    "NM": NuclearMedicineImageStorage,
    "XA": XRayAngiographicImageStorage,
    "OT": SecondaryCaptureImageStorage,
}


def any_image(modality: str, number: int = 1, **attributes) -> FileDataset:
    """An image of any modality, with only the attributes given."""
    return image(modality, SOP_CLASSES[modality], f"2.25.55{number}", number, **attributes)


def save(ds: FileDataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_ct_series(folder: Path, count: int = 6, **attributes) -> list[Path]:
    return [save(ct_slice(n, **attributes), folder / f"IM{n:04d}.dcm") for n in range(1, count + 1)]


def write_mr_series(folder: Path, count: int = 4, **attributes) -> list[Path]:
    # Siemens exports often have no file extension.
    return [save(mr_slice(n, **attributes), folder / f"MR{n:06d}") for n in range(1, count + 1)]


def write_study(folder: Path) -> Path:
    """A study folder as a PACS export writes it: CT and MR series and a stray file."""
    write_ct_series(folder / "S0003")
    write_mr_series(folder / "S0005")
    (folder / "README.TXT").write_text("Exported by the PACS viewer.\n")
    return folder


def zip_folder(folder: Path, target: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(folder).as_posix())
    return target


def write_zip_bomb(target: Path, megabytes: int = 200) -> Path:
    """A CT series with one member of zeros that deflates about 1000:1.

    The zeros are written through a stream, a megabyte at a time, so making
    the bomb never holds it in memory either.
    """
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for n in (1, 2):
            archive.writestr(f"CT/IM{n:04d}.dcm", _dicom_bytes(ct_slice(n)))
        chunk = bytes(1024 * 1024)
        with archive.open("CT/IM0003.dcm", "w", force_zip64=True) as member:
            for _ in range(megabytes):
                member.write(chunk)
    return target


def write_directory_bomb(target: Path, entries: int = 10_000_000) -> Path:
    """A ZIP whose ZIP64 end records claim millions of entries.

    Opening it with ``zipfile`` would try to read and parse a central
    directory of that many entries; the reader must refuse it from the end
    records alone.
    """
    body = b"PK\x03\x04" + bytes(26)
    directory_size = 46 * entries
    zip64_end = struct.pack(
        "<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, directory_size, 30
    )
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, len(body), 1)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    target.write_bytes(body + zip64_end + locator + end)
    return target


def _dicom_bytes(ds: FileDataset) -> bytes:
    from io import BytesIO

    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def rle_frame(pixels: bytes, rows: int, columns: int) -> bytes:
    """RLE Lossless (DICOM PS3.5 annex G) of one 16-bit frame, as literal runs.

    Segment 1 holds the high bytes, segment 2 the low bytes; each row of a
    segment is PackBits literal runs of at most 128 bytes.
    """
    high = pixels[1::2]
    low = pixels[0::2]
    segments = []
    for plane in (high, low):
        out = bytearray()
        for start in range(0, rows * columns, columns):
            row = plane[start : start + columns]
            for at in range(0, len(row), 128):
                run = row[at : at + 128]
                out.append(len(run) - 1)
                out += run
        if len(out) % 2:
            out.append(0)
        segments.append(bytes(out))
    offsets = [64, 64 + len(segments[0])]
    header = (2).to_bytes(4, "little") + b"".join(o.to_bytes(4, "little") for o in offsets)
    header += bytes(64 - len(header))
    return header + b"".join(segments)


def compressed_ct_slice(number: int) -> FileDataset:
    """A CT slice whose pixel data is encapsulated (RLE Lossless)."""
    rows = columns = 64
    frame = pixels(rows, columns, seed=number)
    ds = ct_slice(number, transfer_syntax=RLELossless)
    ds.PixelData = encapsulate([rle_frame(frame, rows, columns)])
    ds["PixelData"].VR = "OB"
    return ds


def enhanced_ct(frames: int = 40) -> FileDataset:
    """An enhanced (multi-frame) CT: spacing and thickness in shared groups."""
    rows = columns = 32
    ds = image(
        "CT",
        EnhancedCTImageStorage,
        "2.25.777001",
        1,
        rows=rows,
        columns=columns,
        pixel_data=pixels(rows, columns, frames, seed=7),
        ManufacturerModelName="SOMATOM X.ceed",
        SeriesDescription="Thorax 1.0 Br40",
        BodyPartExamined="CHEST",
        KVP="120",
        NumberOfFrames=frames,
    )
    measures = Dataset()
    measures.SliceThickness = "1"
    measures.PixelSpacing = ["0.7", "0.7"]
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    agent = Dataset()
    agent.CodeValue = "C-B0322"
    agent.CodingSchemeDesignator = "SRT"
    agent.CodeMeaning = "Iohexol"
    ds.ContrastBolusAgentSequence = Sequence([agent])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    return ds
