"""The append-only audit trail, chained by hashes so tampering shows."""

from django.db import models

from registry3d.audit.errors import AuditTrailReadOnly

GENESIS_HASH = "0" * 64


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
    object_id = models.CharField(max_length=64, blank=True)
    changes = models.JSONField(default=dict, blank=True)
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


class AuditHead(models.Model):
    """The single row naming the newest event; writers lock it to append."""

    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self):
        return f"audit head at #{self.seq}"
