"""The append-only audit trail, chained by hashes so tampering shows."""

import json

from django.db import models

from registry3d.audit.errors import AuditTrailReadOnly

GENESIS_HASH = "0" * 64

ACTION_WORDS = {
    "site.created": "created the site",
    "user.created": "created an account",
    "user.changed": "changed an account",
    "membership.added": "added a member",
    "membership.role_changed": "changed a member's role",
    "membership.removed": "removed a member",
    "membership.invitation_sent": "sent an invitation",
    "token.created": "created an API token",
    "token.revoked": "revoked an API token",
    "printer.added": "added a printer",
    "auth.login": "logged in",
    "auth.login_failed": "failed to log in",
    "auth.logout": "logged out",
    "auth.session_expired": "was logged out by the session time limit",
    "registry.backup": "backed up the registry",
    "auth.password_changed": "changed their password",
    "auth.password_reset": "reset their password",
    "auth.two_factor_enabled": "turned on two-factor log-in",
    "auth.two_factor_disabled": "turned off two-factor log-in",
    "questionnaire.sent": "sent a physician questionnaire",
    "questionnaire.reminded": "reminded the physician",
    "questionnaire.answered": "answered the physician questionnaire",
    "questionnaire.expired": "let a physician questionnaire expire",
    "questionnaire.cancelled": "cancelled a physician questionnaire",
    "questionnaire.ask_later": "chose to ask the physician later",
    "questionnaire.not_applicable": "marked the physician questionnaire not applicable",
    "questionnaire.bad_link": "opened a questionnaire link that is not valid",
    "redcap.records_exported": "exported records through the REDCap API",
    "dictionary.proposed": "proposed a dictionary version from a REDCap file",
    "dictionary.proposal_accepted": "accepted a proposed dictionary version",
    "case.viewed": "viewed a case's page as registry staff",
    "case.listed": "viewed a page of a site's case list as registry staff",
    "export.requested": "asked for an export",
    "export.downloaded": "downloaded an export",
    "export.refused": "was refused an export",
    "case.redacted": "redacted a value in a case",
    "cases.imported": "imported cases from a file",
    "cases.carried_forward": "carried cases forward to a new dictionary version",
    "audit.rebased": "replaced case values in old events with digests (the chain was re-based)",
}

# What the accounting of disclosures lists: reads of case pages by registry
# staff and case data leaving the registry.
DISCLOSURE_ACTIONS = (
    "case.viewed",
    "case.listed",
    "export.requested",
    "export.downloaded",
    "redcap.records_exported",
)


class AuditEvent(models.Model):
    """One thing somebody did: who, when, from where, to what, what changed.

    Each event stores the hash of the one before it, and its own hash covers
    every field, so changing or deleting any event breaks the chain that
    ``registry3d audit verify`` checks.
    """

    seq = models.PositiveBigIntegerField(unique=True)
    at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        "accounts.User",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # Kept as text too: the trail must still say who it was if the account
    # is later renamed.
    actor_label = models.CharField(max_length=254, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    site = models.ForeignKey(
        "sites.Site",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=254, blank=True)
    # How the change came in: "web", "cli", or "api token r3d_…" (its prefix).
    via = models.CharField(max_length=40, blank=True)
    # The changed values as canonical JSON text. Stored as text, not as a
    # JSON column, because PostgreSQL's jsonb rewrites numbers (1e16, -0.0)
    # and the hash must cover exactly what is stored.
    changes_json = models.TextField(default="{}")
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-seq"]
        indexes = [models.Index(fields=["site", "-seq"])]

    def __str__(self):
        return f"#{self.seq} {self.action} by {self.actor_label or 'system'}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AuditTrailReadOnly("Audit events cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditTrailReadOnly("Audit events cannot be deleted")

    @property
    def changes(self) -> dict:
        return json.loads(self.changes_json)

    @property
    def description(self) -> str:
        """The event in words, for pages: "added a printer (J750-1)"."""
        words = ACTION_WORDS.get(self.action, self.action)
        changes = self.changes
        detail = changes.get("label") or changes.get("name") or self.object_id
        return f"{words} ({detail})" if detail else words


class AuditHead(models.Model):
    """The single row naming the newest event; writers lock it to append."""

    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)
    # The hash before the newest event's: the one-statement append on
    # PostgreSQL moves the head and reads back both in a single UPDATE.
    prev_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self):
        return f"audit head at #{self.seq}"
