"""``docs/importing.md`` runs as written, in a fresh process, and prints what it says."""

from __future__ import annotations

import re
from pathlib import Path

from tests.user_code import run_python

PAGE = Path(__file__).resolve().parents[2] / "docs" / "importing.md"


def test_importing_page_runs_and_its_printed_output_is_current(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert len(blocks) == 3
    (tmp_path / "page.py").write_text("\n".join(blocks))
    done = run_python("page.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    shown = re.findall(r"^# (?!\.\.\.)(.*)$", "\n".join(blocks), flags=re.M)
    assert len(shown) == 9  # the summary's lines and the error message, as printed
    assert [line for line in shown if line.rstrip() not in done.stdout] == []
    assert "['gru', 'last_step', 'proj']" in done.stdout
