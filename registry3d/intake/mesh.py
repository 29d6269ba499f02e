"""Measure 3D model files (STL, OBJ, PLY, 3MF) so a case is checked, not typed.

``measure`` reads one file and returns its size and shape, and the model
elements they suggest (components, material volume, CPT units). Nothing here
writes to a case: the suggestions are data for the user to accept.

1. Refuse what would cost too much before parsing anything: a file over
   ``MAX_BYTES``, a 3MF archive that unpacks to more than that, and a mesh
   of more than ``MAX_TRIANGLES`` triangles. Triangles are counted from the
   header (binary STL, PLY) or by a scan of the raw bytes (ASCII STL, OBJ,
   3MF) that keeps no more than one chunk in memory. A binary STL whose
   declared count does not match its size is refused here too, because
   trimesh would otherwise read it as ASCII and return garbage.
2. Parse with trimesh, never following a reference to another file and
   never reaching the network.
3. Refuse NaN or infinite coordinates and meshes without triangles, merge
   duplicate vertices (STL stores every triangle's corners separately) and
   measure.

The file's name is screened first: one that looks like an identifier (a
patient's name, record number or birth date) is never shown, not even in an
error; the answer says ``model.<ext>`` and names the kind in ``withheld``.

Mesh units are millimetres: STL, OBJ and PLY carry no unit, so millimetres
are assumed and the result says so; a 3MF file declares its unit and is
converted.
"""

import logging
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import trimesh
from trimesh.resolvers import Resolver
from typing_extensions import TypedDict  # pydantic (the API's schemas) needs this one

from registry3d.dictionary import cpt
from registry3d.intake import names

logger = logging.getLogger(__name__)

KB = 1024
MB = 1024 * KB
MAX_BYTES = 200 * MB  # the file as uploaded; a 3MF archive unpacked, too
MAX_TRIANGLES = 2_000_000
MAX_3MF_ENTRIES = 10_000
# A kilometre: beyond it a model is in the wrong units, and volumes overflow
# while trimesh's vertex merging (coordinates times 1e8 as int64) breaks.
MAX_COORDINATE = 1e6
FORMATS = {"stl": "STL", "obj": "OBJ", "ply": "PLY", "3mf": "3MF"}
# Millimetres per 3MF unit (3MF core specification, "unit" of <model>).
THREEMF_UNITS = {
    "micron": 0.001,
    "millimeter": 1.0,
    "centimeter": 10.0,
    "inch": 25.4,
    "foot": 304.8,
    "meter": 1000.0,
}
CHUNK = 1 << 22
STL_HEADER = 84
STL_TRIANGLE = 50


class MeshError(Exception):
    """Raised when a file cannot be measured as a 3D model; the message names it."""


class BoundingBox(TypedDict):
    x: float
    y: float
    z: float


class CptLine(TypedDict):
    code: str
    units: int


class Suggestions(TypedDict):
    components: int
    material_volume_cm3: float | None
    cpt_lines: list[CptLine]
    notes: list[str]


class Measurement(TypedDict):
    file_name: str
    format: str
    units: str
    units_assumed: bool
    triangles: int
    volume_cm3: float
    surface_area_cm2: float
    bounding_box_mm: BoundingBox
    watertight: bool
    bodies: int
    notes: list[str]
    suggestions: Suggestions
    withheld: list[str]


ObjectType = Literal["anatomic_model", "anatomic_guide"]


def measure(
    source: str | os.PathLike | BinaryIO,
    filename: str | None = None,
    *,
    object_type: ObjectType = "anatomic_model",
    max_bytes: int | None = None,
    max_triangles: int | None = None,
) -> Measurement:
    """Measure one STL, OBJ, PLY or 3MF file given as a path or a binary file.

    ``filename`` is the name the user knows the file by; its extension gives
    the format. Raises ``MeshError`` for anything that cannot be measured.
    """
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    max_triangles = MAX_TRIANGLES if max_triangles is None else max_triangles
    if isinstance(source, str | os.PathLike):
        name, withheld = _screened(filename or Path(source).name)
        kind = _format(name)
        try:
            stream = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise MeshError(f"{name}: the file cannot be read ({exc.strerror})") from None
        with stream:
            measured = _measure(stream, name, kind, object_type, max_bytes, max_triangles)
    else:
        name, withheld = _screened(filename or Path(getattr(source, "name", "") or "upload").name)
        kind = _format(name)
        measured = _measure(source, name, kind, object_type, max_bytes, max_triangles)
    measured["withheld"] = withheld
    return measured


