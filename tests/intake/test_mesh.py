"""Measuring real STL, OBJ, PLY and 3MF files, and refusing bad ones clearly."""

import io
import struct
import time
import tracemalloc
import zipfile

import pytest

from registry3d.intake import mesh
from registry3d.intake.mesh import MeshError, measure
from tests.intake import mesh_fixtures as files

CPT_NOTE = (
    "CPT units are before the per-date-of-service unit limits (MUEs), "
    "which depend on the date of service and are checked when the case is saved."
)
COMPONENT_NOTE = (
    "Each separate body is suggested as one separately prepared component "
    "(0559T for the first, 0560T for each further one); the inner wall of a "
    "hollowed part is a body of its own, so check before accepting."
)
VOLUME_NOTE = (
    "Material volume is the volume the mesh encloses, without supports or waste; "
    "it is only meaningful because the mesh is watertight."
)
WRITERS = {
    "cube.stl (ASCII)": lambda p, m: files.write_stl_ascii(p / "cube.stl", m),
    "cube.stl (binary)": lambda p, m: files.write_stl_binary(p / "cube.stl", m),
    "cube.obj": lambda p, m: files.write_obj(p / "cube.obj", m),
    "cube.ply (ASCII)": lambda p, m: files.write_ply(p / "cube.ply", m),
    "cube.ply (binary)": lambda p, m: files.write_ply(p / "cube.ply", m, binary=True),
    "cube.3mf": lambda p, m: files.write_3mf(p / "cube.3mf", m),
}


def refusal(*args, **kwargs) -> str:
    with pytest.raises(MeshError) as caught:
        measure(*args, **kwargs)
    return str(caught.value)


# --- Measuring ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", WRITERS)
def test_a_10_mm_cube_is_1_cm3_and_6_cm2_in_every_format(tmp_path, kind):
    path = WRITERS[kind](tmp_path, files.cube(10))
    result = measure(path)
    is_3mf = path.suffix == ".3mf"
    assert result["file_name"] == path.name
    assert result["format"] == path.suffix[1:]
    assert result["triangles"] == 12
    assert result["volume_cm3"] == 1.0
    assert result["surface_area_cm2"] == 6.0
    assert result["bounding_box_mm"] == {"x": 10.0, "y": 10.0, "z": 10.0}
    assert result["watertight"] is True
    assert result["bodies"] == 1
    assert result["units"] == "mm"
    assert result["units_assumed"] is not is_3mf
    assert result["notes"] == [
        "Units: the 3MF file declares its unit; sizes are converted to millimetres."
        if is_3mf
        else f"Units: {path.suffix[1:].upper()} files carry no unit; millimetres are assumed."
    ]
    assert result["suggestions"] == {
        "components": 1,
        "material_volume_cm3": 1.0,
        "cpt_lines": [{"code": "0559T", "units": 1}],
        "notes": [COMPONENT_NOTE, VOLUME_NOTE, CPT_NOTE],
    }


def test_a_binary_stl_whose_header_starts_with_solid_is_still_read_as_binary(tmp_path):
    path = files.write_stl_binary(
        tmp_path / "cube.stl", files.cube(10), header=b"solid exported by a CAD program"
    )
    result = measure(path)
    assert (result["triangles"], result["volume_cm3"]) == (12, 1.0)


def test_a_3mf_in_centimetres_is_converted_to_millimetres(tmp_path):
    path = files.write_3mf(tmp_path / "cube.3mf", files.cube(1), unit="centimeter")
    result = measure(path)
    assert result["bounding_box_mm"] == {"x": 10.0, "y": 10.0, "z": 10.0}
    assert (result["volume_cm3"], result["surface_area_cm2"]) == (1.0, 6.0)


