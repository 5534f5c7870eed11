"""Fixtures of the opening tests; the builders live in tests/opening/builders.py."""

from __future__ import annotations

import pytest

from tests.opening.builders import KeyedSection, run_dkg


@pytest.fixture(scope="module")
def keyed() -> KeyedSection:
    """A section whose five witnesses ran the DKG with threshold 3 (one per test module)."""
    return run_dkg()
