"""The Python blocks of the docs run as written, in order, in a scratch dir."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.user_code import run_python

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "docs" / "tutorial.md", ROOT / "docs" / "lstm_variants.md"]
CUSTOM_LAYERS = ROOT / "docs" / "custom_layers.md"
LAYER_FILE_BLOCK = re.compile(r'```python title="mylayers.py"\n(.*?)```', flags=re.S)


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


def test_custom_layers_page_runs_in_a_fresh_process(tmp_path: Path) -> None:
    """The blocks titled ``mylayers.py`` make that file; the other Python blocks run in order as
    one script beside it, in a fresh process: ``mylayers`` never enters this process's registry."""
    layer_file = LAYER_FILE_BLOCK.findall(CUSTOM_LAYERS.read_text())
    blocks = python_blocks(CUSTOM_LAYERS)
    assert len(layer_file) == 2 and len(blocks) >= 8
    (tmp_path / "mylayers.py").write_text("\n".join(layer_file))
    (tmp_path / "page.py").write_text("\n".join(blocks))
    done = run_python("page.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "rms_norm.weight" in done.stdout  # the printed gradcheck and verify reports
    made = [
        "model.safetensors",
        "out/normed_lstm.svg",
        "out/normed_lstm/model.py",
        "out/cli/model.py",
    ]
    assert [path for path in made if not (tmp_path / path).is_file()] == []
