"""The registry as an IT admin runs it: real processes, real settings."""

import http.cookiejar
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

CLI = [sys.executable, "-m", "registry3d.cli"]


def clean_env(tmp_path, **extra) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("REGISTRY3D_", "DJANGO_"))
        and key not in ("DATABASE_URL", "SECRET_KEY")
    }
    env["REGISTRY3D_VAR_DIR"] = str(tmp_path / "var")
    env.update(extra)
    return env


def init_registry(env: dict, setup: str = "") -> str:
    """``registry3d init`` in ``env``, then the Python ``setup`` in its shell; return its output."""
    init = subprocess.run([*CLI, "init"], env=env, capture_output=True, text=True, timeout=300)
    assert init.returncode == 0, init.stderr
    if not setup:
        return ""
    done = subprocess.run(
        [*CLI, "manage", "shell", "-c", setup],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_check_deploy_reports_nothing_in_production_mode(tmp_path):
    env = clean_env(
        tmp_path,
        REGISTRY3D_PRODUCTION="1",
        ALLOWED_HOSTS="registry.example.org",
        SECRET_KEY=secrets.token_urlsafe(50),
    )
    result = subprocess.run(
        [*CLI, "manage", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stderr


def test_the_development_default_does_warn_under_check_deploy(tmp_path):
    result = subprocess.run(
        [*CLI, "manage", "check", "--deploy", "--fail-level", "WARNING"],
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "security.W012" in result.stderr  # session cookie not Secure over plain HTTP


@pytest.mark.parametrize(
    "variable, value, message",
    [
        (
            "REGISTRY3D_PRODUCTION",
            "maybe",
            "Configuration error: REGISTRY3D_PRODUCTION='maybe': expected one of 1/0, "
            "true/false, yes/no, on/off",
        ),
        (
            "DATABASE_URL",
            "mysql://db/registry",
            "Configuration error: DATABASE_URL must point to PostgreSQL (postgres://...) "
            "or SQLite (sqlite:///path)",
        ),
        (
            "REGISTRY3D_LOGIN_FAILURE_LIMIT",
            "ten",
            "Configuration error: REGISTRY3D_LOGIN_FAILURE_LIMIT='ten': expected a whole number",
        ),
    ],
)
def test_a_bad_setting_stops_start_up_with_one_line_naming_it(tmp_path, variable, value, message):
    result = subprocess.run(
        [*CLI, "site", "list"],
        env=clean_env(tmp_path, **{variable: value}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr == f"Error: {message}\n"


def test_production_mode_needs_allowed_hosts(tmp_path):
    result = subprocess.run(
        [*CLI, "site", "list"],
        env=clean_env(tmp_path, REGISTRY3D_PRODUCTION="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "ALLOWED_HOSTS must name the registry's host names in production" in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_init_demo_then_serve_answers_and_a_demo_user_logs_in(tmp_path):
    """What the README's first command does, on the embedded SQLite default."""
    env = clean_env(tmp_path)
    init = subprocess.run(
        [*CLI, "init", "--demo", "--demo-password", "demo-pass-2026"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert init.returncode == 0, init.stderr
    assert "manager@demo01.example.org" in init.stderr
    assert (tmp_path / "var" / "registry3d.sqlite3").exists()
    key_file = tmp_path / "var" / "secret_key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"

    # Running init again keeps the data and the key.
    key = key_file.read_text()
    again = subprocess.run([*CLI, "init"], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert key_file.read_text() == key

    port = free_port()
    server = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        deadline = time.monotonic() + 60
        while True:
            try:
                page = opener.open(base + "/accounts/login/", timeout=5).read().decode()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "the server did not answer within 60 s"
                time.sleep(0.3)
        assert "<h1>Log in</h1>" in page
        assert re.search(r"/static/registry3d/registry3d\.[0-9a-f]{12}\.css", page)
        csrf = next(c.value for c in jar if c.name == "csrftoken")
        form = urllib.parse.urlencode(
            {
                "username": "manager@demo01.example.org",
                "password": "demo-pass-2026",
                "csrfmiddlewaretoken": csrf,
            }
        ).encode()
        request = urllib.request.Request(
            base + "/accounts/login/", data=form, headers={"Referer": base + "/accounts/login/"}
        )
        home = opener.open(request, timeout=10)
        assert home.url == base + "/sites/DEMO01/"
        assert "Demo University Hospital" in home.read().decode()
        css = opener.open(
            base + re.search(r"(/static/registry3d/registry3d\.[0-9a-f]{12}\.css)", page).group(1)
        )
        assert css.status == 200
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_commands_on_a_database_never_set_up_say_to_run_init(tmp_path):
    result = subprocess.run(
        [*CLI, "site", "list"], env=clean_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert result.stderr == (
        "Error: The database is not set up or not up to date; run 'registry3d init' first\n"
    )


def test_init_refuses_a_weak_admin_password_before_touching_the_database(tmp_path):
    result = subprocess.run(
        [*CLI, "init", "--admin-email", "root@example.org", "--admin-password", "short"],
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Error: Password refused: This password is too short.")
    assert not (tmp_path / "var" / "registry3d.sqlite3").exists()
