class FhirError(Exception):
    """Base class: a FHIR resource sent to the registry was refused."""


class InvalidResource(FhirError):
    """Raised when a posted resource is malformed; carries OperationOutcome issues."""

    def __init__(self, status: int, issues: list[dict]):
        self.status = status
        self.issues = issues
        first = issues[0]["details"]["text"] if issues else "invalid resource"
        super().__init__(first)


class CaseNotFound(FhirError):
    """Raised when a response names a case the token's site does not have."""
