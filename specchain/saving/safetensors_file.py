"""The ``.safetensors`` container: its header read and checked by hand, atomic writes.

Layout: 8 bytes (little-endian u64) = ``n``, then ``n`` bytes of JSON header
(``{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__":
{str: str}}``), then the tensor data. The header is read here within ``MAX_HEADER_BYTES`` and
every entry checked before ``safetensors`` reads a byte of data.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

import attrs
import numpy as np
import safetensors.numpy

from specchain.saving.errors import ModelFileError, cut, echo, some_keys

MAX_HEADER_BYTES = 16 * 2**20
MAX_RANK = 8
DTYPES: dict[str, np.dtype[Any]] = {"F32": np.dtype(np.float32), "F64": np.dtype(np.float64)}
METADATA = "__metadata__"


@attrs.frozen
class Entry:
    """One tensor the header declares: its dtype, shape and byte range in the data."""

    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    begin: int
    end: int


@attrs.frozen
class Header:
    """A checked header: string metadata, the tensors, and where the data starts."""

    metadata: dict[str, str]
    entries: dict[str, Entry]
    data_start: int


# --- writing ---------------------------------------------------------------------------------


def write_atomic(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Write ``tensors`` and ``metadata`` to a temporary ``.<name>.tmp-XXXX`` beside ``path``,
    flush and fsync it, then ``os.replace`` it onto ``path`` and fsync the folder. On any failure
    the previous file is untouched and the temporary removed (a process killed meanwhile leaves
    its temporary behind, never a half-written ``path``)."""
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    mode = _mode_for(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name[:100]}.tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            _write(handle, tensors, metadata)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_folder(folder)


def _write(handle: BinaryIO, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """The safetensors layout with keys in sorted order, so one model always gives the same
    bytes (the ``safetensors`` writer orders ``__metadata__`` differently on every call)."""
    header: dict[str, Any] = {METADATA: dict(sorted(metadata.items()))}
    codes = {dtype: code for code, dtype in DTYPES.items()}
    position = 0
    for name in sorted(tensors):
        value = tensors[name]
        header[name] = {
            "dtype": codes[value.dtype],
            "shape": list(value.shape),
            "data_offsets": [position, position + value.nbytes],
        }
        position += value.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as safetensors pads it
    handle.write(len(text).to_bytes(8, "little") + text)
    for name in sorted(tensors):
        handle.write(
            np.ascontiguousarray(tensors[name]).astype("<" + tensors[name].dtype.char).data
        )


def _mode_for(path: Path) -> int:
    """The replaced file's permissions, else what ``open`` would give under the umask."""
    with contextlib.suppress(OSError):
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable where the system allows a folder to be fsynced."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


# --- reading ---------------------------------------------------------------------------------


def read_header(handle: BinaryIO, size: int) -> Header:
    """The header of the open file ``handle`` of ``size`` bytes, every entry checked: known
    dtype, shape of non-negative ints, byte range matching dtype and shape, ranges tiling the
    data exactly. Raises ``ModelFileError``."""
    if size < 8:
        raise ModelFileError(f"{size} bytes: too short for a .safetensors file")
    length = int.from_bytes(handle.read(8), "little")
    if length > min(MAX_HEADER_BYTES, size - 8):
        raise ModelFileError(
            f"header length {length} does not fit: the file has {size - 8} bytes after it and a "
            f"header may have {MAX_HEADER_BYTES}; truncated or not a .safetensors file"
        )
    raw = handle.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ModelFileError(f"header is not JSON ({cut(str(err))})") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"header must be a JSON object, got {type(header).__name__}")
    metadata = header.pop(METADATA, {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ModelFileError(f"header {METADATA!r} must map strings to strings")
    entries = {name: _entry(name, value) for name, value in header.items()}
    _check_tiling(entries, size - 8 - length)
    return Header(metadata, entries, 8 + length)


def _entry(name: str, value: Any) -> Entry:
    where = f"tensor {echo(name)}"
    if not isinstance(value, dict) or set(value) != {"dtype", "shape", "data_offsets"}:
        raise ModelFileError(f"{where}: expected dtype, shape and data_offsets, got {echo(value)}")
    code, shape, offsets = value["dtype"], value["shape"], value["data_offsets"]
    if not isinstance(code, str) or code not in DTYPES:
        raise ModelFileError(
            f"{where}: dtype {echo(code)} is not a model's float32 (F32) or float64 (F64)"
        )
    if not _ints(shape) or len(shape) > MAX_RANK:
        raise ModelFileError(
            f"{where}: shape {echo(shape)} is not a list of at most {MAX_RANK} non-negative ints"
        )
    if not _ints(offsets) or len(offsets) != 2 or offsets[0] > offsets[1]:
        raise ModelFileError(f"{where}: data_offsets {echo(offsets)} is not [begin, end]")
    dtype = DTYPES[code]
    nbytes = math.prod(shape) * dtype.itemsize
    if offsets[1] - offsets[0] != nbytes:
        raise ModelFileError(
            f"{where}: data_offsets {echo(offsets)} hold {offsets[1] - offsets[0]} bytes, but "
            f"{code} {echo(shape)} needs {nbytes}"
        )
    return Entry(dtype, tuple(shape), offsets[0], offsets[1])


def _ints(value: Any) -> bool:
    return isinstance(value, list) and all(type(i) is int and i >= 0 for i in value)


def _check_tiling(entries: dict[str, Entry], data_size: int) -> None:
    """The byte ranges, sorted, follow one another from 0 to the end of the data."""
    position = 0
    for name, entry in sorted(entries.items(), key=lambda item: item[1].begin):
        if entry.begin != position:
            raise ModelFileError(
                f"tensor {echo(name)} starts at byte {entry.begin}, expected {position}: "
                "overlapping or missing data"
            )
        position = entry.end
    if position != data_size:
        raise ModelFileError(
            f"the tensors hold {position} bytes but the file has {data_size} bytes of data: "
            "truncated or padded"
        )


def read_tensors(handle: BinaryIO, header: Header) -> dict[str, np.ndarray]:
    """The tensors of a checked header, read by ``safetensors`` from the whole file."""
    handle.seek(0)
    data = handle.read()
    try:
        tensors = safetensors.numpy.load(data)
    except Exception as err:  # the library's SafetensorError: anything it disagrees with
        raise ModelFileError(f"safetensors refused the file ({cut(str(err))})") from None
    if set(tensors) != set(header.entries):
        raise ModelFileError(f"safetensors read the tensors {some_keys(list(tensors))}")
    return tensors
