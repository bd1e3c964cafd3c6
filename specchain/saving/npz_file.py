"""Reading the ``.npz`` model files of specchain before 0.2 (a zip of ``.npy`` members, the
architecture JSON under ``__specchain__``), checked like ``.safetensors``: every member's
``.npy`` header (dtype, shape) is read before any array, and object arrays (pickles) are refused
before anything is unpickled. Convert such a file with ``sc.load("m.npz").save("m.safetensors")``.
"""

from __future__ import annotations

import math
import struct
import tokenize
import zipfile
import zlib
from typing import IO, Any, BinaryIO

import attrs
import numpy as np

from specchain.saving.errors import ModelFileError, cut, echo

MAX_MEMBERS = 100_000
# what numpy and zipfile raise on damaged bytes (a .npy header is parsed by ast.literal_eval)
_READ_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    RuntimeError,
    NotImplementedError,
    SyntaxError,
    tokenize.TokenError,
    TypeError,
    KeyError,
    RecursionError,
    struct.error,
)


@attrs.frozen
class Member:
    """One ``.npy`` member: its zip entry name, dtype and shape, from its header."""

    member: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...]


class NpzFile:
    """An open ``.npz``: the members' headers, checked; arrays read on demand."""

    def __init__(self, handle: BinaryIO) -> None:
        try:
            self.zip = zipfile.ZipFile(handle)
            infos = self.zip.infolist()
        except _READ_ERRORS as err:
            raise ModelFileError(f"not a readable .npz file ({cut(str(err))})") from None
        if len(infos) > MAX_MEMBERS:
            raise ModelFileError(f"{len(infos)} members, more than {MAX_MEMBERS}")
        self.members: dict[str, Member] = {}
        for info in infos:
            key = info.filename.removesuffix(".npy")
            self.members[key] = self._header(key, info)

    def _header(self, key: str, info: zipfile.ZipInfo) -> Member:
        try:
            with self.zip.open(info) as stream:
                version = np.lib.format.read_magic(stream)
                shape, _, dtype = _read_array_header(stream, version)
        except _READ_ERRORS as err:
            raise ModelFileError(f"key {echo(key)}: not a .npy array ({cut(str(err))})") from None
        if dtype.hasobject:
            raise ModelFileError(
                f"key {echo(key)}: refused (an object array needs pickle, which a model file "
                "never holds)"
            )
        if math.prod(shape) * dtype.itemsize > info.file_size:
            raise ModelFileError(
                f"key {echo(key)}: declares {echo(list(shape))} {dtype}, more than its "
                f"{info.file_size} bytes hold"
            )
        return Member(info.filename, dtype, tuple(shape))

    def read(self, key: str) -> np.ndarray:
        """The array of member ``key`` (its header already checked)."""
        try:
            with self.zip.open(self.members[key].member) as stream:
                value = np.lib.format.read_array(stream, allow_pickle=False)
        except _READ_ERRORS as err:
            raise ModelFileError(f"key {echo(key)}: corrupted ({cut(str(err))})") from None
        return np.asarray(value)


def _read_array_header(stream: IO[bytes], version: tuple[int, int]) -> Any:
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(stream)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(stream)
    raise ValueError(f".npy format version {version} is not 1.0 or 2.0")
