"""The command-line contract: every failure is one line on stderr and exit status 2 (1 for an
internal error, with the hint to rerun with ``--traceback``), never a traceback unless asked for.

The table runs each bad invocation as a person types it, ``python -m specchain ...``, in a fresh
process in a folder holding the files it needs.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import specchain as sc
from specchain import cli
from specchain.exporters import graphviz as gv
from tests.user_code import run_python

FILES = {
    "raise_import.py": "raise ValueError('bad value at import')\n",
    "raise_call.py": "def build():\n    raise TypeError('bad call')\n",
    "exit0.py": "import sys\nsys.exit(0)\n",
    "exit_call.py": "import sys\ndef build():\n    sys.exit(3)\n",
    "recurse.py": "def build():\n    return build()\n",
    "not_a_model.py": "model = 3\n",
    "text.npz": "this is a text file, not a saved model\n",
    "afile.txt": "a file where a folder is expected\n",
    "notes/keep.txt": "the user's own notes\n",
}

BAD = [
    # argparse mistakes: one line too, naming the command and where the help is
    (["bogus"], r"specchain: error: argument COMMAND: invalid choice: 'bogus' .*--help$"),
    (["summary"], r"specchain summary: error: the following arguments are required: MODEL"),
    (["render", "zoo:classifier"], r"error: the following arguments are required: -o/--output"),
    (["render", "zoo:classifier", "-o", "m.svg", "--rankdir", "XX"], r"invalid choice: 'XX'"),
    # model names and files
    (["summary", "zoo:nope"], r"summary: error: unknown zoo model 'nope'; choose one of seq2seq"),
    (["summary", "missing.py:model"], r"summary: error: no such file: missing\.py$"),
    (["summary", "missing.npz"], r"summary: error: missing\.npz: no such file"),
    (["summary", "model.txt"], r"summary: error: cannot read model 'model\.txt': use zoo:NAME"),
    (["summary", "text.npz"], r"summary: error: text\.npz: "),
    (["summary", "array.npz"], r"summary: error: array\.npz: "),  # a .npy renamed .npz
    (["summary", "not_a_model.py:model"], r"not_a_model\.py:model is a int, not a SpecChain"),
    (["summary", "not_a_model.py:nothing"], r"not_a_model\.py has no attribute 'nothing'"),
    # output paths
    (
        ["render", "zoo:classifier", "-o", "model.bmp"],
        r"render: error: -o model\.bmp: unknown suffix '\.bmp'; .* use one of \.svg, \.png, \.pdf",
    ),
    (["render", "zoo:classifier", "-o", "notes"], r"-o notes: is a folder; give the file to wr"),
    (
        ["render", "zoo:classifier", "-o", "afile.txt/m.svg"],
        r"render: error: afile\.txt: a file is in the way where a folder is needed$",
    ),
    (["export", "zoo:classifier", "--out", "afile.txt"], r"--out afile\.txt: is a file, not a"),
    (["export", "zoo:classifier", "--out", "afile.txt/e"], r"error: afile\.txt(/e)?: a "),
    (
        ["export", "zoo:classifier", "--out", "notes"],
        r"export: error: --out notes: the folder is not empty and is not a previous export "
        r"\(it holds keep\.txt\); choose a new or empty folder, or add --force",
    ),
    (["export", "zoo:seq2seq", "--out", "e", "--class-name", "1bad"], r"class_name must be"),
    # the user's own code
    (
        ["summary", "raise_import.py:model"],
        r"summary: error: error in user code raise_import\.py while importing it: "
        r"ValueError: bad value at import$",
    ),
    (
        ["render", "raise_call.py:build", "-o", "m.svg"],
        r"render: error: error in user code raise_call\.py in build\(\): TypeError: bad call$",
    ),
    (
        ["summary", "exit0.py:model"],
        r"summary: error: exit0\.py exited with status 0 while being imported: a model file must "
        r"define the model",
    ),
    (["summary", "exit_call.py:build"], r"exit_call\.py exited with status 3 in build\(\)"),
    (
        ["export", "recurse.py:build", "--out", "e"],
        r"export: error: error in user code recurse\.py in build\(\): RecursionError: maximum "
        r"recursion depth exceeded",
    ),
    (
        ["summary", "zoo:seq2seq", "--import", "raise_import.py"],
        r"--import raise_import\.py: importing it failed: ValueError: bad value at import$",
    ),
    (["summary", "zoo:seq2seq", "--import", "exit0.py"], r"--import exit0\.py: it exited with"),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding every file the bad invocations name."""
    folder = tmp_path_factory.mktemp("cli")
    for name, text in FILES.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text(text)
    np.save(folder / "array.npy", np.zeros(3))
    (folder / "array.npy").rename(folder / "array.npz")
    return folder


def specchain(*argv: str, cwd: Path) -> tuple[int, str, str]:
    done = run_python("-m", "specchain", *argv, cwd=cwd)
    return done.returncode, done.stdout, done.stderr


