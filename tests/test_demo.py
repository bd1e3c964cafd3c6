"""``specchain demo``: fixed work (the same figures every run), an announced, git-ignored output
folder, an ``index.html`` with the diagrams, the loss curve and the export verdicts inline, and
honest wording."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from specchain.demo import run_demo
from specchain.loss_svg import loss_curve_svg
from specchain.models import ZOO
from specchain.report_html import inline_svg
from specchain.types import SpecError
from tests.user_code import run_python

SVG_ELEMENT = re.compile(r"<svg\b.*?</svg>", re.DOTALL)


def figures(stdout: str) -> list[str]:
    """The demo's numbers: per-epoch lines without their times, the result line without its time,
    and the export verdicts."""
    kept = []
    for line in stdout.splitlines():
        if line.startswith("Epoch "):
            kept.append(re.sub(r" - [0-9.]+s$", "", line))
        elif line.startswith("classifier on embedded Reber"):
            kept.append(line.split(", trained in")[0])
        elif line.strip().startswith("export "):
            kept.append(line.strip())
    return kept


def test_two_runs_print_the_same_figures(tmp_path: Path) -> None:
    runs = [
        run_python("-m", "specchain", "demo", "--out", f"run{i}", "--epochs", "1", cwd=tmp_path)
        for i in (1, 2)
    ]
    for done in runs:
        assert done.returncode == 0, done.stderr
    first, second = (figures(done.stdout) for done in runs)
    assert first == second
    assert sum(line.startswith("Epoch 1/1 - loss: ") for line in first) == 1
    assert len([line for line in first if line.startswith("export ")]) == len(ZOO)
    output = runs[0].stdout
    assert "1 epoch, final loss" in output and "1 epochs" not in output
    assert "~" not in output  # no estimated times: it says what it did


def test_the_folder_is_announced_first_and_ignored_by_git(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    out = tmp_path / "specchain-demo"
    run_demo(out, epochs=1)
    first_line = capsys.readouterr().out.splitlines()[0]
    assert (
        first_line == f"specchain demo: writing to {out.resolve()} (git-ignored by its .gitignore)"
    )
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout == ""
    assert (out / ".gitignore").read_text().splitlines()[-1] == "*"


def test_index_html_holds_diagrams_loss_curve_and_verdicts(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    run_demo(tmp_path, epochs=2)
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<?xml" not in page
    svgs = SVG_ELEMENT.findall(page)
    assert len(svgs) == len(ZOO) + 1  # one diagram per zoo model and the loss curve
    for svg in svgs:
        ET.fromstring(svg)  # well-formed
    assert "classifier loss per epoch" in svgs[0]
    assert svgs[0].count("<polyline") == 2  # loss and val_loss
    verdicts = re.findall(r'<td class="(pass|fail)">(PASS|FAIL)</td>', page)
    assert verdicts == [("pass", "PASS")] * len(ZOO)
    for name in ZOO:
        assert f'<h2 id="{name}">{name}</h2>' in page
        assert f'href="exports/{name}/model.py"' in page
    assert "2 epochs, final loss" in page
    assert (tmp_path / "loss.svg").read_text() == svgs[0] + "\n"
    assert "![loss per epoch](loss.svg)" in (tmp_path / "index.md").read_text()


def test_demo_refuses_zero_epochs(tmp_path: Path) -> None:
    with pytest.raises(
        SpecError, match=r"the demo's epochs \(--epochs\) must be a positive int, got 0"
    ):
        run_demo(tmp_path, epochs=0)
    assert not (tmp_path / "index.html").exists()


# --- the loss-curve picture -------------------------------------------------------------------


def test_loss_curve_draws_one_polyline_per_series_on_a_log_axis() -> None:
    svg = loss_curve_svg({"loss": [1.0, 0.1, 0.01], "val_loss": [2.0, 0.2, 0.02]})
    root = ET.fromstring(svg)
    lines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 2
    points = [tuple(map(float, p.split(","))) for p in lines[0].get("points", "").split()]
    ys = [y for _, y in points]
    assert ys[1] - ys[0] == pytest.approx(ys[2] - ys[1])  # equal steps on a log axis
    xs = [x for x, _ in points]
    assert xs == sorted(set(xs))  # one point per epoch, left to right
    assert "(log scale)" in svg and "epoch 3" in svg


def test_loss_curve_is_linear_with_non_positive_values_and_skips_non_finite() -> None:
    svg = loss_curve_svg({"loss": [1.0, -1.0, float("nan"), 0.5]})
    assert "(log scale)" not in svg
    line = ET.fromstring(svg).find("{http://www.w3.org/2000/svg}polyline")
    assert line is not None and len(line.get("points", "").split()) == 3


def test_loss_curve_escapes_names() -> None:
    svg = loss_curve_svg({"a<b": [1.0]}, title="x & y")
    ET.fromstring(svg)
    assert "a&lt;b" in svg and "x &amp; y" in svg


def test_loss_curve_without_finite_values_says_so() -> None:
    with pytest.raises(ValueError, match="no finite value to draw"):
        loss_curve_svg({"loss": [float("nan")]})


def test_inline_svg_drops_the_prolog_and_refuses_other_text() -> None:
    document = '<?xml version="1.0"?>\n<!DOCTYPE svg>\n<!-- g -->\n<svg a="1"></svg>\n'
    assert inline_svg(document) == '<svg a="1"></svg>\n'
    with pytest.raises(ValueError, match="expected an SVG document"):
        inline_svg("digraph {}")
