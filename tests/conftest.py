"""Shared fixtures: a fixed seed for every test; under CI, Hypothesis replays fixed examples."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import settings

import specchain as sc

# CI must be reproducible: the same examples every run (explore locally, where the database
# remembers and replays any failure found).
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _seeded() -> None:
    sc.seed(0)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