def assert_one_error_line(code: int, out: str, err: str, message: str) -> None:
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    assert len(err.splitlines()) == 1, err
    assert re.search(message, err.rstrip("\n")), err


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[" ".join(argv) for argv, _ in BAD])
def test_bad_invocation_is_one_line_and_exit_2(
    workspace: Path, argv: list[str], message: str
) -> None:
    code, out, err = specchain(*argv, cwd=workspace)
    assert_one_error_line(code, out, err, message)
    assert err.startswith("specchain")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_a_read_only_folder_is_one_line_and_exit_2(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        code, out, err = specchain("render", "zoo:classifier", "-o", "locked/m.svg", cwd=tmp_path)
        assert_one_error_line(code, out, err, r"render: error: locked/m\.svg: permission denied")
    finally:
        locked.chmod(0o700)


def test_export_overwrites_a_previous_export_and_needs_force_for_other_folders(
    tmp_path: Path,
) -> None:
    code, _, err = specchain("export", "zoo:classifier", "--out", "e", cwd=tmp_path)
    assert code == 0, err
    (tmp_path / "e" / "__pycache__").mkdir()  # left by running the export's test_model.py
    code, _, err = specchain("export", "zoo:seq2seq", "--out", "e", cwd=tmp_path)
    assert code == 0, err
    (tmp_path / "e" / "notes.txt").write_text("keep me")
    before = {f.name: f.read_bytes() for f in (tmp_path / "e").iterdir() if f.is_file()}
    code, out, err = specchain("export", "zoo:classifier", "--out", "e", cwd=tmp_path)
    assert_one_error_line(code, out, err, r"--out e: .* \(it holds notes\.txt\); .* --force")
    assert before == {f.name: f.read_bytes() for f in (tmp_path / "e").iterdir() if f.is_file()}
    code, _, err = specchain("export", "zoo:classifier", "--out", "e", "--force", cwd=tmp_path)
    assert code == 0, err
    assert "class Model(nn.Module)" in (tmp_path / "e" / "model.py").read_text()
    assert (tmp_path / "e" / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    "argv",
    [
        ["--traceback", "summary", "raise_call.py:build"],
        ["summary", "raise_call.py:build", "--traceback"],
    ],
)
def test_traceback_shows_the_full_trace(workspace: Path, argv: list[str]) -> None:
    code, _, err = specchain(*argv, cwd=workspace)
    assert code == 1
    assert err.startswith("Traceback (most recent call last):")
    assert 'raise_call.py", line 2, in build' in err  # the user's own line is in the trace
    assert err.rstrip().endswith("in build(): TypeError: bad call")


def test_an_internal_error_is_one_line_with_a_hint_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(self: sc.SpecChain) -> str:
        raise KeyError("a bug in specchain")

    monkeypatch.setattr(sc.SpecChain, "summary", broken)
    assert cli.main(["summary", "zoo:seq2seq"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "specchain: internal error: KeyError: 'a bug in specchain'; rerun with --traceback to "
        "see where"
    ]
    with pytest.raises(KeyError, match="a bug in specchain"):
        cli.main(["--traceback", "summary", "zoo:seq2seq"])


def test_ctrl_c_is_one_line_and_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(self: sc.SpecChain) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(sc.SpecChain, "summary", interrupted)
    assert cli.main(["summary", "zoo:seq2seq"]) == 130
    assert capsys.readouterr().err == "specchain: interrupted\n"


def test_a_multi_line_user_error_is_joined_into_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(self: sc.SpecChain) -> str:
        raise sc.SpecError("first line\n  second line\n")

    monkeypatch.setattr(sc.SpecChain, "summary", refuse)
    assert cli.main(["summary", "zoo:seq2seq"]) == 2
    assert capsys.readouterr().err == "specchain summary: error: first line; second line\n"


@pytest.mark.parametrize("command", [[], ["summary"], ["render"], ["export"]])
def test_help_says_what_runs_code_and_what_is_safe(command: list[str]) -> None:
    done = run_python("-m", "specchain", *command, "--help", cwd=Path.cwd())
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "file.py:attribute and --import run that file's code" in text
    assert "only give files you trust" in text
    assert "A saved model file is safe to open" in text and "validated before use" in text
    assert "--traceback" in text
    if command == ["export"]:
        assert "--force" in text


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            PermissionError(errno.EACCES, "Permission denied", "locked/m.svg"),
            "locked/m.svg: permission denied: choose a path you can write to, or change its "
            "permissions",
        ),
        (
            OSError(errno.EROFS, "Read-only file system", "/mnt/m.svg"),
            "/mnt/m.svg: the file system is read-only: choose another path",
        ),
        (OSError(errno.ENOSPC, "No space left on device"), "no space left on the device"),
        (OSError(errno.EIO, "Input/output error", "m.svg"), "m.svg: Input/output error"),
    ],
)
def test_file_errors_name_the_path_and_the_fix(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: OSError,
    message: str,
) -> None:
    """What a read-only folder or a full disk gives (root ignores permissions, so simulated)."""

    def refuse(*args: object, **kwargs: object) -> Path:
        raise error

    monkeypatch.setattr(gv, "render", refuse)
    assert cli.main(["render", "zoo:classifier", "-o", "m.svg"]) == 2
    assert capsys.readouterr().err == f"specchain render: error: {message}\n"


TOKENS = st.sampled_from(
    [
        *["summary", "render", "export", "zoo:seq2seq", "zoo:classifier", "zoo:nope", "zoo:"],
        *["missing.py:model", "missing.py", "x.npz", "-o", "m.svg", "m.bmp", "m.dot", "sub"],
        *["--out", "out", "--force", "--expand", "--rankdir", "LR", "XX", "--import", "no_mod_x"],
        *["--class-name", "1bad", "Net", "--help", "-h", "", "-", "--", ":", "--bogus"],
    ]
)
ARGV = st.lists(TOKENS | st.text(alphabet="abxyz:.-_ ", max_size=8), max_size=6)


@settings(
    max_examples=80,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(argv=ARGV)
def test_any_command_line_exits_0_or_2_with_at_most_one_error_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
            code = exit_.code if isinstance(exit_.code, int) else 1
    assert code in (0, 2), (argv, code, err.getvalue())
    if code == 2:
        assert len(err.getvalue().splitlines()) == 1, err.getvalue()
        assert err.getvalue().startswith("specchain"), err.getvalue()
