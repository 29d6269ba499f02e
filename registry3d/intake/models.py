"""Bulk imports of case files and the problems found in them."""

import uuid

from django.conf import settings
from django.db import models


class ImportMode(models.TextChoices):
    ALL_OR_NOTHING = "all-or-nothing", "All or nothing"
    VALID_ROWS = "valid-rows", "Valid rows only"


class ImportStatus(models.TextChoices):
    PENDING = "pending", "Waiting to start"
    CHECKING = "checking", "Checking rows"
    CHECKED = "checked", "Checked (preview)"
    IMPORTING = "importing", "Writing cases"
    DONE = "done", "Done"
    REFUSED = "refused", "Refused: invalid rows"
    FAILED = "failed", "Failed"
    INTERRUPTED = "interrupted", "Interrupted"


class Import(models.Model):
    """One uploaded file of cases for one site, checked and then written in batches.

    Counts and the number of committed batches are saved with each batch,
    so after a crash the row says how far it got, and running the import
    again finishes it: rows already written are unchanged the second time.
    """

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    site = models.ForeignKey("sites.Site", on_delete=models.PROTECT, related_name="imports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    file_name = models.CharField(max_length=255)
    file_path = models.CharField(max_length=500, blank=True)
    file_sha256 = models.CharField(max_length=64, blank=True)
    file_format = models.CharField(max_length=8, blank=True)  # csv | xlsx
    delimiter = models.CharField(max_length=16, blank=True)
    mode = models.CharField(
        max_length=16, choices=ImportMode.choices, default=ImportMode.ALL_OR_NOTHING
    )
    default_status = models.CharField(max_length=16, default="submitted")
    status = models.CharField(
        max_length=16, choices=ImportStatus.choices, default=ImportStatus.PENDING
    )
    rows = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    new = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    invalid = models.PositiveIntegerField(default=0)
    written = models.PositiveIntegerField(default=0)
    batches_committed = models.PositiveIntegerField(default=0)
    unknown_columns = models.JSONField(default=list)
    message = models.CharField(max_length=500, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The process working on it, to tell a running import from a dead one.
    host = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"import {self.code} of {self.file_name} ({self.status})"


class ImportProblem(models.Model):
    """One problem in one row: shown on the preview and downloadable as CSV."""

    site = models.ForeignKey("sites.Site", on_delete=models.PROTECT, related_name="+")
    batch = models.ForeignKey(Import, on_delete=models.CASCADE, related_name="problems")
    row = models.PositiveIntegerField()
    case_uid = models.CharField(max_length=64, blank=True)
    element = models.CharField(max_length=120, blank=True)
    code = models.CharField(max_length=40)
    message = models.CharField(max_length=500)

    class Meta:
        ordering = ["row", "id"]

    def __str__(self):
        return f"row {self.row}, {self.element}: {self.message}"


class ModelFile(models.Model):
    """A 3D model file a site chose to keep, stored once by its content hash.

    The file is at ``VAR_DIR/models/<site>/<storage_name>``, a random name:
    neither the name it was uploaded under nor its hash names it on disk.
    ``file_name`` is that uploaded name only when it passed the identifier
    screen, for the site's own list; otherwise it is empty and the file is
    listed as ``model-<code>.<format>``. The row holds what the registry
    measured in the file; the same content uploaded again is the same row.
    """

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    site = models.ForeignKey("sites.Site", on_delete=models.PROTECT, related_name="model_files")
    sha256 = models.CharField(max_length=64)
    storage_name = models.CharField(max_length=80, unique=True)
    file_name = models.CharField(max_length=255, blank=True)
    format = models.CharField(max_length=8)
    size = models.PositiveBigIntegerField()
    measurement = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "sha256"], name="one_model_file_per_content")
        ]
        ordering = ["-created_at"]

    def __str__(self):
        return f"model file {self.code}"

    @property
    def shown_name(self) -> str:
        """The name the site's own list shows: the screened upload name, or a neutral one."""
        return self.file_name or f"model-{str(self.code)[:8]}.{self.format}"
