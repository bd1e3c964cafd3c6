"""The command line on a PyTorch model file, as a person types it (a fresh process in the
file's folder): ``specchain summary|render|export net.py:Net --input-shape ...``."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.user_code import run_python

NET = """
import torch
from torch import nn


class Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(20, 8)
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embedding(tokens))
        return self.fc(out[:, -1])


class Seq2Seq(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.GRU(4, 6)
        self.decoder = nn.GRU(3, 6)
        self.out = nn.Linear(6, 2)

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _, h = self.encoder(source)
        out, _ = self.decoder(target, h)
        return self.out(out)


class Doubles(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2


def seeded() -> nn.Module:
    torch.manual_seed(0)
    return Classifier().double()
"""


def specchain(*argv: str, cwd: Path) -> tuple[int, str, str]:
    done = run_python("-m", "specchain", *argv, cwd=cwd)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "net.py").write_text(NET)
    return tmp_path


def load_file(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summary_of_a_torch_class_with_token_input(folder: Path) -> None:
    code, out, err = specchain(
        "summary", "net.py:Classifier", "--input-shape", "B,T", "--input-dtype", "long", cwd=folder
    )
    assert code == 0, err
    rows = [line.split()[:2] for line in out.splitlines()[2:7]]
    assert rows == [
        ["(input)", "int[B,"],
        ["embedding", "Embedding(20"],
        ["lstm", "LSTM(8"],
        ["last_step", "LastStep(axis=1)"],
        ["fc", "Linear(16"],
    ]
    assert out.rstrip().endswith("input: int[B, T]  ->  output: [B, 4]")


def test_summary_of_a_two_input_module(folder: Path) -> None:
    code, out, err = specchain(
        "summary", "net.py:Seq2Seq", "--input-shape", "S,B,4", "--input-shape", "T,B,3", cwd=folder
    )
    assert code == 0, err
    assert "input: (source: [S, B, 4], target: [T, B, 3])  ->  output: [T, B, 2]" in out


def test_export_of_a_torch_factory_gives_back_the_same_module(folder: Path) -> None:
    code, out, err = specchain(
        "export", "net.py:seeded", "--input-shape", "B,T", "--input-dtype", "long",
        "--out", "exported", cwd=folder,
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("wrote exported/model.py")
    original = load_file(folder / "net.py", "cli_net").seeded().eval()
    exported = load_file(folder / "exported" / "model.py", "cli_exported").load()
    tokens = torch.randint(0, 20, (3, 7))
    torch.testing.assert_close(exported(tokens), original(tokens), rtol=1e-12, atol=1e-12)


def test_render_draws_the_torch_model(folder: Path) -> None:
    code, out, err = specchain(
        "render", "net.py:Classifier", "--input-shape", "B,T", "--input-dtype", "long",
        "-o", "net.dot", cwd=folder,
    )  # fmt: skip
    assert code == 0, err
    assert out == "wrote net.dot\n"
    dot = (folder / "net.dot").read_text()
    for node in ("embedding", "lstm", "last_step", "fc"):
        assert f"n_{node}_" in dot, node  # node ids are the names plus a hash
    assert re.search(r"n_input_\w+ -> n_embedding_\w+ \[label=<int\[B, T\]>\]", dot)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["summary", "net.py:Classifier"],
            "specchain summary: error: net.py:Classifier is a PyTorch module (Classifier): give "
            "--input-shape for each argument of its forward, e.g. --input-shape T,B,8 (T and B "
            "symbolic; token indices: add --input-dtype long)",
        ),
        (
            ["summary", "net.py:Classifier", "--input-shape", "B,T,F"],
            "specchain summary: error: --input-shape B,T,F: 'F' is neither a size nor one of "
            "T, B, S; write feature sizes as numbers, e.g. --input-shape T,B,8",
        ),
        (
            ["summary", "zoo:seq2seq", "--input-shape", "T,B,8"],
            "specchain summary: error: --input-shape and --input-dtype describe a PyTorch "
            "module's inputs; zoo:seq2seq is not one (its input type is part of the model): "
            "drop them",
        ),
        (
            ["summary", "net.py:Doubles", "--input-shape", "T,B,8"],
            "specchain summary: error: cannot import node 'mul' (call_function operator.mul): "
            "specchain has no converter for it",
        ),
        (
            [
                "summary",
                "net.py:Seq2Seq",
                "--input-shape",
                "S,B,4",
                "--input-shape",
                "T,B,3",
                "--input-dtype",
                "float",
                "--input-dtype",
                "long",
                "--input-dtype",
                "long",
            ],
            "specchain summary: error: 3 --input-dtype options for 2 --input-shape options",
        ),
    ],
)
def test_mistakes_are_one_line_with_status_2(folder: Path, argv: list[str], message: str) -> None:
    code, out, err = specchain(*argv, cwd=folder)
    assert code == 2
    assert out == ""
    assert err.startswith(message), err
    assert len(err.splitlines()) == 1
