"""The runnable scripts in ``examples/`` run as a user runs them, in a fresh process, on tiny
settings: each trains, reports every epoch and prints what it promises."""

from __future__ import annotations

import re
from pathlib import Path

from tests.user_code import REPO, run_python

TINY = ["--epochs", "2", "--hidden", "8", "--steps", "8", "--stride", "8", "--length", "40"]


def test_char_lm_trains_on_a_file_and_prints_samples(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a stitch in time saves nine. " * 20, encoding="utf-8")
    done = run_python(str(REPO / "examples" / "char_lm.py"), str(corpus), *TINY, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{corpus}: 580 characters, 12 tokens in the vocabulary" in done.stdout
    assert len(re.findall(r"^epoch \d/2 - loss \d+\.\d{4} - ", done.stdout, flags=re.M)) == 2
    samples = re.findall(r"--- sample \d \(temperature 0\.8\) ---\n(.*)\n", done.stdout)
    assert len(samples) == 2 and all(s.startswith("a") and len(s) == 41 for s in samples)
    assert set("".join(samples)) <= set("a stitch in time saves nine.")


def test_char_lm_defaults_to_the_zen_of_python(tmp_path: Path) -> None:
    done = run_python(str(REPO / "examples" / "char_lm.py"), *TINY, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("the Zen of Python: 856 characters")
    assert "import this" not in done.stdout and "Beautiful is better" not in done.stdout[:200]
