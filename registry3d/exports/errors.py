"""What exports refuse."""


class ExportError(Exception):
    """Base class: an export was not made."""


class ExportRefused(ExportError):
    """Raised when the person asking may not have this export; the refusal is audited."""


class InvalidOptions(ExportError):
    """Raised when an export's elements, filters or format do not exist; names each."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems
