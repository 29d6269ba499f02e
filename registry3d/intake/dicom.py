"""Read DICOM headers: the imaging details a case can take from its series.

``read_dicom`` takes one DICOM file, a folder of them (searched
recursively) or a ZIP of a series, reads headers only, groups the files
into series and returns, per series, what the case form's imaging item
needs. It never returns or logs what identifies the patient, the staff or
the institution: no names, IDs, birth dates, accession numbers, UIDs (the
series UID only as a keyed hash, for de-duplication), institution or
free-text comments; of the dates, only the study year.

The few text attributes it does return (modality, manufacturer, scanner
model, body part, series description) are typed at the scanner and can
hold anything, so each goes through the identifier screen: one that looks
like an identifier is returned as null, and the series' ``withheld`` names
the attribute and the kind ("series_description: looks like a person's
name"), never the value. The names of the input, of files in a folder and of
ZIP members are screened too, and replaced in messages by
``[file name withheld]``.

Hostile input is refused before it costs memory or time:

1. A ZIP is checked from its directory before any member is read: the
   number of entries (from the end record, before the directory is
   parsed), unsafe names (absolute or with ".."), encryption, the total
   uncompressed size and each large member's compression ratio. Members
   are then read as streams, never extracted to disk.
2. Each DICOM file is checked for its size, then parsed up to the pixel
   data through a reader that refuses to go past the header limit, so a
   huge private element is never loaded.
3. The private elements' total is checked, and the end of the file
   against the pixel data's declared length, so a truncated file is named
   even though its pixels are never read.
"""

import io
import logging
import math
import os
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.utils.crypto import salted_hmac
from pydicom import dcmread
from pydicom.charset import decode_bytes
from pydicom.datadict import tag_for_keyword
from pydicom.sequence import Sequence
from pydicom.uid import UID
from typing_extensions import TypedDict  # pydantic (the API's schemas) needs this one

from registry3d.intake import names
from registry3d.lib.text_screen import find_identifier

logger = logging.getLogger(__name__)

KB = 1024
MB = 1024 * KB
GB = 1024 * MB

MAX_FILE_BYTES = 50 * MB  # one DICOM file, pixel data included
MAX_HEADER_BYTES = 16 * MB  # everything before the pixel data
MAX_PRIVATE_BYTES = 4 * MB  # the values of all private elements of a file
MAX_TOTAL_BYTES = 2 * GB  # all members of a ZIP, uncompressed
MAX_RATIO = 100  # uncompressed size / compressed size of one ZIP member
RATIO_MIN_BYTES = 1 * MB  # smaller members are not ratio-checked: tiny files vary
MAX_FILES = 20_000  # files in a folder or entries in a ZIP

FINGERPRINT_SALT = "registry3d.intake.dicom.series"
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
PIXEL_TAGS = {0x7FE00010, 0x7FE00009, 0x7FE00008}
UNDEFINED_LENGTH = 0xFFFFFFFF
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")

# Words in SeriesDescription (and body parts) that say what a series is. A
# suggestion is only as good as the header: without such a word, CT stays ct.
CARDIAC_WORDS = {"cardiac", "cardio", "heart", "ccta", "coronary", "coronaries", "tavi", "tavr"}
CARDIAC_BODY_PARTS = {"HEART", "CORONARYARTERY", "CARDIAC"}
ANGIO_WORDS = {"cta", "mra", "angio", "angiography", "runoff", "tof"}
ECHO_WORDS = {"echo", "echocardiography", "echocardiogram", "tte", "tee"}
IV_ROUTES = {"IV", "I.V.", "INTRAVENOUS", "INTRAVENOUS ROUTE", "INTRAVASCULAR"}

# The text attributes a summary returns, each screened for identifiers.
TEXT_FIELDS = ("modality", "manufacturer", "model", "body_part", "series_description")
WITHHELD_NAME = "[file name withheld]"


class DicomError(Exception):
    """Raised when input cannot be read as DICOM headers within the limits."""


