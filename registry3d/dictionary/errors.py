class DictionaryError(Exception):
    """Raised when a dictionary file cannot be loaded; names file and line."""

    def __init__(self, message: str, file: str = "", line: int | None = None):
        self.message = message
        self.file = file
        self.line = line
        where = file + (f", line {line}" if line else "")
        super().__init__(f"{where}: {message}" if where else message)


class ExpressionError(Exception):
    """Raised when an expression uses syntax or names the dictionary does not allow."""