@pytest.mark.parametrize("kind", ["stl", "3mf"])
def test_two_separate_cubes_are_two_bodies_and_suggest_0559T_and_0560T(tmp_path, kind):
    first, second = files.cube(10), files.cube(10, at=(20.0, 0.0, 0.0))
    if kind == "stl":
        path = files.write_stl_binary(tmp_path / "two.stl", files.join(first, second))
    else:
        path = files.write_3mf(tmp_path / "two.3mf", first, second)
    result = measure(path)
    assert result["bodies"] == 2
    assert result["volume_cm3"] == 2.0
    assert result["bounding_box_mm"] == {"x": 30.0, "y": 10.0, "z": 10.0}
    assert result["suggestions"] == {
        "components": 2,
        "material_volume_cm3": 2.0,
        "cpt_lines": [{"code": "0559T", "units": 1}, {"code": "0560T", "units": 1}],
        "notes": [COMPONENT_NOTE, VOLUME_NOTE, CPT_NOTE],
    }


def test_cpt_units_are_not_capped_by_the_unit_limits(tmp_path):
    cubes = [files.cube(5, at=(10.0 * i, 0.0, 0.0)) for i in range(8)]
    result = measure(files.write_stl_binary(tmp_path / "eight.stl", files.join(*cubes)))
    assert result["suggestions"]["cpt_lines"] == [
        {"code": "0559T", "units": 1},
        {"code": "0560T", "units": 7},
    ]


def test_a_guide_file_suggests_0561T_for_the_first_guide_and_0562T_for_the_rest(tmp_path):
    path = files.write_obj(
        tmp_path / "guides.obj", files.join(files.cube(10), files.cube(10, at=(0.0, 30.0, 0.0)))
    )
    result = measure(path, object_type="anatomic_guide")
    assert result["suggestions"]["cpt_lines"] == [
        {"code": "0561T", "units": 1},
        {"code": "0562T", "units": 1},
    ]
    assert result["suggestions"]["notes"][0] == (
        "Each separate body is suggested as one guide (0561T for the first, "
        "0562T for each further one); check before accepting."
    )


def test_an_open_mesh_is_not_watertight_and_suggests_no_material_volume(tmp_path):
    path = files.write_obj(tmp_path / "open.obj", files.cube(10, open_sides=1))
    result = measure(path)
    assert result["watertight"] is False
    assert result["triangles"] == 10
    assert result["surface_area_cm2"] == 5.0
    assert result["notes"][1] == (
        "The mesh is not watertight (it has holes or open edges), so its volume is not meaningful."
    )
    assert result["suggestions"]["material_volume_cm3"] is None
    assert result["suggestions"]["notes"][1] == (
        "No material volume: it is only meaningful for a watertight mesh."
    )


def test_a_mesh_facing_inwards_still_has_a_positive_volume(tmp_path):
    vertices, faces = files.cube(10)
    inside_out = (vertices, [(a, c, b) for a, b, c in faces])
    result = measure(files.write_stl_ascii(tmp_path / "inside_out.stl", inside_out))
    assert result["volume_cm3"] == 1.0


def test_an_uploaded_file_object_is_measured_under_the_name_given(tmp_path):
    data = files.write_stl_binary(tmp_path / "x.stl", files.cube(10)).read_bytes()
    result = measure(io.BytesIO(data), "Liver model.STL")
    assert result["file_name"] == "Liver model.STL"
    assert result["volume_cm3"] == 1.0


def test_a_reference_to_another_file_is_not_followed(tmp_path, monkeypatch):
    (tmp_path / "cube.mtl").write_text("newmtl bone\nmap_Kd secret.png\n")
    path = tmp_path / "cube.obj"
    files.write_obj(path, files.cube(10))
    path.write_text("mtllib cube.mtl\nusemtl bone\n" + path.read_text())
    opened = []
    real_open = open

    def watching_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", watching_open)
    assert measure(path)["volume_cm3"] == 1.0
    assert opened == [str(path)]


# --- Refusing ------------------------------------------------------------------------