class _Name:
    """A file or member name, screened only when a message or log line shows it.

    Most files of a folder or ZIP are never named, so their names are not
    screened one by one up front.
    """

    __slots__ = ("_raw", "_prefix", "_text")

    def __init__(self, raw: str, prefix: str = ""):
        self._raw = raw
        self._prefix = prefix
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            self._text = self._prefix + _shown(self._raw)
        return self._text


Label = str | _Name


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = MAX_FILE_BYTES
    max_header_bytes: int = MAX_HEADER_BYTES
    max_private_bytes: int = MAX_PRIVATE_BYTES
    max_total_bytes: int = MAX_TOTAL_BYTES
    max_ratio: float = MAX_RATIO
    max_files: int = MAX_FILES


class ImagingItem(TypedDict, total=False):
    """Elements of the case's ``imaging`` group item, ready for the form."""

    modality: str
    contrast: str
    slice_thickness_mm: float


class SeriesSummary(TypedDict):
    fingerprint: str | None
    series_number: int | None
    modality: str | None
    suggested_modality: str
    manufacturer: str | None
    model: str | None
    slice_thickness_mm: float | None
    pixel_spacing_mm: list[float] | None
    kvp: float | None
    field_strength_t: float | None
    contrast: bool | None
    body_part: str | None
    series_description: str | None
    images: int
    files: int
    exam_year: int | None
    varies: list[str]
    withheld: list[str]
    suggested_imaging_item: ImagingItem


class DicomSummary(TypedDict):
    source: str
    files: int
    skipped_files: int
    series: list[SeriesSummary]


def read_dicom(
    source: str | os.PathLike | bytes | BinaryIO,
    *,
    name: str = "",
    max_file_bytes: int = MAX_FILE_BYTES,
    max_header_bytes: int = MAX_HEADER_BYTES,
    max_private_bytes: int = MAX_PRIVATE_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_ratio: float = MAX_RATIO,
    max_files: int = MAX_FILES,
) -> DicomSummary:
    """Summarise the series in a DICOM file, a folder or a ZIP (path, bytes or file).

    ``name`` is what messages call the input (an upload's file name); a
    path names itself. Files in a folder or ZIP that are not DICOM are
    skipped and counted; anything refused raises ``DicomError`` naming the
    file.
    """
    limits = Limits(
        max_file_bytes=max_file_bytes,
        max_header_bytes=max_header_bytes,
        max_private_bytes=max_private_bytes,
        max_total_bytes=max_total_bytes,
        max_ratio=max_ratio,
        max_files=max_files,
    )
    if isinstance(source, bytes | bytearray | memoryview):
        return _read_stream(io.BytesIO(source), _shown(name or "upload"), limits)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        label = _shown(name or str(path))
        if path.is_dir():
            return _read_folder(path, label, limits)
        if not path.is_file():
            raise DicomError(f"{label}: no such file or folder")
        with _open(path, label) as handle:
            return _read_stream(handle, label, limits)
    return _read_stream(source, _shown(name or "upload"), limits)


# --- Files, folders and ZIPs ----------------------------------------------------


def _open(path: Path, label: Label) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise DicomError(f"{label}: cannot be read ({exc.strerror})") from None


def _looks_like_dicom(handle: BinaryIO) -> bool:
    """Whether the file has the DICM marker after its 128-byte preamble."""
    head = handle.read(132)
    handle.seek(0)
    return len(head) == 132 and head[128:] == b"DICM"


def _read_stream(handle: BinaryIO, label: str, limits: Limits) -> DicomSummary:
    try:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(0)
        head = handle.read(132)
        handle.seek(0)
    except OSError as exc:
        raise DicomError(f"{label}: cannot be read ({exc.strerror})") from None
    if len(head) == 132 and head[128:] == b"DICM":
        header = _read_file(handle, label, size, limits)
        if header is None:
            raise DicomError(
                f"{label}: a DICOMDIR only lists other files; send the folder or a ZIP"
            )
        collector = _Collector()
        collector.add(header)
        return collector.summary("file", label, "file")
    if head[:4] in ZIP_MAGIC:
        return _read_zip(handle, label, size, limits)
    raise DicomError(
        f"{label}: not a DICOM file (no DICM marker at byte 128) and not a ZIP of DICOM files"
    )


