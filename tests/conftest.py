"""Shared fixtures: a fixed seed for every test, and float64 helpers."""

from __future__ import annotations

import numpy as np
import pytest

import specchain as sc


@pytest.fixture(autouse=True)
def _seeded() -> None:
    sc.seed(0)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