def _screened(name: str) -> tuple[str, list[str]]:
    """The name to show, ``model.<ext>`` if it looks like an identifier, and why."""
    shown, kind = names.screened(name, names.neutral_name("model", name))
    return shown, [f"file_name: looks like {kind}"] if kind else []


def _format(name: str) -> str:
    extension = Path(name).suffix.lower().lstrip(".")
    if extension not in FORMATS:
        shown = f"'.{extension}'" if extension else "no extension"
        raise MeshError(f"{name}: unknown file type ({shown}); send an STL, OBJ, PLY or 3MF file")
    return extension


def _measure(
    stream: BinaryIO,
    name: str,
    kind: str,
    object_type: ObjectType,
    max_bytes: int,
    max_triangles: int,
) -> Measurement:
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    if size > max_bytes:
        raise MeshError(f"{name}: the file is {_size(size)}, over the limit of {_size(max_bytes)}")
    if kind == "stl":
        _check_stl(stream, name, size, max_triangles)
    elif kind == "obj":
        _check_obj(stream, name, max_triangles)
    elif kind == "ply":
        _check_ply(stream, name, max_triangles)
    else:
        _check_3mf(stream, name, max_bytes, max_triangles)
    stream.seek(0)
    mesh, scale, declared = _load(stream, name, kind)
    if len(mesh.faces) == 0:
        raise MeshError(f"{name}: the file contains no triangles")
    if len(mesh.faces) > max_triangles:
        _over(name, f"{len(mesh.faces):,}", "triangles", max_triangles)
    if not np.isfinite(mesh.vertices).all():
        raise MeshError(
            f"{name}: some coordinates are not numbers (NaN or infinity); export the mesh again"
        )
    if scale != 1.0:
        mesh.apply_scale(scale)
    farthest = float(np.abs(mesh.vertices).max())
    if farthest > MAX_COORDINATE:
        raise MeshError(
            f"{name}: coordinates reach {farthest:.3g} mm from the origin, over the limit "
            f"of {MAX_COORDINATE:.0e} mm; check the units the file was exported in"
        )
    mesh.merge_vertices()
    return _result(mesh, name, kind, declared, object_type)


def _size(count: int) -> str:
    for unit, factor in (("MB", MB), ("KB", KB)):
        if count >= factor:
            return f"{count / factor:.1f}".removesuffix(".0") + f" {unit}"
    return f"{count:,} bytes"


def _over(name: str, count: str, what: str, limit: int) -> None:
    raise MeshError(
        f"{name}: {count} {what}, over the limit of {limit:,}; "
        "reduce (decimate) the mesh and send it again"
    )


# --- Checks before parsing ---------------------------------------------------------


