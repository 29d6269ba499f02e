"""Dictionary versions proposed from REDCap data-dictionary files, waiting for review."""

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse


class ProposalStatus(models.TextChoices):
    PROPOSED = "proposed", "Waiting for review"
    ACCEPTED = "accepted", "Accepted"


class DictionaryProposal(models.Model):
    """A new dictionary version made from an uploaded REDCap data dictionary.

    It holds the uploaded file, the proposed dictionary file and what it
    changes; accepting it writes the file under the registry's folder for an
    administrator to put in force (``REGISTRY3D_DICTIONARY``).
    """

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    file_name = models.CharField(max_length=200)
    base_version = models.CharField(max_length=20)
    version = models.CharField(max_length=20)
    csv_text = models.TextField()
    yaml_text = models.TextField()
    changes = models.JSONField(default=list)
    differences = models.JSONField(default=list)
    notes = models.JSONField(default=list)
    status = models.CharField(
        max_length=16, choices=ProposalStatus.choices, default=ProposalStatus.PROPOSED
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    accepted_path = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"dictionary {self.base_version} → {self.version} from {self.file_name}"

    def get_absolute_url(self):
        return reverse("redcap_proposal", args=[self.code])
