class SiteError(Exception):
    """Base class: a request about sites, members or tokens was refused."""


class UnknownSite(SiteError):
    """Raised when a site code names no site."""


class UnknownUser(SiteError):
    """Raised when an e-mail address names no account."""


class DuplicateSite(SiteError):
    """Raised when a new site's code is already taken."""


class DuplicateUser(SiteError):
    """Raised when a new account's e-mail address is already registered."""


class InvalidValue(SiteError):
    """Raised when a value (code, role, scope...) is not one of those allowed."""


class IdentifierSuspected(InvalidValue):
    """Raised when typed text (a printer's label, a token's name) looks like an identifier.

    ``field`` names the form field the refusal belongs next to.
    """

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


class NotAMember(SiteError):
    """Raised when a token or role is asked for someone outside the site."""


class LastManager(SiteError):
    """Raised when a change would leave a site without any manager."""
