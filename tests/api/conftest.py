"""API tests talk real HTTP to a live server, as site software would."""

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest

from tests.conftest import make_world


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


class Http:
    def __init__(self, base: str):
        self.base = base.rstrip("/")

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body=None,
        raw: bytes | None = None,
        headers: dict | None = None,
    ) -> Reply:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return Reply(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return Reply(error.code, dict(error.headers), error.read())


@pytest.fixture
def http_world(transactional_db, live_server):
    return make_world()


@pytest.fixture
def http(live_server) -> Http:
    return Http(live_server.url)