def _check_stl(stream: BinaryIO, name: str, size: int, max_triangles: int) -> None:
    """Tell binary from ASCII STL by the size the header declares, and count."""
    head = stream.read(STL_HEADER)
    if len(head) == STL_HEADER:
        declared = int.from_bytes(head[80:84], "little")
        if size == STL_HEADER + STL_TRIANGLE * declared:
            if declared > max_triangles:
                _over(name, f"{declared:,}", "triangles", max_triangles)
            return
    stream.seek(0)
    start = stream.read(1024)
    if start.lstrip().lower().startswith(b"solid") and b"\0" not in start:
        stream.seek(0)
        vertices, normals = _count(stream, (b"vertex", b"normal"), lower=True)
        # trimesh splits the text at every "vertex" and "normal"; bound both.
        triangles = max(-(-vertices // 3), normals)
        if triangles > max_triangles:
            _over(name, f"{triangles:,}", "triangles", max_triangles)
        return
    if len(head) < STL_HEADER:
        raise MeshError(f"{name}: not an STL file (only {size:,} bytes, and not ASCII STL)")
    expected = STL_HEADER + STL_TRIANGLE * declared
    raise MeshError(
        f"{name}: the binary STL header declares {declared:,} triangles ({expected:,} bytes) "
        f"but the file has {size:,} bytes; it is truncated or not an STL file"
    )


def _count(stream: BinaryIO, tokens: tuple[bytes, ...], lower: bool = False) -> list[int]:
    """Count each token in a stream, one chunk at a time."""
    counts = [0] * len(tokens)
    overlap = max(len(t) for t in tokens) - 1
    tail = b""
    while chunk := stream.read(CHUNK):
        data = tail + (chunk.lower() if lower else chunk)
        for i, token in enumerate(tokens):
            # Tokens wholly inside the carried-over tail were counted last time.
            counts[i] += data.count(token) - tail.count(token)
        tail = data[-overlap:] if overlap else b""
    return counts


def _check_obj(stream: BinaryIO, name: str, max_triangles: int) -> None:
    """Count an OBJ's triangles and vertex lines as trimesh will read them.

    A face line with n corners becomes n - 2 triangles, so one long face line
    can stand for millions of triangles: count corners, not lines. Vertex
    lines (v, vt, vn, vp) cost memory too and are held to three per triangle.
    """
    triangles = vertices = 0
    for lines in _lines(stream, name, "an OBJ"):
        first, second = lines.character(0), lines.character(1)
        spaced = (second == ord(" ")) | (second == ord("\t"))
        faces = (first == ord("f")) & spaced
        # The words after the leading "f" are the corners.
        corners = lines.words_after_first(faces)
        triangles += int(np.maximum(corners - 2, 0).sum())
        vertices += int(((first == ord("v")) & (spaced | np.isin(second, VERTEX_KINDS))).sum())
        if triangles > max_triangles:
            _over(name, f"at least {triangles:,}", "triangles", max_triangles)
        if vertices > 3 * max_triangles:
            _over(name, f"at least {vertices:,}", "vertex lines", 3 * max_triangles)


VERTEX_KINDS = np.frombuffer(b"tnp", dtype=np.uint8)


class _Lines:
    """Whole lines of text as numpy arrays, for counting without parsing."""

    def __init__(self, data: bytes):
        self.text = np.frombuffer(data, dtype=np.uint8)
        self.ends = np.flatnonzero(self.text == ord("\n"))
        self.starts = np.concatenate(([0], self.ends[:-1] + 1))
        # Spaces, tabs, CR and LF are all at or below 32 (NUL was refused).
        blank = self.text <= 32
        # words[k] counts the words that start at positions 1 to k.
        self.words = np.zeros(len(self.text), dtype=np.int32)
        np.cumsum(~blank[1:] & blank[:-1], dtype=np.int32, out=self.words[1:])

    def __len__(self) -> int:
        return len(self.ends)

    def character(self, offset: int) -> np.ndarray:
        """The character at ``offset`` in each line (a newline if the line is shorter)."""
        return self.text[np.minimum(self.starts + offset, self.ends)]

    def words_after_first(self, mask: np.ndarray) -> np.ndarray:
        """Words after each line's first character, for the lines in ``mask``."""
        return self.words[self.ends[mask]] - self.words[self.starts[mask]]

    def leading_numbers(self, mask: np.ndarray, digits: int = 7) -> np.ndarray:
        """The whole number each line in ``mask`` starts with, or -1 if none."""
        starts, ends = self.starts[mask], self.ends[mask]
        where = np.minimum(starts[:, None] + np.arange(digits), ends[:, None])
        values = self.text[where].astype(np.int64) - ord("0")
        run = np.cumprod((values >= 0) & (values <= 9), axis=1).astype(bool)
        length = run.sum(axis=1)
        power = 10 ** np.clip(length[:, None] - 1 - np.arange(digits), 0, None)
        return np.where(length > 0, np.where(run, values * power, 0).sum(axis=1), -1)


def _lines(stream: BinaryIO, name: str, label: str) -> Iterator[_Lines]:
    """Yield the whole lines of a text stream, one chunk at a time.

    A line longer than a chunk is refused: no mesh needs one, and reading it
    whole would break the memory bound.
    """
    rest = b""
    while True:
        chunk = stream.read(CHUNK)
        data = rest + chunk
        if chunk:
            cut = data.rfind(b"\n") + 1
            data, rest = data[:cut], data[cut:]
            if len(rest) > CHUNK:
                raise MeshError(f"{name}: a line is longer than {_size(CHUNK)}; not {label} file")
        elif data and not data.endswith(b"\n"):
            data += b"\n"
        if b"\0" in data:
            raise MeshError(f"{name}: not {label} file (it is not text)")
        if data:
            yield _Lines(data)
        if not chunk:
            return


PLY_TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}


class _PlyElement:
    def __init__(self, name: str, count: int):
        self.name = name
        self.count = count
        self.scalars: list[str] = []  # types of the properties before the first list
        self.lists: list[tuple[str, str]] = []  # (count type, item type)


def _check_ply(stream: BinaryIO, name: str, max_triangles: int) -> None:
    """Count a PLY's triangles from its header and, where needed, its data.

    A face with n corners becomes n - 2 triangles. For binary data trimesh
    takes every face to have as many corners as the first, so the first
    face's count is read; ASCII data is scanned line by line.
    """
    head = stream.read(65536)
    if not (head.startswith(b"ply\n") or head.startswith(b"ply\r\n")):
        raise MeshError(f"{name}: not a PLY file (it does not start with 'ply')")
    end = head.find(b"end_header")
    newline = head.find(b"\n", end)
    if end < 0 or newline < 0:
        raise MeshError(f"{name}: not a PLY file (no end_header in the first 64 KB)")
    encoding = ""
    elements: list[_PlyElement] = []
    for line in head[:end].decode("latin-1").splitlines():
        words = line.split()
        if words[:1] == ["format"] and len(words) > 1:
            encoding = words[1]
        elif words[:1] == ["element"] and len(words) == 3 and words[2].isdigit():
            elements.append(_PlyElement(words[1], int(words[2])))
        elif words[:2] == ["property", "list"] and len(words) == 5 and elements:
            elements[-1].lists.append((PLY_TYPES.get(words[2], ""), PLY_TYPES.get(words[3], "")))
        elif words[:1] == ["property"] and len(words) == 3 and elements:
            if not elements[-1].lists:
                elements[-1].scalars.append(PLY_TYPES.get(words[1], ""))
    faces = next((e for e in elements if e.name == "face" and e.lists), None)
    before = elements[: elements.index(faces)] if faces else elements
    what, records = "vertices and faces", sum(e.count for e in elements)
    if encoding == "ascii":
        stream.seek(newline + 1)
        first = sum(e.count for e in before)
        what, records = "lines", _ply_ascii_lines(stream, name, first, faces, max_triangles)
    elif faces is not None:
        triangles = _ply_binary_triangles(stream, newline + 1, encoding, before, faces)
        if triangles > max_triangles:
            _over(name, f"{triangles:,}", "triangles", max_triangles)
    if records > 3 * max_triangles:
        _over(name, f"{records:,}", what, 3 * max_triangles)


def _ply_binary_triangles(
    stream: BinaryIO, start: int, encoding: str, before: list[_PlyElement], faces: _PlyElement
) -> int:
    """Faces times the first face's triangles, where the first face can be found."""
    count_type = faces.lists[0][0]
    if not faces.count or not count_type or not all(faces.scalars):
        return faces.count
    if any(e.lists or not all(e.scalars) for e in before):
        return faces.count
    stream.seek(start + sum(e.count * _ply_size(e.scalars) for e in before))
    stream.seek(_ply_size(faces.scalars), os.SEEK_CUR)
    raw = stream.read(np.dtype(count_type).itemsize)
    if len(raw) < np.dtype(count_type).itemsize:
        return faces.count
    order = ">" if encoding == "binary_big_endian" else "<"
    corners = int(np.frombuffer(raw, dtype=order + count_type)[0])
    return faces.count * max(corners - 2, 1)


def _ply_size(types: list[str]) -> int:
    return sum(np.dtype(t).itemsize for t in types)


def _ply_ascii_lines(
    stream: BinaryIO, name: str, first: int, faces: _PlyElement | None, max_triangles: int
) -> int:
    """Count the lines of ASCII PLY data (trimesh reads every one) and its triangles."""
    triangles = seen = 0
    for lines in _lines(stream, name, "an ASCII PLY"):
        number = seen + np.arange(len(lines))
        seen += len(lines)
        if faces is None:
            continue
        face_lines = (number >= first) & (number < first + faces.count)
        if faces.scalars:
            # Other properties come first; count words instead (an upper bound).
            corners = lines.words_after_first(face_lines) - len(faces.scalars)
        else:
            corners = lines.leading_numbers(face_lines)
            unknown = corners < 0
            corners[unknown] = lines.words_after_first(face_lines)[unknown]
        triangles += int(np.maximum(corners - 2, 0).sum())
        if triangles > max_triangles:
            _over(name, f"at least {triangles:,}", "triangles", max_triangles)
    return seen


def _check_3mf(stream: BinaryIO, name: str, max_bytes: int, max_triangles: int) -> None:
    """Refuse an archive that unpacks too large, then count triangles in its models.

    ZIP sizes are trustworthy here: Python's zipfile stops at the declared
    size, and trimesh reads every member into memory.
    """
    entries = _zip_entries(stream)
    if entries is None:
        raise MeshError(f"{name}: not a 3MF file (not a ZIP archive)")
    if entries > MAX_3MF_ENTRIES:
        raise MeshError(
            f"{name}: the 3MF archive has {entries:,} entries, over the limit of "
            f"{MAX_3MF_ENTRIES:,}"
        )
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError) as exc:
        raise MeshError(f"{name}: not a 3MF file (not a ZIP archive)") from exc
    with archive:
        members = archive.infolist()
        unpacked = sum(m.file_size for m in members)
        if unpacked > max_bytes:
            raise MeshError(
                f"{name}: the 3MF archive unpacks to {_size(unpacked)}, "
                f"over the limit of {_size(max_bytes)}"
            )
        models = [m for m in members if m.filename.lower().endswith(".model")]
        if not any(m.filename.lower().endswith("3d/3dmodel.model") for m in models):
            raise MeshError(f"{name}: not a 3MF file (no 3D/3dmodel.model in the archive)")
        triangles = vertices = 0
        for member in models:
            try:
                with archive.open(member) as part:
                    counts = _count(
                        part,
                        (b"triangle ", b"triangle\t", b"triangle\n", b"triangle\r", b"vertex "),
                    )
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise MeshError(f"{name}: the 3MF archive is damaged ({exc})") from exc
            triangles += sum(counts[:4])
            vertices += counts[4]
        if triangles > max_triangles:
            _over(name, f"{triangles:,}", "triangles", max_triangles)
        if not triangles:
            # trimesh fails on a 3MF without objects instead of returning nothing.
            raise MeshError(f"{name}: the file contains no triangles")
        if vertices > 3 * max_triangles:
            _over(name, f"{vertices:,}", "vertices", 3 * max_triangles)