def _read_folder(folder: Path, label: str, limits: Limits) -> DicomSummary:
    """Read every DICOM file under ``folder``, in name order; skip the others."""
    collector = _Collector()
    seen = 0

    def refuse(exc: OSError) -> None:
        raise DicomError(f"{_shown(str(exc.filename))}: cannot be read ({exc.strerror})")

    for root, dirs, files in os.walk(folder, onerror=refuse):
        dirs.sort()
        for file_name in sorted(files):
            seen += 1
            if seen > limits.max_files:
                raise DicomError(
                    f"{label}: the folder has more than {limits.max_files:,} files; "
                    "send one study or series at a time"
                )
            path = Path(root, file_name)
            if not path.is_file():  # a FIFO or a broken link would block or fail
                collector.skipped += 1
                continue
            shown = _Name(str(path))
            with _open(path, shown) as handle:
                if not _looks_like_dicom(handle):
                    logger.debug("%s: not DICOM, skipped", shown)
                    collector.skipped += 1
                    continue
                size = os.fstat(handle.fileno()).st_size
                collector.add(_read_file(handle, shown, size, limits))
    return collector.summary("folder", label, "folder")


def _read_zip(handle: BinaryIO, label: str, size: int, limits: Limits) -> DicomSummary:
    """Check the ZIP's directory against the limits, then stream its DICOM members."""
    entries = _zip_entry_count(handle, size, label)
    if entries > limits.max_files:
        raise DicomError(
            f"{label}: the ZIP has {entries:,} entries, over the limit of "
            f"{limits.max_files:,}; send one study or series at a time"
        )
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise DicomError(f"{label}: not a readable ZIP file") from None
    with archive:
        infos = archive.infolist()
        for info in infos:
            if _unsafe_name(info.filename):
                raise DicomError(
                    f"{label}: unsafe name {_shown(info.filename)!r} in the ZIP; "
                    "names must be relative and without '..'"
                )
        members = [info for info in infos if not info.is_dir()]
        for info in members:
            if info.flag_bits & 0x1:
                raise DicomError(
                    f"{label}: {_shown(info.filename)} is encrypted; "
                    "send the ZIP without a password"
                )
        total = sum(info.file_size for info in members)
        if total > limits.max_total_bytes:
            raise DicomError(
                f"{label}: the ZIP would expand to {_size(total)}, over the limit of "
                f"{_size(limits.max_total_bytes)}"
            )
        for info in members:
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size >= RATIO_MIN_BYTES and ratio > limits.max_ratio:
                raise DicomError(
                    f"{label}: {_shown(info.filename)} is compressed {ratio:,.0f}:1, over "
                    f"the limit of {limits.max_ratio:,.0f}:1; refused as a possible ZIP bomb"
                )
        collector = _Collector()
        for info in members:
            member_label = _Name(info.filename, prefix=f"{label}: ")
            try:
                member = archive.open(info)
            except NotImplementedError:
                raise DicomError(
                    f"{member_label}: compressed with a method this reader does not "
                    "support; zip it again with the standard (deflate) method"
                ) from None
            except (zipfile.BadZipFile, OSError, EOFError):
                raise DicomError(f"{member_label}: the ZIP entry is damaged") from None
            with member:
                try:
                    is_dicom = _looks_like_dicom(member)
                except (zipfile.BadZipFile, zlib.error, OSError, EOFError):
                    raise DicomError(f"{member_label}: the ZIP entry is damaged") from None
                if not is_dicom:
                    logger.debug("%s: not DICOM, skipped", member_label)
                    collector.skipped += 1
                    continue
                collector.add(_read_file(member, member_label, info.file_size, limits))
    return collector.summary("zip", label, "ZIP")


