"""``save`` and ``load``: a chain as one ``.safetensors`` file, never a pickle.

The file holds the weights under their ``state_dict`` names; its ``__metadata__`` holds the
architecture JSON (``__specchain__``), the format version and the library version. ``load``
checks, in order, before it reads any weight or builds any layer with real memory: the file
type and size, the header, the architecture JSON (size, depth), the hyper-parameters (each
spec's validators) and the parameter count against a budget, then every tensor's name, dtype and
shape. Every failure is one ``ModelFileError`` naming the file and what is wrong.
"""

from __future__ import annotations

import json
import os
import stat
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from specchain import params as _params
from specchain.chain import SpecChain
from specchain.params import FLOAT_DTYPES
from specchain.saving.architecture import (
    FORMAT_VERSION,
    MAX_ARCHITECTURE_BYTES,
    architecture_json,
    build,
)
from specchain.saving.architecture import parse_architecture as _parse
from specchain.saving.errors import ModelFileError, UnknownKindError, echo, some_keys
from specchain.saving.kinds import Kinds
from specchain.saving.npz_file import NpzFile
from specchain.saving.safetensors_file import read_header, read_tensors, write_atomic
from specchain.spec import NNModuleSpec
from specchain.types import SpecError
from specchain.validate import check_positive_int

ARCHITECTURE_KEY = "__specchain__"
SUFFIX = ".safetensors"
LEGACY_SUFFIX = ".npz"  # read, never written
MAX_PARAMS = 2**31  # default parameter-element budget of ``load``
_PROBLEMS_SHOWN = 8


