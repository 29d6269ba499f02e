"""Registries of their own for the trust tests that run the command line (see tests/ops)."""

from tests.ops.conftest import new_registry  # noqa: F401 - a fixture
