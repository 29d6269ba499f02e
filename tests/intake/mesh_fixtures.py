"""Write real 3D model files for the mesh tests, without trimesh.

The writers follow the formats' own descriptions, so the tests check
trimesh's reading against files made independently of it. Sizes are in
millimetres: a cube of side 10 is 1 cm³ with 6 cm² of surface.
"""

import struct
import zipfile
from pathlib import Path

Vertex = tuple[float, float, float]
Face = tuple[int, int, int]

# The six sides of the unit cube, each as four corner indices in order
# around the side; corner i is at (i & 1, i >> 1 & 1, i >> 2 & 1).
SIDES = [(0, 1, 3, 2), (4, 5, 7, 6), (0, 1, 5, 4), (2, 3, 7, 6), (0, 2, 6, 4), (1, 3, 7, 5)]


def cube(
    side: float = 10.0, at: Vertex = (0.0, 0.0, 0.0), open_sides: int = 0
) -> tuple[list[Vertex], list[Face]]:
    """Return the vertices and outward-facing triangles of a cube.

    ``open_sides`` leaves that many sides out, for a mesh that is not watertight.
    """
    vertices = [
        (at[0] + side * (i & 1), at[1] + side * (i >> 1 & 1), at[2] + side * (i >> 2 & 1))
        for i in range(8)
    ]
    centre = tuple(at[k] + side / 2 for k in range(3))
    faces: list[Face] = []
    for a, b, c, d in SIDES[open_sides:]:
        for triangle in ((a, b, c), (a, c, d)):
            faces.append(_outward(vertices, triangle, centre))
    return vertices, faces


def _outward(vertices: list[Vertex], triangle: Face, centre: Vertex) -> Face:
    p, q, r = (vertices[i] for i in triangle)
    u = [q[k] - p[k] for k in range(3)]
    v = [r[k] - p[k] for k in range(3)]
    normal = (u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0])
    away = sum(normal[k] * (p[k] - centre[k]) for k in range(3))
    return triangle if away > 0 else (triangle[0], triangle[2], triangle[1])


def join(*meshes: tuple[list[Vertex], list[Face]]) -> tuple[list[Vertex], list[Face]]:
    """Put several meshes in one vertex and face list."""
    vertices: list[Vertex] = []
    faces: list[Face] = []
    for mesh_vertices, mesh_faces in meshes:
        offset = len(vertices)
        vertices.extend(mesh_vertices)
        faces.extend(tuple(i + offset for i in f) for f in mesh_faces)
    return vertices, faces


def write_stl_ascii(path: Path, mesh: tuple[list, list]) -> Path:
    vertices, faces = mesh
    lines = ["solid model"]
    for face in faces:
        lines += ["  facet normal 0 0 0", "    outer loop"]
        lines += [f"      vertex {' '.join(repr(float(c)) for c in vertices[i])}" for i in face]
        lines += ["    endloop", "  endfacet"]
    lines.append("endsolid model")
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def write_stl_binary(path: Path, mesh: tuple[list, list], header: bytes = b"") -> Path:
    vertices, faces = mesh
    with open(path, "wb") as out:
        out.write(header.ljust(80, b" ")[:80])
        out.write(struct.pack("<I", len(faces)))
        for face in faces:
            corners = [c for i in face for c in vertices[i]]
            out.write(struct.pack("<12fH", 0.0, 0.0, 0.0, *corners, 0))
    return path


def write_obj(path: Path, mesh: tuple[list, list]) -> Path:
    vertices, faces = mesh
    lines = ["# cube", "o cube"]
    lines += [f"v {x} {y} {z}" for x, y, z in vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def ply_header(vertex_count: int, face_count: int, encoding: str) -> bytes:
    return (
        f"ply\nformat {encoding} 1.0\ncomment made for registry3d tests\n"
        f"element vertex {vertex_count}\n"
        "property float x\nproperty float y\nproperty float z\n"
        f"element face {face_count}\n"
        "property list uchar int vertex_indices\nend_header\n"
    ).encode("ascii")


def write_ply(path: Path, mesh: tuple[list, list], binary: bool = False) -> Path:
    vertices, faces = mesh
    encoding = "binary_little_endian" if binary else "ascii"
    with open(path, "wb") as out:
        out.write(ply_header(len(vertices), len(faces), encoding))
        for vertex in vertices:
            if binary:
                out.write(struct.pack("<3f", *vertex))
            else:
                out.write(f"{vertex[0]} {vertex[1]} {vertex[2]}\n".encode())
        for face in faces:
            if binary:
                out.write(struct.pack("<B3i", 3, *face))
            else:
                out.write(f"3 {face[0]} {face[1]} {face[2]}\n".encode())
    return path


CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="model" '
    'ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/>'
    "</Types>"
)
RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Target="/3D/3dmodel.model" Id="rel0" '
    'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/>'
    "</Relationships>"
)


def threemf_model(objects: list[tuple[list, list]], unit: str = "millimeter") -> str:
    """A 3MF model part with one object and one build item per mesh."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<model unit="{unit}" xml:lang="en-US" '
        'xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02">'
        "<resources>"
    ]
    for number, (vertices, faces) in enumerate(objects, start=1):
        parts.append(f'<object id="{number}" type="model"><mesh><vertices>')
        parts += [f'<vertex x="{x}" y="{y}" z="{z}"/>' for x, y, z in vertices]
        parts.append("</vertices><triangles>")
        parts += [f'<triangle v1="{a}" v2="{b}" v3="{c}"/>' for a, b, c in faces]
        parts.append("</triangles></mesh></object>")
    parts.append("</resources><build>")
    parts += [f'<item objectid="{n}"/>' for n in range(1, len(objects) + 1)]
    parts.append("</build></model>")
    return "".join(parts)


def write_3mf(path: Path, *objects: tuple[list, list], unit: str = "millimeter") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", RELS)
        archive.writestr("3D/3dmodel.model", threemf_model(list(objects), unit))
    return path


def write_sparse(path: Path, head: bytes, size: int) -> Path:
    """Write ``head`` and extend the file to ``size`` bytes as a hole (no disk used)."""
    with open(path, "wb") as out:
        out.write(head)
        out.truncate(size)
    return path