def test_a_binary_stl_whose_count_does_not_match_its_size_is_refused(tmp_path):
    path = files.write_stl_binary(tmp_path / "cut.stl", files.cube(10))
    with open(path, "r+b") as out:
        out.truncate(674)
    assert refusal(path) == (
        "cut.stl: the binary STL header declares 12 triangles (684 bytes) but the file "
        "has 674 bytes; it is truncated or not an STL file"
    )


def _nan_stl_ascii(path):
    files.write_stl_ascii(path, files.cube(10))
    path.write_text(path.read_text().replace("vertex 10.0 10.0 10.0", "vertex nan 10.0 10.0"))
    return path


def _nan_stl_binary(path):
    vertices, faces = files.cube(10)
    vertices[7] = (float("nan"), 10.0, 10.0)
    return files.write_stl_binary(path, (vertices, faces))


def _inf_obj(path):
    vertices, faces = files.cube(10)
    vertices[3] = (float("inf"), 10.0, 0.0)
    return files.write_obj(path, (vertices, faces))


def _nan_ply(path):
    vertices, faces = files.cube(10)
    vertices[0] = (0.0, float("nan"), 0.0)
    return files.write_ply(path, (vertices, faces), binary=True)


def _inf_3mf(path):
    vertices, faces = files.cube(10)
    vertices[5] = (10.0, 0.0, float("-inf"))
    return files.write_3mf(path, (vertices, faces))


@pytest.mark.parametrize(
    "write, name",
    [
        (_nan_stl_ascii, "nan.stl"),
        (_nan_stl_binary, "nan.stl"),
        (_inf_obj, "inf.obj"),
        (_nan_ply, "nan.ply"),
        (_inf_3mf, "inf.3mf"),
    ],
)
def test_coordinates_that_are_not_numbers_are_refused(tmp_path, write, name):
    assert refusal(write(tmp_path / name)) == (
        f"{name}: some coordinates are not numbers (NaN or infinity); export the mesh again"
    )


