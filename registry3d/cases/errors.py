class CaseError(Exception):
    """Base class: a change to a case was refused."""


class InvalidCase(CaseError):
    """Raised when case data or record fields break the dictionary's rules."""

    def __init__(self, problems):
        self.problems = list(problems)
        first = self.problems[0].message if self.problems else "invalid case"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(first + more)


class StaleVersion(CaseError):
    """Raised when a change was made against an older version of the case."""

    def __init__(self, case, expected: int, changes: dict):
        self.case = case
        self.expected = expected
        self.changes = changes
        super().__init__(
            f"Case {case.case_uid} was changed by someone else (now version {case.version}, "
            f"you edited version {expected})"
        )


class CaseExists(CaseError):
    """Raised when a new case reuses a case_uid the site already has."""


class NotAllowed(CaseError):
    """Raised when a change is not possible in the case's state (e.g. withdrawn)."""


class RedactionRefused(CaseError):
    """Raised when a redaction names no text value of the case, or gives no usable reason."""