def _zip_entry_count(handle: BinaryIO, size: int, label: str) -> int:
    """Read the number of entries from the ZIP's end record (ZIP64 too).

    ``zipfile`` parses the whole central directory into memory; counting
    first refuses a directory of millions of entries before that.
    """
    tail_size = min(size, 22 + 65535)  # the end record and the longest comment
    handle.seek(size - tail_size)
    tail = handle.read(tail_size)
    handle.seek(0)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise DicomError(f"{label}: not a readable ZIP file")
    entries = int.from_bytes(tail[at + 10 : at + 12], "little")
    if entries == 0xFFFF and at >= 20 and tail[at - 20 : at - 16] == b"PK\x06\x07":
        handle.seek(int.from_bytes(tail[at - 12 : at - 4], "little"))
        record = handle.read(56)
        handle.seek(0)
        if record[:4] != b"PK\x06\x06" or len(record) < 40:
            raise DicomError(f"{label}: not a readable ZIP file")
        entries = int.from_bytes(record[32:40], "little")
    return entries


def _unsafe_name(name: str) -> bool:
    """Absolute paths, drive letters and '..' could escape a folder if extracted."""
    text = name.replace("\\", "/")
    return text.startswith("/") or bool(re.match(r"[A-Za-z]:", text)) or ".." in text.split("/")


def _shown(name: str) -> str:
    """A file or member name safe for a one-line message, unless it looks like an identifier."""
    if names.find_identifier_in_file_name(name) is not None:
        return WITHHELD_NAME
    text = "".join(c if c.isprintable() else "?" for c in name)
    return text if len(text) <= 200 else text[:200] + "…"


def _size(count: int) -> str:
    for unit, factor in (("GB", GB), ("MB", MB), ("KB", KB)):
        if count >= factor:
            return f"{count / factor:.1f}".removesuffix(".0") + f" {unit}"
    return f"{count} bytes"


# --- One file -----------------------------------------------------------------


class _TooLarge(Exception):
    """The header reader was asked to go past the header limit."""


class _Unreadable(Exception):
    """The underlying file or ZIP stream failed."""


class _Deflated(Exception):
    """pydicom asked for the rest of the file, which it does only to inflate it."""


class _HeaderReader:
    """A read-only view of a file that stops pydicom at the header limit.

    It also notes when a read asks for bytes beyond the end of the file,
    which is how a truncated header shows (pydicom returns short values
    without complaint).
    """

    def __init__(self, handle: BinaryIO, size: int, limit: int | None):
        self._handle = handle
        self.size = size
        self.limit = limit
        self.position = 0
        self.past_end = False

    def read(self, count: int | None = -1) -> bytes:
        if count is None or count < 0:
            # Only a deflated data set is read whole, then inflated without a
            # bound: a DICOM-shaped ZIP bomb. Refuse it.
            raise _Deflated
        remaining = max(self.size - self.position, 0)
        wanted = count
        available = min(wanted, remaining)
        if self.limit is not None and self.position + available > self.limit:
            raise _TooLarge
        # An 8-byte read at the very end is pydicom looking for a next element.
        if wanted > available and not (wanted == 8 and available == 0):
            self.past_end = True
        try:
            data = self._handle.read(available)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
            raise _Unreadable from exc
        self.position += len(data)
        if len(data) < available:
            self.past_end = True
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.position, os.SEEK_END: self.size}[whence]
        target = base + offset
        if self.limit is not None and target > self.limit:
            raise _TooLarge
        try:
            self._handle.seek(target)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
            raise _Unreadable from exc
        self.position = target
        return target

    def tell(self) -> int:
        return self.position


@dataclass
class _Header:
    """What one file says, already stripped of anything identifying."""

    series_uid: str | None
    instance_uid: str | None
    frames: int
    values: dict


