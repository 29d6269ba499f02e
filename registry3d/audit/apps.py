from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "registry3d.audit"
    label = "audit"
    verbose_name = "Audit trail"
