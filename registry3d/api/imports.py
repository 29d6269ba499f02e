"""Import endpoints: upload a CSV/XLSX file of cases and follow its import job."""

from datetime import datetime
from typing import Literal

from django.core.exceptions import ValidationError
from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile

from registry3d.api.common import Problem, bad_file, problem, require_write
from registry3d.intake import services, tasks
from registry3d.intake.forms import MAX_UPLOAD_BYTES
from registry3d.intake.models import Import

router = Router(tags=["imports"])


class ImportProblemOut(Schema):
    row: int
    case_uid: str
    element: str
    code: str
    message: str


class ImportOut(Schema):
    id: str
    file_name: str
    status: str
    mode: str
    rows: int
    rows_done: int
    new: int
    changed: int
    unchanged: int
    invalid: int
    written: int
    unknown_columns: list[str]
    message: str
    created_at: datetime
    finished_at: datetime | None
    problems: list[ImportProblemOut]


def import_out(batch: Import, limit: int = 100) -> dict:
    return {
        "id": str(batch.code),
        "file_name": batch.file_name,
        "status": batch.status,
        "mode": batch.mode,
        "rows": batch.rows,
        "rows_done": batch.rows_done,
        "new": batch.new,
        "changed": batch.changed,
        "unchanged": batch.unchanged,
        "invalid": batch.invalid,
        "written": batch.written,
        "unknown_columns": batch.unknown_columns,
        "message": batch.message,
        "created_at": batch.created_at,
        "finished_at": batch.finished_at,
        "problems": [
            {
                "row": p.row,
                "case_uid": p.case_uid,
                "element": p.element,
                "code": p.code,
                "message": p.message,
            }
            for p in batch.problems.all()[:limit]
        ],
    }


@router.post(
    "/imports",
    response={202: ImportOut, 401: Problem, 403: Problem, 422: Problem},
    openapi_extra={
        "responses": {
            202: {
                "links": {
                    "GetImport": {
                        "operationId": "registry3d_api_imports_get_import",
                        "parameters": {"import_id": "$response.body#/id"},
                        "description": "Follow the import job",
                    }
                }
            }
        }
    },
)
def create_import(
    request,
    file: File[UploadedFile],
    mode: Form[Literal["all-or-nothing", "valid-rows"]] = "all-or-nothing",
    status: Form[Literal["submitted", "draft"]] = "submitted",
    preview: Form[bool] = False,
):
    """Upload a CSV or XLSX file of cases; it is checked, then written unless a preview.

    The answer is the import job (202); follow it at GET /api/v1/imports/{id}.
    """
    token = require_write(request)
    name = file.name or "upload.csv"
    if not name.lower().endswith((".csv", ".xlsx", ".tsv", ".txt")):
        return bad_file(request, "Upload a .csv or .xlsx file", "Expected a .csv or .xlsx file")
    if file.size > MAX_UPLOAD_BYTES:
        return problem(
            request,
            422,
            "Unprocessable Content",
            "The file is too large",
            [
                {
                    "field": "file",
                    "code": "too_long",
                    "message": f"At most {MAX_UPLOAD_BYTES} bytes are accepted",
                }
            ],
        )
    try:
        path, _digest = services.store_readable_upload(token.site.code, name, file.chunks())
    except services.ImportError_ as exc:
        return bad_file(request, str(exc))
    batch = services.create_import(
        token.site, path, actor=token.user, mode=mode, default_status=status, file_name=name
    )
    tasks.check_import.enqueue(import_id=batch.pk, write=not preview, user_id=token.user.pk)
    batch.refresh_from_db()
    return Status(202, import_out(batch))


@router.get("/imports/{import_id}", response={200: ImportOut, 401: Problem, 404: Problem})
def get_import(request, import_id: str):
    """An import job of the token's site: status, counts and the first 100 problems."""
    try:
        batch = Import.objects.get(site=request.auth.site, code=import_id)
    except (Import.DoesNotExist, ValidationError):  # unknown, another site's, or not a UUID
        return problem(request, 404, "Not Found", "No import with this id at the token's site")
    return import_out(batch)
