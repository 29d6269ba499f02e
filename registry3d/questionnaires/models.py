"""Requests to a physician to say what a case's model or guide was worth.

A request belongs to one case. The physician gets links by e-mail (the first
one, up to two reminders, and any the site resends); each link is a random
token of 256 bits of which only the SHA-256 is kept, so a stolen table opens
nothing. The answers become part of the case through the cases' one write
path; the response row records that the request was answered, once.
"""

import uuid

from django.conf import settings
from django.db import models


class Specialty(models.TextChoices):
    CARDIOTHORACIC_SURGERY = "cardiothoracic_surgery", "Cardiothoracic surgery"
    CARDIOLOGY = "cardiology", "Cardiology"
    ORTHOPAEDIC_SURGERY = "orthopaedic_surgery", "Orthopaedic surgery"
    NEUROSURGERY = "neurosurgery", "Neurosurgery"
    ENT = "otolaryngology", "Otolaryngology (ENT)"
    MAXILLOFACIAL = "oral_maxillofacial_surgery", "Oral and maxillofacial surgery"
    PLASTIC_SURGERY = "plastic_surgery", "Plastic and reconstructive surgery"
    UROLOGY = "urology", "Urology"
    GENERAL_SURGERY = "general_surgery", "General surgery"
    VASCULAR_SURGERY = "vascular_surgery", "Vascular surgery"
    INTERVENTIONAL_RADIOLOGY = "interventional_radiology", "Interventional radiology"
    PEDIATRIC_SURGERY = "pediatric_surgery", "Pediatric surgery"
    ONCOLOGY = "oncology", "Oncology"
    OTHER = "other", "Other"


class RequestStatus(models.TextChoices):
    SENT = "sent", "Sent"
    ANSWERED = "answered", "Answered"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"
    ASK_LATER = "ask_later", "Ask later"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


# A request in these states may still be answered.
OPEN_STATUSES = (RequestStatus.SENT,)


class QuestionnaireRequest(models.Model):
    """The site's request for one case: to whom, when, and what became of it."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    site = models.ForeignKey("sites.Site", on_delete=models.PROTECT, related_name="+")
    case = models.OneToOneField(
        "cases.Case", on_delete=models.PROTECT, related_name="questionnaire"
    )
    status = models.CharField(max_length=16, choices=RequestStatus.choices)
    # The physician's work address and specialty (not the patient's): needed
    # to send the links and to let a physician with an account find them.
    email = models.EmailField(blank=True)
    specialty = models.CharField(max_length=32, choices=Specialty.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    reminders_sent = models.PositiveSmallIntegerField(default=0)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)  # expired or cancelled

    class Meta:
        indexes = [
            models.Index(fields=["site", "status"]),
            models.Index(fields=["status", "sent_at"]),
            models.Index(fields=["email"]),
        ]

    def __str__(self):
        return f"questionnaire for {self.case} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class QuestionnaireLink(models.Model):
    """One e-mailed link; valid while its request is open and unexpired."""

    request = models.ForeignKey(
        QuestionnaireRequest, on_delete=models.CASCADE, related_name="links"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16)  # first, reminder, resent
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.kind} link of {self.request}"


class QuestionnaireResponse(models.Model):
    """The physician's answers, stored once per request (the unique key sees to it)."""

    request = models.OneToOneField(
        QuestionnaireRequest, on_delete=models.PROTECT, related_name="response"
    )
    answers = models.JSONField(default=dict)
    submitted_at = models.DateTimeField(auto_now_add=True)
    # A physician who answered while logged in; empty for a link.
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The case's version that took the answers; empty when the case could not
    # (it was withdrawn, or no longer valid), with the reason beside it.
    case_version = models.PositiveIntegerField(null=True, blank=True)
    case_problem = models.CharField(max_length=500, blank=True)

    def __str__(self):
        return f"answers to {self.request}"


class LinkFailure(models.Model):
    """Unknown or dead links opened from one address in one hour, to slow down guessing."""

    address = models.CharField(max_length=64)  # a keyed hash of the IP address
    hour = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["address", "hour"], name="one_counter_per_address_hour")
        ]

    def __str__(self):
        return f"{self.count} bad links from {self.address} at {self.hour:%Y-%m-%d %H}:00"
