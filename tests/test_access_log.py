"""The access log never carries a questionnaire link's token."""

import datetime

from gunicorn.config import Config

from registry3d.lib.access_log import RedactingLogger
from registry3d.lib.redact import redact

TOKEN = "k3Jd8s-Qw_Zx91LmN0pQrStUvWxYz0123456789abcd"


class Response:
    status = "200 OK"
    sent = 512
    headers = []


def test_a_questionnaire_token_is_hidden_in_every_part_of_the_access_line(capsys):
    config = Config()
    config.set("accesslog", "-")
    logger = RedactingLogger(config)
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": f"/q/{TOKEN}/?x=1",
        "PATH_INFO": f"/q/{TOKEN}/",
        "QUERY_STRING": "x=1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "198.51.100.4",
        "HTTP_REFERER": f"https://registry.example.org/q/{TOKEN}/",
    }
    headers = [("REFERER", f"https://registry.example.org/q/{TOKEN}/")]
    req = type("Request", (), {"headers": headers})()
    atoms = logger.atoms(Response(), req, environ, datetime.timedelta(milliseconds=12))
    assert atoms["r"] == "POST /q/[hidden]/?x=1 HTTP/1.1"
    assert atoms["U"] == "/q/[hidden]/"
    assert TOKEN not in atoms["f"] and TOKEN not in atoms["{referer}i"]
    logger.access(Response(), req, environ, datetime.timedelta(milliseconds=12))
    written = capsys.readouterr().out
    assert "198.51.100.4" in written and "/q/[hidden]/" in written
    assert TOKEN not in written


def test_other_paths_are_logged_as_they_are():
    assert redact("GET /sites/SITEA/cases/?q=1 HTTP/1.1") == "GET /sites/SITEA/cases/?q=1 HTTP/1.1"
    assert redact("/questionnaires/8b1c/") == "/questionnaires/8b1c/"
    assert redact(None) is None


def test_the_registrys_own_log_lines_hide_a_token_too(db, client):
    import logging

    from django.conf import settings

    from registry3d.lib.redact import HideSecrets

    console = settings.LOGGING["handlers"]["console"]
    assert "registry3d.lib.redact.HideSecrets" in [
        settings.LOGGING["filters"][f]["()"] for f in console["filters"]
    ]

    class Collect(logging.Handler):
        lines: list[str] = []

        def emit(self, record):
            self.lines.append(self.format(record))

    handler = Collect()
    handler.addFilter(HideSecrets())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        client.get(f"/q/{TOKEN}/")  # Django logs the 404 with its path
    finally:
        logger.removeHandler(handler)
    assert any("/q/[hidden]/" in line for line in Collect.lines), Collect.lines
    assert not any(TOKEN in line for line in Collect.lines)
