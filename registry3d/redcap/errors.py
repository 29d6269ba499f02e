class RedcapError(Exception):
    """Base class: a REDCap import or dictionary proposal was refused."""


class ImportRefused(RedcapError):
    """Raised when an import of REDCap records has problems; nothing was written."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s); nothing was imported")


class ProposalRefused(RedcapError):
    """Raised when a REDCap data dictionary cannot become a dictionary version."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
