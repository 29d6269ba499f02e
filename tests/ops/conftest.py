"""Registries of their own for the backup, restore and doctor tests.

Each is a database beside the suite's: a new SQLite file, or a new
PostgreSQL database on the suite's server when the suite runs on
PostgreSQL. The commands run in subprocesses, as an administrator runs them.
"""

import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.test_deployment import clean_env

CLI = [sys.executable, "-m", "registry3d.cli"]


@dataclass
class Registry:
    """One registry: its var folder and database, and how to reach them."""

    var: Path
    url: str  # empty for the SQLite default under var/

    @property
    def env(self) -> dict:
        extra = {"DATABASE_URL": self.url} if self.url else {}
        return clean_env(self.var.parent, **extra)

    def cli(self, *args, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*CLI, *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
        )

    def execute(self, sql: str):
        """Run one statement straight on the database (no registry code); return the first row."""
        if self.url:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as connection:
                cursor = connection.execute(sql)
                return cursor.fetchone() if cursor.description else None
        with sqlite3.connect(self.var / "registry3d.sqlite3") as connection:
            return connection.execute(sql).fetchone()

    def count(self, table: str) -> int:
        return self.execute(f'SELECT COUNT(*) FROM "{table}"')[0]


@pytest.fixture(scope="session")
def new_registry(tmp_path_factory):
    """Make new registries: empty, or migrated (copied from one migrated once).

    PostgreSQL databases are dropped at the end.
    """
    url = os.environ.get("DATABASE_URL", "")
    server = url.rsplit("/", 1)[0] if url.startswith("postgres") else ""
    created = []
    template: list[Registry] = []

    def create(name: str, template_name: str = "") -> None:
        import psycopg

        copy = f' TEMPLATE "{template_name}"' if template_name else ""
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"{copy}')
        created.append(name)

    def make(label: str, migrated: bool = False) -> Registry:
        var = tmp_path_factory.mktemp(label) / "var"
        if migrated and not template:
            first = make("template")
            result = first.cli("manage", "migrate", "--verbosity", "0")
            assert result.returncode == 0, result.stderr
            template.append(first)
        name = f"ops_{label}_{uuid.uuid4().hex[:10]}"
        if server:
            create(name, template[0].url.rsplit("/", 1)[1] if migrated else "")
            return Registry(var, f"{server}/{name}")
        if migrated:
            var.mkdir(parents=True)
            shutil.copyfile(template[0].var / "registry3d.sqlite3", var / "registry3d.sqlite3")
        return Registry(var, "")

    yield make
    if created:
        import psycopg

        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            for name in reversed(created):
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