@pytest.mark.parametrize(
    "name, content",
    [
        ("empty.stl", b"solid empty\nendsolid empty\n"),
        ("empty.stl", b"binary STL with no triangles".ljust(80) + bytes(4)),
        ("empty.obj", b"# only points\nv 0 0 0\nv 1 0 0\nv 0 1 0\n"),
        ("empty.obj", b""),
        ("empty.ply", files.ply_header(0, 0, "ascii")),
    ],
)
def test_a_file_without_triangles_is_refused(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    assert refusal(tmp_path / name) == f"{name}: the file contains no triangles"


def test_coordinates_too_far_to_measure_are_refused(tmp_path):
    vertices, faces = files.cube(10)
    vertices[6] = (0.0, 1e200, 10.0)
    path = files.write_obj(tmp_path / "far.obj", (vertices, faces))
    assert refusal(path) == (
        "far.obj: coordinates reach 1e+200 mm from the origin, over the limit of 1e+06 mm; "
        "check the units the file was exported in"
    )


def test_a_3mf_without_objects_is_refused(tmp_path):
    path = files.write_3mf(tmp_path / "empty.3mf")
    assert refusal(path) == "empty.3mf: the file contains no triangles"


def test_a_file_over_the_size_limit_is_refused(tmp_path):
    path = files.write_stl_binary(tmp_path / "cube.stl", files.cube(10))
    assert refusal(path, max_bytes=500) == (
        "cube.stl: the file is 684 bytes, over the limit of 500 bytes"
    )


def test_the_size_limit_is_a_module_setting(tmp_path, monkeypatch):
    monkeypatch.setattr(mesh, "MAX_BYTES", 600)
    path = files.write_stl_binary(tmp_path / "cube.stl", files.cube(10))
    assert refusal(path) == "cube.stl: the file is 684 bytes, over the limit of 600 bytes"


@pytest.mark.parametrize(
    "name, message",
    [
        ("scan.vtk", "scan.vtk: unknown file type ('.vtk'); send an STL, OBJ, PLY or 3MF file"),
        ("model", "model: unknown file type (no extension); send an STL, OBJ, PLY or 3MF file"),
    ],
)
def test_an_unknown_format_is_refused(tmp_path, name, message):
    (tmp_path / name).write_bytes(b"# vtk DataFile Version 3.0\n")
    assert refusal(tmp_path / name) == message


PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
PDF = b"%PDF-1.7\n" + b"1 0 obj << /Type /Catalog >> endobj\n" * 20


def _zip_without_model() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<document/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name, content, message",
    [
        (
            "report.stl",
            PDF,
            "report.stl: the binary STL header declares 807,416,074 triangles "
            "(40,370,803,784 bytes) but the file has 729 bytes; it is truncated "
            "or not an STL file",
        ),
        ("tiny.stl", b"STL?", "tiny.stl: not an STL file (only 4 bytes, and not ASCII STL)"),
        ("photo.ply", PNG, "photo.ply: not a PLY file (it does not start with 'ply')"),
        ("photo.obj", PNG, "photo.obj: not an OBJ file (it is not text)"),
        ("notes.3mf", b"just some notes", "notes.3mf: not a 3MF file (not a ZIP archive)"),
        (
            "letter.3mf",
            _zip_without_model(),
            "letter.3mf: not a 3MF file (no 3D/3dmodel.model in the archive)",
        ),
        (
            "broken.ply",
            files.ply_header(8, 12, "binary_little_endian") + bytes(50),
            "broken.ply: not a readable PLY file",
        ),
        (
            "wrong.obj",
            b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n",
            "wrong.obj: not a readable OBJ file",
        ),
    ],
)
def test_a_file_that_is_not_a_mesh_is_refused(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    assert refusal(tmp_path / name) == message


# --- Large meshes: refused from the header or a scan, in bounded time and memory -----


def _refused_quickly(*args, memory: int = 64_000_000, **kwargs) -> str:
    """Refuse within a second, allocating less than ``memory`` bytes on the way."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        message = refusal(*args, **kwargs)
    finally:
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < memory
    return message


TEN_MILLION_STL = 84 + 50 * 10_000_000


def test_a_binary_stl_of_10_million_triangles_is_refused_by_its_size_at_once(tmp_path):
    head = b"ten million triangles".ljust(80) + struct.pack("<I", 10_000_000)
    path = files.write_sparse(tmp_path / "huge.stl", head, TEN_MILLION_STL)
    assert _refused_quickly(path, memory=1_000_000) == (
        "huge.stl: the file is 476.8 MB, over the limit of 200 MB"
    )


def test_a_binary_stl_of_10_million_triangles_is_refused_from_its_header_at_once(tmp_path):
    head = b"ten million triangles".ljust(80) + struct.pack("<I", 10_000_000)
    path = files.write_sparse(tmp_path / "huge.stl", head, TEN_MILLION_STL)
    assert _refused_quickly(path, memory=1_000_000, max_bytes=10**9) == (
        "huge.stl: 10,000,000 triangles, over the limit of 2,000,000; "
        "reduce (decimate) the mesh and send it again"
    )


def test_a_binary_ply_of_10_million_triangles_under_the_size_limit_is_refused_at_once(
    tmp_path,
):
    # 5 million vertices of 12 bytes and 10 million triangles of 13 bytes: 190 MB.
    head = files.ply_header(5_000_000, 10_000_000, "binary_little_endian")
    size = len(head) + 12 * 5_000_000 + 13 * 10_000_000
    path = files.write_sparse(tmp_path / "huge.ply", head, size)
    with open(path, "r+b") as out:
        out.seek(len(head) + 12 * 5_000_000)
        out.write(struct.pack("<B3i", 3, 0, 1, 2))
    assert size < mesh.MAX_BYTES
    assert _refused_quickly(path, memory=1_000_000) == (
        "huge.ply: 10,000,000 triangles, over the limit of 2,000,000; "
        "reduce (decimate) the mesh and send it again"
    )


def test_binary_ply_polygons_count_as_their_triangles(tmp_path):
    head = files.ply_header(100, 10_000, "binary_little_endian")
    size = len(head) + 12 * 100 + (1 + 4 * 100) * 10_000
    path = files.write_sparse(tmp_path / "polygons.ply", head, size)
    with open(path, "r+b") as out:
        out.seek(len(head) + 12 * 100)
        out.write(struct.pack("<B", 100))
    assert _refused_quickly(path, max_triangles=500_000) == (
        "polygons.ply: 980,000 triangles, over the limit of 500,000; "
        "reduce (decimate) the mesh and send it again"
    )


def test_an_ascii_ply_is_counted_before_it_is_parsed(tmp_path):
    vertices = "".join(f"{i} 0 {i % 7}\n" for i in range(100))
    face = "100 " + " ".join(str(i) for i in range(100)) + "\n"
    path = tmp_path / "polygons.ply"
    path.write_bytes(files.ply_header(100, 30, "ascii") + (vertices + face * 30).encode())
    assert _refused_quickly(path, max_triangles=2_000) == (
        "polygons.ply: at least 2,940 triangles, over the limit of 2,000; "
        "reduce (decimate) the mesh and send it again"
    )


def test_one_obj_face_with_many_corners_counts_as_its_triangles(tmp_path):
    path = tmp_path / "fan.obj"
    corners = " ".join(str(i % 3 + 1) for i in range(100_000))
    path.write_text(f"v 0 0 0\nv 1 0 0\nv 0 1 0\nf {corners}\n")
    assert _refused_quickly(path, max_triangles=50_000) == (
        "fan.obj: at least 99,998 triangles, over the limit of 50,000; "
        "reduce (decimate) the mesh and send it again"
    )


def test_an_obj_line_longer_than_a_chunk_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(mesh, "CHUNK", 1000)
    path = tmp_path / "long.obj"
    path.write_text("v 0 0 0\n# " + "x" * 3000 + "\n")
    assert refusal(path) == "long.obj: a line is longer than 1,000 bytes; not an OBJ file"


def test_a_3mf_with_too_many_entries_is_refused_before_its_directory_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(mesh, "MAX_3MF_ENTRIES", 3)
    path = files.write_3mf(tmp_path / "many.3mf", files.cube(10))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("Metadata/thumbnail.png", PNG)
    assert refusal(path) == "many.3mf: the 3MF archive has 4 entries, over the limit of 3"


def test_an_ascii_stl_is_counted_before_it_is_parsed(tmp_path):
    path = files.write_stl_ascii(tmp_path / "cube.stl", files.cube(10))
    assert _refused_quickly(path, max_triangles=10) == (
        "cube.stl: 12 triangles, over the limit of 10; reduce (decimate) the mesh and send it again"
    )


def test_a_3mf_is_counted_before_it_is_parsed(tmp_path):
    path = files.write_3mf(tmp_path / "cube.3mf", files.cube(10))
    assert _refused_quickly(path, max_triangles=10) == (
        "cube.3mf: 12 triangles, over the limit of 10; reduce (decimate) the mesh and send it again"
    )


def test_a_3mf_that_unpacks_over_the_size_limit_is_refused(tmp_path):
    model = files.threemf_model([files.cube(10)])
    padding = 3 * mesh.MB - len(files.CONTENT_TYPES) - len(files.RELS) - len(model)
    path = tmp_path / "bomb.3mf"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", files.CONTENT_TYPES)
        archive.writestr("_rels/.rels", files.RELS)
        archive.writestr("3D/3dmodel.model", model.replace("<build>", " " * padding + "<build>"))
    assert path.stat().st_size < mesh.MB
    assert _refused_quickly(path, max_bytes=mesh.MB) == (
        "bomb.3mf: the 3MF archive unpacks to 3 MB, over the limit of 1 MB"
    )
