"""The Python blocks of the README and the tutorial run as written, in order, in a scratch dir."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "docs" / "tutorial.md"]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_code_blocks_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(path)
    assert blocks, f"{path} has no python blocks"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs"}
    for block in blocks:
        exec(compile(block, str(path), "exec"), namespace)


def test_tutorial_error_message_is_current() -> None:
    import specchain as sc
    from specchain.modules import LSTM, Linear

    text = (ROOT / "docs" / "tutorial.md").read_text()
    with pytest.raises(sc.ShapeError) as info:
        LSTM(8, 16) >> Linear(32, 4)
    assert f"# {info.value}" in text