def _zip_entries(stream: BinaryIO) -> int | None:
    """Read the number of entries from a ZIP's end record (ZIP64 too), or None.

    ``zipfile`` parses the whole central directory into memory; counting
    first refuses a directory of millions of entries before that.
    """
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(size - min(size, 22 + 65535))  # the end record and the longest comment
    tail = stream.read()
    stream.seek(0)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    entries = int.from_bytes(tail[at + 10 : at + 12], "little")
    if entries == 0xFFFF and at >= 20 and tail[at - 20 : at - 16] == b"PK\x06\x07":
        stream.seek(int.from_bytes(tail[at - 12 : at - 4], "little"))
        record = stream.read(56)
        stream.seek(0)
        if record[:4] != b"PK\x06\x06" or len(record) < 40:
            return None
        entries = int.from_bytes(record[32:40], "little")
    return entries


# --- Parsing -------------------------------------------------------------------------


class _NoFiles(Resolver):
    """Refuse every file a mesh refers to (OBJ materials, PLY textures)."""

    def __init__(self, *args, **kwargs):
        pass

    def get(self, key):
        raise FileNotFoundError(f"{key}: other files are not read")

    def write(self, name, data):
        raise PermissionError("nothing is written")

    def namespaced(self, namespace):
        return self

    def keys(self):
        return []


