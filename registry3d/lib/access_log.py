"""The web server's access log, without the secrets some addresses carry (see redact)."""

from gunicorn.glogging import Logger

from registry3d.lib.redact import redact


class RedactingLogger(Logger):
    """gunicorn's logger, with secrets in request lines, paths and referrers hidden.

    ``registry3d serve`` runs gunicorn with it.
    """

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "f", "{referer}i"):
            if key in atoms:
                atoms[key] = redact(atoms[key])
        return atoms
