"""The model file: one ``.safetensors`` file (weights + architecture metadata), validated before
allocating; ``.npz`` files of earlier versions are read too. See ``model_file``."""

from specchain.saving.architecture import FORMAT_VERSION, type_from_json, type_json
from specchain.saving.errors import ModelFileError, UnknownKindError
from specchain.saving.model_file import (
    ARCHITECTURE_KEY,
    MAX_PARAMS,
    LegacyModelFileWarning,
    check_model_path,
    load,
    save,
)

__all__ = [
    "ARCHITECTURE_KEY",
    "FORMAT_VERSION",
    "MAX_PARAMS",
    "LegacyModelFileWarning",
    "ModelFileError",
    "UnknownKindError",
    "check_model_path",
    "load",
    "save",
    "type_from_json",
    "type_json",
]