def _load(stream: BinaryIO, name: str, file_type: str) -> tuple[trimesh.Trimesh, float, bool]:
    """Return the file's geometry as one mesh, its scale to mm and whether units were declared."""
    try:
        scene = trimesh.load_scene(
            stream,
            file_type=file_type,
            resolver=_NoFiles(),
            process=False,
            skip_materials=True,
        )
        mesh = scene.to_mesh()
    except ImportError:
        raise  # lxml or networkx (3MF) is missing: the install is broken, not the file
    except Exception as exc:
        logger.info("%s: trimesh could not read it as %s", name, file_type, exc_info=True)
        raise MeshError(f"{name}: not a readable {FORMATS[file_type]} file") from exc
    if file_type != "3mf":
        return mesh, 1.0, False
    unit = str(scene.metadata.get("units", "millimeter")).lower().rstrip("s")
    if unit not in THREEMF_UNITS:
        raise MeshError(f"{name}: unknown 3MF unit {unit!r}")
    return mesh, THREEMF_UNITS[unit], True


# --- Measuring -----------------------------------------------------------------------


def bodies(faces: np.ndarray, vertex_count: int) -> int:
    """Count groups of triangles joined through shared vertices.

    Union-find over the triangles' edges, done for all edges at once:
    1. Point each edge's larger root at its smaller one.
    2. Shorten every path to its root by pointer jumping.
    3. Repeat until no edge joins two roots; count the roots that triangles use.
    A parent is never larger than its child, so there are no cycles and each
    round joins at least one pair of groups.
    """
    parent = np.arange(vertex_count)
    edges = np.concatenate((faces[:, [0, 1]], faces[:, [1, 2]]))
    while True:
        a, b = parent[edges[:, 0]], parent[edges[:, 1]]
        apart = a != b
        if not apart.any():
            break
        np.minimum.at(parent, np.maximum(a, b)[apart], np.minimum(a, b)[apart])
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
        edges = edges[apart]
    return len(np.unique(parent[faces[:, 0]]))