def _read_file(handle: BinaryIO, label: Label, size: int, limits: Limits) -> _Header | None:
    """Read one DICOM file's header; None for a DICOMDIR, which describes other files."""
    if size > limits.max_file_bytes:
        raise DicomError(
            f"{label}: the file is {_size(size)}, over the limit of "
            f"{_size(limits.max_file_bytes)} per DICOM file"
        )
    truncated = f"{label}: the DICOM file is truncated; copy it again from the source"
    unreadable = f"{label}: the file cannot be read; the copy or the ZIP is damaged"
    reader = _HeaderReader(handle, size, limits.max_header_bytes)
    try:
        dataset = dcmread(reader, stop_before_pixels=True, force=False)
    except _TooLarge:
        raise DicomError(
            f"{label}: the DICOM header (everything before the pixel data) is over the "
            f"limit of {_size(limits.max_header_bytes)}"
        ) from None
    except _Unreadable:
        raise DicomError(unreadable) from None
    except _Deflated:
        raise DicomError(
            f"{label}: deflated DICOM (transfer syntax 1.2.840.10008.1.2.1.99) is not "
            "supported; export the series uncompressed or with image compression"
        ) from None
    except Exception:  # noqa: BLE001 - a hostile file can break the parser anywhere
        # The parser's message may quote a value from the file; keep it out.
        raise DicomError(
            truncated if reader.past_end else f"{label}: the DICOM header is damaged"
        ) from None
    if reader.past_end or _last_value_short(dataset):
        raise DicomError(truncated)
    private = _private_bytes(dataset)
    if private > limits.max_private_bytes:
        raise DicomError(
            f"{label}: private elements take {_size(private)}, over the limit of "
            f"{_size(limits.max_private_bytes)}; remove them (anonymise) and try again"
        )
    reader.limit = None  # the pixel data is walked, not read
    try:
        complete = _pixel_data_complete(reader, dataset)
    except _Unreadable:
        raise DicomError(unreadable) from None
    if not complete:
        raise DicomError(truncated)
    if _sop_class(dataset) == DICOMDIR_CLASS:
        return None
    return _header(dataset, label)


def _sop_class(dataset) -> UID:
    """The file's SOP class from its file meta information (read unconverted)."""
    meta = getattr(dataset, "file_meta", None)
    stored = _stored(meta, "MediaStorageSOPClassUID") if meta is not None else None
    return UID(stored.decode("ascii", errors="replace").strip("\x00 ") if stored else "")


def _last_value_short(dataset) -> bool:
    """Whether the last element read holds fewer bytes than its length says."""
    tags = list(dataset.keys())
    if not tags:
        return False
    element = dataset.get_item(tags[-1])
    value = element.value
    length = getattr(element, "length", None)
    return (
        isinstance(value, bytes)
        and length is not None
        and length != UNDEFINED_LENGTH
        and len(value) < length
    )


def _private_bytes(dataset, inside_private: bool = False) -> int:
    """Add up the value lengths of private elements, in sequences too, unconverted."""
    total = 0
    for tag in dataset.keys():
        element = dataset.get_item(tag)
        private = inside_private or tag.is_private
        value = element.value
        if isinstance(value, Sequence):
            total += sum(_private_bytes(item, private) for item in value)
        elif private and isinstance(value, bytes | str):
            total += len(value)
    return total


def _pixel_data_complete(reader: _HeaderReader, dataset) -> bool:
    """Check the file holds all the pixel data it declares, without reading it.

    pydicom leaves the reader at the pixel data element. A defined length
    must fit in the file; encapsulated (compressed) data is walked item by
    item to its end marker. An image with no pixel data at all is cut short.
    """
    if reader.tell() >= reader.size:
        return "Rows" not in dataset and "Image Storage" not in _sop_class(dataset).name
    implicit, little = dataset.original_encoding
    order = "<" if little is not False else ">"
    head = reader.read(8)
    if len(head) < 8:
        return False
    group, element = struct.unpack(f"{order}HH", head[:4])
    if (group << 16 | element) not in PIXEL_TAGS:
        return True
    if implicit:
        (length,) = struct.unpack(f"{order}I", head[4:8])
    else:
        more = reader.read(4)
        if len(more) < 4:
            return False
        (length,) = struct.unpack(f"{order}I", more)
    if length != UNDEFINED_LENGTH:
        return reader.tell() + length <= reader.size
    while True:
        item = reader.read(8)
        if len(item) < 8:
            return False
        group, element, length = struct.unpack("<HHI", item)
        if (group, element) == (0xFFFE, 0xE0DD):
            return True
        if (group, element) != (0xFFFE, 0xE000) or reader.tell() + length > reader.size:
            return False
        reader.seek(reader.tell() + length)


