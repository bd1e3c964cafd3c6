"""A user's layer module written to a temporary folder, and Python run on it in a fresh process.

Layers from files in ``tmp_path`` are only ever imported in subprocesses: importing them into the
test process would leave ``mylayers`` in ``sys.modules`` and its kinds in the registry.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import specchain as sc

REPO = Path(sc.__file__).resolve().parents[1]  # the specchain under test, not an installed one

# ``Scale``: y = x * weight over the last axis, x [..., F] -> y [..., F]; weight [F].
LAYERS = """
import attrs
import numpy as np
import specchain as sc
from specchain.params import ParamDecl, normal


@attrs.define(eq=False)
class Scale(sc.NNModuleSpec):
    features: int = attrs.field()

    def declare_params(self):
        return {"weight": ParamDecl((self.features,), normal())}

    def infer(self, in_type, dims):
        return in_type

    def forward(self, params, x, ctx):
        return x * params["weight"], x

    def backward(self, params, x, dy):
        dweight = (dy * x).reshape(-1, self.features).sum(axis=0)
        return dy * params["weight"], {"weight": dweight}
"""

# Saves ``Linear(3, 4) >> Scale(4)`` to argv[1]; Scale comes from ``mylayers`` or, when this is
# the script itself, from ``__main__``.
SAVE = """
import sys
from specchain.modules import Linear
from {source} import Scale

(Linear(3, 4) >> Scale(4)).save(sys.argv[1])
"""


def write_layers(folder: Path, name: str = "mylayers") -> Path:
    """``folder/name.py`` holding the ``Scale`` layer."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(LAYERS)
    return path


def run_python(
    *args: str, cwd: Path, path: tuple[Path, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in ``cwd`` with only the repository and ``path`` on ``PYTHONPATH``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, (REPO, *path)))}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def save_with_layers(tmp_path: Path) -> Path:
    """``tmp_path/model.safetensors`` saved by a program that imported ``lib/mylayers.py``."""
    lib = tmp_path / "lib"
    write_layers(lib)
    out = tmp_path / "model.safetensors"
    done = run_python("-c", SAVE.format(source="mylayers"), str(out), cwd=tmp_path, path=(lib,))
    assert done.returncode == 0, done.stderr
    return out


def save_from_a_script(tmp_path: Path) -> Path:
    """``tmp_path/script_model.safetensors`` saved by a script that defines ``Scale`` itself."""
    script = tmp_path / "script" / "save.py"
    script.parent.mkdir(parents=True)
    script.write_text(LAYERS + SAVE.format(source="__main__"))
    out = tmp_path / "script_model.safetensors"
    done = run_python(str(script), str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return out
