"""Settings for the test suite: the real settings with faster, local parts."""

import os
import tempfile

os.environ.setdefault("REGISTRY3D_VAR_DIR", tempfile.mkdtemp(prefix="registry3d-test-"))
os.environ.setdefault("SECRET_KEY", "registry3d-tests-only-" + "x" * 40)

from registry3d.settings import *  # noqa: E402,F403
from registry3d.settings import STORAGES  # noqa: E402

# Argon2 is slow on purpose; one test checks it is the default in production.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Jobs run at once unless a test puts the database queue back.
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