def check_model_path(path: str | Path, for_writing: bool) -> Path:
    """``path`` as a ``Path`` if it names a model file: ``.safetensors``, or (to read only) a
    ``.npz`` written by specchain before 0.2. Otherwise ``ModelFileError`` with the fix. The
    one suffix rule of ``save``, ``load`` and the command line."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == SUFFIX:
        return path
    if suffix == LEGACY_SUFFIX and not for_writing:
        return path
    if suffix == LEGACY_SUFFIX:
        raise ModelFileError(
            f"{path}: models are saved as .safetensors files now (.npz files can still be "
            f"loaded); save to {path.with_suffix(SUFFIX).name!r} instead"
        )
    allowed = f"{SUFFIX} (or {LEGACY_SUFFIX} to read an older file)" if not for_writing else SUFFIX
    raise ModelFileError(
        f"{path}: a model file name ends in {allowed}, got {echo(suffix or path.name)}; "
        f"use a name like 'model{SUFFIX}'"
    )


# --- writing ---------------------------------------------------------------------------------


def save(chain: SpecChain, path: str | Path) -> None:
    """Write ``chain`` to ``path`` (``.safetensors``; missing folders are made), atomically: the
    bytes go to a temporary ``.<name>.tmp-XXXX`` in the same folder, which is fsynced and then
    renamed onto ``path``, so an interrupted save leaves any previous file whole (a killed
    process may leave its temporary behind, never a half-written ``path``)."""
    from specchain import __version__

    target = check_model_path(path, for_writing=True)
    metadata = {
        ARCHITECTURE_KEY: json.dumps(architecture_json(chain)),
        "format_version": str(FORMAT_VERSION),
        "specchain_version": __version__,
    }
    write_atomic(target, chain.state_dict(), metadata)  # keys are "node.param": never __metadata__


# --- reading ---------------------------------------------------------------------------------


def load(
    path: str | Path, custom: Iterable[type[NNModuleSpec]] = (), max_params: int = MAX_PARAMS
) -> SpecChain:
    """Read a chain written by ``save``. Raises ``ModelFileError`` naming the file and key.

    ``max_params`` bounds the parameter elements the architecture may declare (checked before
    any layer allocates its arrays); raise it to open a model bigger than 2**31 elements that you
    trust. A ``.npz`` written by earlier versions loads the same way; convert it with
    ``sc.load("m.npz").save("m.safetensors")``.

    A file names each layer's kind by module and class, ``mylayers.LayerNorm``. A kind is found,
    in this order, among the classes of ``custom``, then among every spec class imported so far
    (every built-in is). A class in ``custom`` serves the kind that equals its own qualified name,
    and also a kind saved from a script, ``__main__.LayerNorm``, whose class name (``__qualname__``)
    is its own: a layer a script defined and saved loads elsewhere from the module it now lives in,
    with ``custom=[LayerNorm]``. Built-in kinds are never matched by class name, so a user class
    called ``Linear`` does not replace ``specchain.modules.Linear``.

    So a model with layers from ``mylayers`` loads after ``import mylayers``, or with
    ``custom=[LayerNorm, ...]``; otherwise ``UnknownKindError`` (a ``ModelFileError``) names the
    kind and the module to import. An entry of ``custom`` that is not a layer class (an
    ``NNModuleSpec`` subclass with a ``forward``) raises ``TypeError`` naming the entry.
    """
    kinds = Kinds(custom)
    max_params = check_positive_int("load", "max_params", max_params)
    where = check_model_path(path, for_writing=False)
    try:
        with _open_regular(where) as handle:
            size = os.fstat(handle.fileno()).st_size
            if where.suffix.lower() == LEGACY_SUFFIX:
                chain = _load_npz(handle, size, kinds, max_params)
                _advise_conversion(where)
                return chain
            return _load_safetensors(handle, size, kinds, max_params)
    except UnknownKindError as err:
        raise UnknownKindError(f"{where}: {err}", err.kind, err.module) from None
    except ModelFileError as err:
        raise ModelFileError(f"{where}: {err}") from None


class LegacyModelFileWarning(FutureWarning):
    """A model file in the ``.npz`` format of specchain before 0.2 was read."""


def _advise_conversion(path: Path) -> None:
    new = path.with_suffix(SUFFIX)
    warnings.warn(
        f"{path}: read a .npz model file of specchain before 0.2; convert it once with "
        f"sc.load({str(path)!r}).save({str(new)!r})",
        LegacyModelFileWarning,
        stacklevel=3,
    )


def _open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file, checked before opening (a FIFO or a
    device would block or never end) and again on the open descriptor."""
    try:
        before = os.stat(path)
    except FileNotFoundError:
        raise ModelFileError("no such file") from None
    except OSError as err:
        raise ModelFileError(f"cannot read ({err.strerror})") from None
    _check_regular(before.st_mode)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise ModelFileError(f"cannot read ({err.strerror})") from None
    handle = os.fdopen(fd, "rb")
    try:
        _check_regular(os.fstat(fd).st_mode)
    except BaseException:
        handle.close()
        raise
    return handle


