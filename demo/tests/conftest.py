"""pytest setup of the demo's tests: the same fixtures and per-test seed/dtype reset as tests/ (tests/conftest.py), plus
the demo's own fixture modules in demo/tests/fixtures/<area>.py, registered automatically."""

from __future__ import annotations

import pathlib

from tests.conftest import _reset_seeds_and_dtype  # noqa: F401  (autouse: every demo test starts from seed 0 too)
from tests.conftest import pytest_plugins as _shared_plugins

pytest_plugins = [*_shared_plugins, *sorted(
    f"demo.tests.fixtures.{p.stem}" for p in (pathlib.Path(__file__).parent / "fixtures").glob("*.py")
    if p.stem != "__init__"
)]
