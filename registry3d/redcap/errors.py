class RedcapError(Exception):
    """Base class: a REDCap import was refused."""


class ImportRefused(RedcapError):
    """Raised when an import of REDCap records has problems; nothing was written."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s); nothing was imported")