# --- What a header says ------------------------------------------------------------


def _header(dataset, label: Label) -> _Header:
    """Take the allowed values from a parsed header; nothing else leaves this function.

    Values are decoded here from their stored bytes rather than through
    pydicom, whose validation warnings quote a bad value (a malformed UID
    or date would otherwise end up in the logs and on standard error).
    """
    thickness = _number(dataset, "SliceThickness", label)
    spacing = _numbers(dataset, "PixelSpacing", label)
    if thickness is None or spacing is None:
        shared = _pixel_measures(dataset, label)
        if shared is not None:
            thickness = (
                thickness if thickness is not None else _number(shared, "SliceThickness", label)
            )
            spacing = spacing if spacing is not None else _numbers(shared, "PixelSpacing", label)
    contrast = bool(_text(dataset, "ContrastBolusAgent")) or _present(
        dataset, "ContrastBolusAgentSequence"
    )
    route = (_text(dataset, "ContrastBolusRoute") or "").upper()
    values = {
        "series_number": _integer(dataset, "SeriesNumber", label),
        "modality": _text(dataset, "Modality"),
        "manufacturer": _text(dataset, "Manufacturer"),
        "model": _text(dataset, "ManufacturerModelName"),
        "slice_thickness_mm": thickness,
        "pixel_spacing_mm": tuple(spacing) if spacing and len(spacing) == 2 else None,
        "kvp": _number(dataset, "KVP", label),
        "field_strength_t": _number(dataset, "MagneticFieldStrength", label),
        "contrast": contrast,
        "contrast_route_other": contrast and bool(route) and route not in IV_ROUTES,
        "body_part": _text(dataset, "BodyPartExamined"),
        "series_description": _text(dataset, "SeriesDescription"),
        "exam_year": _year(_text(dataset, "StudyDate")),
    }
    frames = _integer(dataset, "NumberOfFrames", label)
    return _Header(
        series_uid=_text(dataset, "SeriesInstanceUID"),
        instance_uid=_text(dataset, "SOPInstanceUID"),
        frames=frames if frames and frames > 0 else 1,
        values=values,
    )


def _pixel_measures(dataset, label: Label):
    """The shared pixel measures of an enhanced (multi-frame) image, if any."""
    for keyword in ("SharedFunctionalGroupsSequence", "PixelMeasuresSequence"):
        if not _present(dataset, keyword):
            return None
        try:
            items = dataset[keyword].value
        except Exception:  # noqa: BLE001 - a malformed sequence is left out, not fatal
            logger.info("%s: %s cannot be read; left out", label, keyword)
            return None
        if not items:
            return None
        dataset = items[0]
    return dataset


def _stored(dataset, keyword: str) -> bytes | None:
    """An element's value as stored in the file, unconverted; None if absent."""
    element = dataset.get_item(tag_for_keyword(keyword))
    if element is None or element.value is None:
        return None
    value = element.value
    if isinstance(value, bytes):
        return value
    if isinstance(value, list | tuple):  # converted already, e.g. a MultiValue
        return "\\".join(str(v) for v in value).encode("utf-8")
    return str(value).encode("utf-8")


def _present(dataset, keyword: str) -> bool:
    element = dataset.get_item(tag_for_keyword(keyword))
    return element is not None and bool(element.value)


def _text(dataset, keyword: str) -> str | None:
    stored = _stored(dataset, keyword)
    if stored is None:
        return None
    encodings = dataset.original_character_set or "iso8859"
    if isinstance(encodings, str):
        encodings = [encodings]
    text = decode_bytes(stored, list(encodings), set()).replace("\x00", "").strip()
    return text or None


def _numbers(dataset, keyword: str, label: Label) -> list[float] | None:
    stored = _stored(dataset, keyword)
    if stored is None:
        return None
    text = stored.decode("ascii", errors="replace").replace("\x00", "").strip()
    if not text:
        return None
    try:
        numbers = [float(part) for part in text.split("\\")]
    except ValueError:
        logger.info("%s: %s is not a number; left out", label, keyword)
        return None
    return numbers if all(math.isfinite(n) for n in numbers) else None


def _number(dataset, keyword: str, label: Label) -> float | None:
    numbers = _numbers(dataset, keyword, label)
    return numbers[0] if numbers and len(numbers) == 1 else None


def _integer(dataset, keyword: str, label: Label) -> int | None:
    number = _number(dataset, keyword, label)
    return int(number) if number is not None and number.is_integer() else None


def _year(study_date: str | None) -> int | None:
    """The year of a DA value (YYYYMMDD, or the old YYYY.MM.DD)."""
    if not study_date or not study_date[:4].isdigit():
        return None
    year = int(study_date[:4])
    return year if 1900 <= year <= 2100 else None


# --- Series ---------------------------------------------------------------------

FIELDS = (
    "series_number",
    "modality",
    "manufacturer",
    "model",
    "slice_thickness_mm",
    "pixel_spacing_mm",
    "kvp",
    "field_strength_t",
    "contrast",
    "body_part",
    "series_description",
    "exam_year",
)


@dataclass
class _Series:
    files: int = 0
    images: int = 0
    instances: set = field(default_factory=set)
    seen: dict = field(default_factory=dict)  # field -> set of values


@dataclass
class _Collector:
    series: dict = field(default_factory=dict)  # SeriesInstanceUID -> _Series
    files: int = 0
    skipped: int = 0

    def add(self, header: _Header | None) -> None:
        if header is None:
            self.skipped += 1
            return
        self.files += 1
        series = self.series.setdefault(header.series_uid, _Series())
        series.files += 1
        if header.instance_uid is None or header.instance_uid not in series.instances:
            series.images += header.frames
            if header.instance_uid is not None:
                series.instances.add(header.instance_uid)
        for key, value in header.values.items():
            series.seen.setdefault(key, set()).add(value)

    def summary(self, source: str, label: str, kind: str) -> DicomSummary:
        if not self.files:
            raise DicomError(
                f"{label}: no DICOM files in the {kind} "
                f"(looked at {self.skipped} other file{'s' if self.skipped != 1 else ''})"
            )
        found = [_summarise(uid, series) for uid, series in self.series.items()]
        found.sort(
            key=lambda s: (
                s["series_number"] is None,
                s["series_number"] or 0,
                s["modality"] or "",
                s["series_description"] or "",
                s["fingerprint"] or "",
            )
        )
        logger.debug(
            "%s: %d DICOM files in %d series, %d other files skipped",
            label,
            self.files,
            len(found),
            self.skipped,
        )
        return {
            "source": source,
            "files": self.files,
            "skipped_files": self.skipped,
            "series": found,
        }


def series_fingerprint(series_uid: str) -> str:
    """A keyed SHA-256 of a SeriesInstanceUID: stable here, useless elsewhere."""
    return salted_hmac(FINGERPRINT_SALT, series_uid, algorithm="sha256").hexdigest()