def _area_and_volume(triangles: np.ndarray) -> tuple[float, float]:
    """Return the surface area (cm²) and enclosed volume (cm³) of triangles in mm.

    The volume adds the signed tetrahedra from the origin to each triangle;
    its absolute value allows for a mesh whose triangles all face inwards.
    trimesh's own volume computes full mass properties, several times slower.
    """
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    cross = np.cross(b - a, c - a)
    area = float(np.linalg.norm(cross, axis=1).sum()) / 2
    volume = float(np.einsum("ij,ij->", a, cross)) / 6
    return round(area / 100, 2), round(abs(volume) / 1000, 3)


def _result(
    mesh: trimesh.Trimesh, name: str, kind: str, declared: bool, object_type: ObjectType
) -> Measurement:
    count = bodies(mesh.faces, len(mesh.vertices))
    watertight = bool(mesh.is_watertight)
    area, volume = _area_and_volume(mesh.triangles)
    extents = mesh.extents
    notes = [
        "Units: the 3MF file declares its unit; sizes are converted to millimetres."
        if declared
        else f"Units: {FORMATS[kind]} files carry no unit; millimetres are assumed."
    ]
    if not watertight:
        notes.append(
            "The mesh is not watertight (it has holes or open edges), "
            "so its volume is not meaningful."
        )
    return {
        "file_name": name,
        "format": kind,
        "units": "mm",
        "units_assumed": not declared,
        "triangles": len(mesh.faces),
        "volume_cm3": volume,
        "surface_area_cm2": area,
        "bounding_box_mm": {
            "x": round(float(extents[0]), 3),
            "y": round(float(extents[1]), 3),
            "z": round(float(extents[2]), 3),
        },
        "watertight": watertight,
        "bodies": count,
        "notes": notes,
        "suggestions": suggest(count, volume if watertight else None, object_type),
        "withheld": [],
    }


def suggest(
    count: int, volume_cm3: float | None, object_type: ObjectType = "anatomic_model"
) -> Suggestions:
    """Suggest model elements from the number of bodies, for the user to accept."""
    if object_type == "anatomic_guide":
        data = {"object_type": object_type, "prints": [{}] * count}
        counted = (
            "Each separate body is suggested as one guide (0561T for the first, "
            "0562T for each further one); check before accepting."
        )
    else:
        data = {"object_type": object_type, "anatomic_parts": [{"cpt_component": True}] * count}
        counted = (
            "Each separate body is suggested as one separately prepared component "
            "(0559T for the first, 0560T for each further one); the inner wall of a "
            "hollowed part is a body of its own, so check before accepting."
        )
    units = cpt.expected_units(data) or {}
    notes = [counted]
    if volume_cm3 is None:
        notes.append("No material volume: it is only meaningful for a watertight mesh.")
    else:
        notes.append(
            "Material volume is the volume the mesh encloses, without supports or waste; "
            "it is only meaningful because the mesh is watertight."
        )
    notes.append(
        "CPT units are before the per-date-of-service unit limits (MUEs), "
        "which depend on the date of service and are checked when the case is saved."
    )
    return {
        "components": count,
        "material_volume_cm3": volume_cm3,
        "cpt_lines": [{"code": code, "units": n} for code, n in sorted(units.items())],
        "notes": notes,
    }
