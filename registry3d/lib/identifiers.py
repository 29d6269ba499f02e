"""Find direct patient identifiers in free text.

The registry never stores names, record numbers, contact details or full
dates of a patient. Free-text fields are screened with these patterns before
anything is saved; a match refuses the value with a message saying what was
found, never echoing the value itself.
"""

import re

_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("an e-mail address", re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")),
    ("a US Social Security number", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    (
        "a phone number",
        re.compile(r"(?<![\w.])(?:\+?\d{1,3}[\s.-]?)?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b"),
    ),
    (
        "a full date",
        re.compile(
            r"\b(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4})\b"
            r"|\b\d{1,2}\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{4}\b"
            r"|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2},?\s+\d{4}\b",
            re.IGNORECASE,
        ),
    ),
    (
        "a medical record or account number",
        re.compile(
            r"\b(?:mrn|mr#|medical record|record (?:no|number)|acct|account|accession)"
            r"\s*(?:no\.?|number|#)?\s*[:#]?\s*[A-Z0-9-]{4,}",
            re.IGNORECASE,
        ),
    ),
    ("a long number that may be a record number", re.compile(r"\b\d{7,}\b")),
    (
        "a person's name",
        re.compile(
            r"\b(?i:patient|pt|mr|mrs|ms|miss|dr|name)\b\.?\s*:?\s+"
            r"[A-Z][a-z'’-]+(?:\s+[A-Z][a-z'’-]+)?",
        ),
    ),
]


def find_identifier(text: str) -> str | None:
    """Return what kind of identifier ``text`` seems to hold, or None."""
    if not text:
        return None
    for kind, pattern in _PATTERNS:
        if pattern.search(text):
            return kind
    return None
