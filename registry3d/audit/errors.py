class AuditTrailReadOnly(Exception):
    """Raised when code tries to change or delete a recorded audit event."""
