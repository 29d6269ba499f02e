"""Keep secrets that travel in addresses out of every log.

A physician's questionnaire link is its own credential (``/q/<token>/``);
in a log line as it is, anyone who reads the log could answer in the
physician's place. The web server's access log (:mod:`registry3d.lib.access_log`)
and every log record of the registry (:class:`HideSecrets`, in ``LOGGING``)
pass through :func:`redact`.
"""

import logging
import re

# Every path that carries a secret; the matched part is replaced.
SECRET_PATHS = [re.compile(r"(?<=/q/)([^/?\s\"']+)")]
HIDDEN = "[hidden]"


def redact(text: str | None) -> str | None:
    if not text:
        return text
    for pattern in SECRET_PATHS:
        text = pattern.sub(HIDDEN, text)
    return text


class HideSecrets(logging.Filter):
    """A logging filter that rewrites a record's message without the secrets in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = redact(message)
        if hidden != message:
            record.msg, record.args = hidden, ()
        return True