def _check_regular(mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise ModelFileError("is a directory, not a model file")
    if not stat.S_ISREG(mode):
        what = "a FIFO" if stat.S_ISFIFO(mode) else "a device, socket or other special file"
        raise ModelFileError(f"is {what}, not a regular file: refused without reading")


def _load_safetensors(handle: BinaryIO, size: int, kinds: Kinds, max_params: int) -> SpecChain:
    header = read_header(handle, size)
    if ARCHITECTURE_KEY not in header.metadata:
        raise ModelFileError(
            f"key {ARCHITECTURE_KEY!r} is missing from __metadata__: not a specchain model file"
        )
    version = header.metadata.get("format_version")
    if version != str(FORMAT_VERSION):
        raise ModelFileError(
            f"format_version {echo(version)} is not {FORMAT_VERSION}: written by another "
            "specchain version"
        )
    data_bytes = size - header.data_start
    chain = _architecture(header.metadata[ARCHITECTURE_KEY].encode(), kinds, max_params, data_bytes)
    dtype = _check_tensors(chain, {k: (e.dtype, e.shape) for k, e in header.entries.items()})
    return _filled(chain, dtype, read_tensors(handle, header))


def _load_npz(handle: BinaryIO, size: int, kinds: Kinds, max_params: int) -> SpecChain:
    npz = NpzFile(handle)
    if ARCHITECTURE_KEY not in npz.members:
        raise ModelFileError(f"key {ARCHITECTURE_KEY!r} is missing: not a specchain model file")
    member = npz.members[ARCHITECTURE_KEY]
    if member.dtype.kind != "U" or member.shape != ():
        raise ModelFileError(f"key {ARCHITECTURE_KEY!r}: invalid architecture (not text)")
    if member.dtype.itemsize > 4 * MAX_ARCHITECTURE_BYTES:  # numpy stores text as UTF-32
        raise ModelFileError(
            f"key {ARCHITECTURE_KEY!r}: architecture of {member.dtype.itemsize // 4} characters "
            f"is longer than {MAX_ARCHITECTURE_BYTES}"
        )
    text = npz.read(ARCHITECTURE_KEY)
    chain = _architecture(str(text).encode("utf-8", "replace"), kinds, max_params, size)
    found = {k: (m.dtype, m.shape) for k, m in npz.members.items() if k != ARCHITECTURE_KEY}
    dtype = _check_tensors(chain, found)
    return _filled(chain, dtype, {key: npz.read(key) for key in found})


def _architecture(text: bytes, kinds: Kinds, max_params: int, data_bytes: int) -> SpecChain:
    """The chain the JSON ``text`` describes, its layers holding zeros, refused before a layer
    allocates beyond ``max_params`` elements or beyond what ``data_bytes`` of float32 hold."""
    budget = min(max_params, data_bytes // 4)
    try:
        with _params.without_init(budget):
            return build(_parse(text), kinds, budget)
    except _params.ParamBudgetError as err:
        if budget == max_params:
            fix = "pass sc.load(path, max_params=...) to open a bigger model you trust"
        else:
            fix = f"the file holds only {data_bytes} bytes of tensor data"
        raise ModelFileError(f"key {ARCHITECTURE_KEY!r}: {err}; {fix}") from None
    except UnknownKindError as err:
        raise UnknownKindError(f"key {ARCHITECTURE_KEY!r}: {err}", err.kind, err.module) from None
    except ModelFileError as err:
        raise ModelFileError(f"key {ARCHITECTURE_KEY!r}: {err}") from None


def _check_tensors(
    chain: SpecChain, found: dict[str, tuple[np.dtype[Any], tuple[int, ...]]]
) -> np.dtype[Any]:
    """The model's float dtype (the tensors' one dtype, else float32) once every tensor's name,
    dtype and shape fits ``chain``; else ``ModelFileError`` listing the first problems."""
    expected = {k: v.shape for k, v in chain.named_parameters().items()}
    dtypes = {dtype for dtype, _ in found.values()}
    model = dtypes.pop() if len(dtypes) == 1 else _params.DEFAULT_DTYPE
    model = model if model in FLOAT_DTYPES else _params.DEFAULT_DTYPE
    problems = []
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    if missing:
        problems.append(f"missing keys: {some_keys(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {some_keys(unexpected)}")
    for key, (dtype, shape) in found.items():
        if key not in expected:
            continue
        if shape != expected[key]:
            problems.append(f"{key}: shape {list(shape)} != expected {list(expected[key])}")
        elif dtype != model:
            problems.append(f"{key}: dtype {dtype} != the model's {model}")
    if problems:
        more = len(problems) - _PROBLEMS_SHOWN
        shown = problems[:_PROBLEMS_SHOWN] + ([f"(and {more} more)"] if more > 0 else [])
        raise ModelFileError("the tensors do not fit the architecture:\n  " + "\n  ".join(shown))
    return model


def _filled(chain: SpecChain, dtype: np.dtype[Any], tensors: dict[str, np.ndarray]) -> SpecChain:
    chain.to(dtype)
    try:
        chain.load_state_dict(tensors)
    except SpecError as err:  # already checked; a short file would land here
        raise ModelFileError(str(err)[:400]) from None
    return chain