def _summarise(series_uid: str | None, series: _Series) -> SeriesSummary:
    """One value per field when the files agree; None, and the field in ``varies``, if not."""
    agreed = {}
    varies = []
    for key, values in series.seen.items():
        if len(values) == 1:
            agreed[key] = next(iter(values))
        else:
            agreed[key] = None
            if key in FIELDS:
                varies.append(key)
    spacing = agreed["pixel_spacing_mm"]
    withheld = _withhold_identifiers(agreed)
    summary: SeriesSummary = {
        "fingerprint": series_fingerprint(series_uid) if series_uid else None,
        "series_number": agreed["series_number"],
        "modality": agreed["modality"],
        "suggested_modality": agreed["suggested_modality"],
        "manufacturer": agreed["manufacturer"],
        "model": agreed["model"],
        "slice_thickness_mm": agreed["slice_thickness_mm"],
        "pixel_spacing_mm": list(spacing) if spacing else None,
        "kvp": agreed["kvp"],
        "field_strength_t": agreed["field_strength_t"],
        "contrast": agreed["contrast"],
        "body_part": agreed["body_part"],
        "series_description": agreed["series_description"],
        "images": series.images,
        "files": series.files,
        "exam_year": agreed["exam_year"],
        "varies": sorted(varies),
        "withheld": withheld,
        "suggested_imaging_item": {},
    }
    summary["suggested_imaging_item"] = _imaging_item(
        summary["suggested_modality"],
        summary["contrast"],
        agreed.get("contrast_route_other"),
        summary["slice_thickness_mm"],
    )
    return summary


def _withhold_identifiers(agreed: dict) -> list[str]:
    """Set each text attribute that looks like an identifier to None; say which and why.

    The modality is suggested from the description and body part first
    (``suggest_modality`` gives a code, never the text), so a withheld
    description still helps the suggestion.
    """
    withheld = []
    agreed["suggested_modality"] = suggest_modality(
        agreed["modality"], agreed["contrast"], agreed["series_description"], agreed["body_part"]
    )
    for key in TEXT_FIELDS:
        value = agreed.get(key)
        kind = find_identifier(value) if isinstance(value, str) else None
        if kind is not None:
            agreed[key] = None
            withheld.append(f"{key}: looks like {kind}")
    return withheld


def _words(text: str | None) -> set[str]:
    """Lower-case words, split at punctuation and case changes ("CorCTA" is cor, cta)."""
    return {w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+", text or "")}


def suggest_modality(
    modality: str | None,
    contrast: bool | None,
    description: str | None,
    body_part: str | None,
) -> str:
    """Our ``imaging_modality`` code for a DICOM modality, from what the header says.

    CT is cardiac_ct or cta only when contrast was given and the series
    description or body part says cardiac or angio; MR is mra when the
    description says angio (MRA, TOF); US is echocardiography_3d when it
    says echo or the heart. Anything unclear stays the plain code.
    """
    words = _words(description)
    cardiac = bool(words & CARDIAC_WORDS) or any(w.startswith("coronar") for w in words)
    cardiac = cardiac or (body_part or "").upper() in CARDIAC_BODY_PARTS
    angio = bool(words & ANGIO_WORDS) or any(w.startswith("angio") for w in words)
    match (modality or "").upper():
        case "CT":
            if contrast is True and cardiac:
                return "cardiac_ct"
            if contrast is True and angio:
                return "cta"
            return "ct"
        case "MR":
            return "mra" if angio else "mr"
        case "US":
            echo = bool(words & ECHO_WORDS) or (body_part or "").upper() in CARDIAC_BODY_PARTS
            return "echocardiography_3d" if echo else "us_3d"
        case "PT":
            return "pet_ct"
        case "NM":
            return "spect"
        case _:
            return "other"


def _imaging_item(
    modality: str,
    contrast: bool | None,
    route_other: bool | None,
    thickness: float | None,
) -> ImagingItem:
    """The imaging item elements, each kept only if the dictionary accepts it."""
    from registry3d.dictionary import registry

    dictionary = registry.current().dictionary
    if contrast is None:
        contrast_code = "unknown"
    elif not contrast:
        contrast_code = "none"
    else:
        contrast_code = "intra_articular_or_other" if route_other else "iv_contrast"
    item: ImagingItem = {}
    if modality in dictionary.element("imaging.modality").value_set.active_codes():
        item["modality"] = modality
    if contrast_code in dictionary.element("imaging.contrast").value_set.active_codes():
        item["contrast"] = contrast_code
    element = dictionary.element("imaging.slice_thickness_mm")
    if thickness is not None and (
        (element.min is None or thickness >= float(element.min))
        and (element.max is None or thickness <= float(element.max))
    ):
        item["slice_thickness_mm"] = thickness
    return item
