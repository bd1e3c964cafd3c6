"""The ``specchain`` command's MODEL argument: ``zoo:NAME``, ``path/to/file.py:attribute`` or a
saved model file, resolved to a ``SpecChain``; ``--import MODULE_OR_FILE``, the user's own code
imported before MODEL is read (a ``file.py`` with its folder first on ``sys.path``, as ``python
file.py`` would); and the one-line messages of the command's errors. Mistakes the user can fix
raise ``UsageError`` (exit status 2).
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import importlib.util
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from specchain.chain import SpecChain
from specchain.importers import options as torch_options
from specchain.spec import SPEC_KINDS, NNModuleSpec
from specchain.types import SpecError

if TYPE_CHECKING:
    from specchain.saving import UnknownKindError


class UsageError(SpecError):
    """A command-line mistake: the message is the whole story."""


def resolve_model(
    text: str, custom: Sequence[type[NNModuleSpec]] = (), options: Any = None
) -> SpecChain:
    """A chain from ``zoo:NAME``, ``file.py:attribute`` or a saved model file (``.safetensors``,
    or an older ``.npz``), which is loaded with ``sc.load(text, custom=custom)``. ``options``:
    the parsed ``--input-shape``/``--input-dtype`` for a PyTorch module (``importers.options``).
    """
    from specchain.models import ZOO

    if not text.partition(":")[0].endswith(".py"):
        torch_options.refuse_torch_options(options, text)
    if text.startswith("zoo:"):
        name = text[4:]
        if name not in ZOO:
            raise UsageError(f"unknown zoo model {name!r}; choose one of {', '.join(ZOO)}")
        return ZOO[name].build()
    if Path(text).suffix.lower() in (".safetensors", ".npz"):
        from specchain.saving import UnknownKindError, load

        try:
            return load(text, custom=custom)  # every failure is one ModelFileError
        except UnknownKindError as err:
            raise UsageError(f"{err}{_import_hint(err)}") from None
    path, _, attribute = text.rpartition(":")
    if not path.endswith(".py") or not attribute:
        raise UsageError(
            f"cannot read model {text!r}: use zoo:NAME, path/to/file.py:attribute or a saved "
            ".safetensors model"
        )
    return _from_python_file(Path(path), attribute, options)


def _import_hint(err: UnknownKindError) -> str:
    """The command-line fix for an ``UnknownKindError``: which ``--import`` to add."""
    if err.module == "__main__":
        name = err.kind.removeprefix("__main__.")
        return f"; from the command line: --import the module or .py file that defines {name}"
    if err.module is None or err.module in sys.modules:
        return ""
    file = "" if "." in err.module else f" or --import path/to/{err.module}.py"
    return f"; from the command line: --import {err.module}{file}"


def _from_python_file(path: Path, attribute: str, options: Any = None) -> SpecChain:
    """Import ``path`` (running its code) and return its ``attribute``, called when it is a
    function, imported from PyTorch when it is an ``nn.Module``; anything the user's code raises,
    or a ``sys.exit`` in it, becomes a ``UsageError`` saying it happened in the user's code."""
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(f"specchain_user_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    _put_first_on_path(path.parent)
    with _user_code(path):
        spec.loader.exec_module(module)
    if not hasattr(module, attribute):
        raise UsageError(f"{path} has no attribute {attribute!r}")
    value: Any = getattr(module, attribute)
    plain = not torch_options.is_torch_module(value)  # a module instance is callable too
    if callable(value) and plain and not isinstance(value, (SpecChain, NNModuleSpec)):
        with _user_code(path, f"{attribute}()"):
            value = value()
    if torch_options.is_torch_module(value):
        return torch_options.torch_chain(value, options, f"{path}:{attribute}")
    torch_options.refuse_torch_options(options, f"{path}:{attribute}")
    if isinstance(value, NNModuleSpec):
        return value.as_chain()
    if not isinstance(value, SpecChain):
        raise UsageError(
            f"{path}:{attribute} is a {type(value).__name__}, not a SpecChain or a spec (nor a "
            "PyTorch nn.Module)"
        )
    return value


@contextlib.contextmanager
def _user_code(path: Path, call: str | None = None) -> Iterator[None]:
    """Run the user's code in ``path`` (importing it, or calling ``call``): an exception it raises
    (a ``RecursionError`` too) or a ``sys.exit`` becomes one ``UsageError`` saying so; Ctrl-C
    passes."""
    try:
        yield
    except SystemExit as err:
        if call is None:
            raise UsageError(
                f"{path} exited with {_exit_text(err)} while being imported: a model file must "
                "define the model, not end the program (put script code under "
                "`if __name__ == '__main__':`)"
            ) from err
        raise UsageError(
            f"{path} exited with {_exit_text(err)} in {call}: it must return the model, not end "
            "the program"
        ) from err
    except Exception as err:
        during = f"in {call}" if call else "while importing it"
        raise UsageError(f"error in user code {path} {during}: {one_line(err)}") from err


def _exit_text(err: SystemExit) -> str:
    """How ``sys.exit(code)`` ended: ``status 0`` (no code), ``status 3``, ``message 'bye'``."""
    if err.code is None or isinstance(err.code, int):
        return f"status {err.code or 0}"
    return f"message {str(err.code)!r}"


def _put_first_on_path(folder: Path) -> None:
    """Put ``folder`` first on ``sys.path`` for the rest of the run, as ``python file.py`` does."""
    entry = str(folder.resolve())
    if sys.path[:1] != [entry]:
        sys.path.insert(0, entry)
        importlib.invalidate_caches()


def import_user_code(target: str) -> list[type[NNModuleSpec]]:
    """``--import TARGET``: import a module by dotted name (``mylayers``, ``pkg.layers``) or a
    ``.py`` file by path, which is put first on ``sys.path`` and imported under its file name
    (``path/to/mylayers.py`` becomes module ``mylayers``, as ``import mylayers`` would make it).

    Returns the layer classes the module defines: a saved model also finds them by class name
    when it was saved from a script (kind ``__main__.LayerNorm``; see ``sc.load``'s ``custom``).
    """
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise UsageError(f"--import {target}: no such file")
        name = path.stem
        if not name.isidentifier():
            raise UsageError(
                f"--import {target}: {name!r} cannot be a module name; rename the file to an "
                "identifier such as my_layers.py"
            )
        _put_first_on_path(path.parent)
    else:
        name = target
        if not all(part.isidentifier() for part in name.split(".")):
            raise UsageError(
                f"--import {target}: not a module name (such as mylayers or pkg.layers) "
                "nor a .py file"
            )
    module = _import(target, name)
    if target.endswith(".py") and not _is_file_of(module, Path(target)):
        raise UsageError(
            f"--import {target}: another module named {name!r} is already imported "
            f"({getattr(module, '__file__', None) or 'built in'}); rename the file"
        )
    return [cls for cls in SPEC_KINDS.values() if cls.__module__ == module.__name__]


def _import(target: str, name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except SystemExit as err:
        raise UsageError(
            f"--import {target}: it exited with {_exit_text(err)} while being imported; a "
            "module of layers must define them, not end the program"
        ) from err
    except Exception as err:  # the user's module failed: say where, without a traceback
        missing = err.name if isinstance(err, ModuleNotFoundError) else None
        if missing is not None and (name == missing or name.startswith(f"{missing}.")):
            raise UsageError(
                f"--import {target}: {err}; give the path to its .py file instead, or add "
                "its folder to PYTHONPATH"
            ) from None
        raise UsageError(f"--import {target}: importing it failed: {one_line(err)}") from err


def _is_file_of(module: ModuleType, path: Path) -> bool:
    file = getattr(module, "__file__", None)
    return file is not None and Path(file).resolve() == path.resolve()


_OS_FIXES = {
    errno.EACCES: "permission denied: choose a path you can write to, or change its permissions",
    errno.EROFS: "the file system is read-only: choose another path",
    errno.ENOTDIR: "a part of this path is a file, not a folder",
    errno.EISDIR: "it is a folder, not a file: give a file name",
    errno.EEXIST: "a file is in the way where a folder is needed",
    errno.ENOENT: "no such file or folder",
    errno.ENOSPC: "no space left on the device",
}


def one_line(err: BaseException) -> str:
    """``Type: message`` on one line (the lines of a long message joined by ``; ``)."""
    return f"{type(err).__name__}: {message(err)}" if str(err) else type(err).__name__


def message(err: BaseException) -> str:
    """``err``'s message on one line; an ``OSError`` as its path, what happened and the fix."""
    if isinstance(err, OSError) and err.strerror:
        where = err.filename if err.filename is not None else ""
        fix = _OS_FIXES.get(err.errno or 0, err.strerror)
        return f"{where}: {fix}" if where else fix
    if isinstance(err, RecursionError):
        return f"{err}: the model or its data is nested too deeply"
    lines = [line.strip() for line in str(err).strip().splitlines()]
    return "; ".join(line for line in lines if line) or type(err).__name__
