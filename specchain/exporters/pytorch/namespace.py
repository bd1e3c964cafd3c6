"""One place that turns arbitrary names into safe, unique Python identifiers (like torch.fx's
``_Namespace``): every identifier in generated code comes from here."""

from __future__ import annotations

import builtins
import keyword
import re

MAX_LENGTH = 48

# Names a generated module must never shadow: the file's own imports and helpers, the method and
# attribute names of ``torch.nn.Module`` (an attribute ``training`` or ``to`` would break it).
MODULE_ATTRIBUTES = frozenset(
    """T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda
    double dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter
    get_submodule half ipu load_state_dict modules mtia named_buffers named_children named_modules
    named_parameters parameters register_backward_hook register_buffer register_forward_hook
    register_forward_pre_hook register_full_backward_hook register_full_backward_pre_hook
    register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module
    register_parameter register_state_dict_post_hook register_state_dict_pre_hook requires_grad_
    set_extra_state set_submodule share_memory state_dict to to_empty train training type xpu
    zero_grad""".split()  # noqa: SIM905
)
FILE_NAMES = frozenset(
    {"self", "torch", "nn", "F", "np", "numpy", "load", "Path", "annotations", "super", "x"}
    | {"warnings", "load_file", "safetensors", "load_checkpoint"}
    | {"l", "O", "I"}  # ruff's E741: ambiguous variable names
)


class Namespace:
    """Hands out identifiers: ``create("lstm 1")`` -> ``lstm_1``; each at most once."""

    def __init__(self, reserved: frozenset[str] | set[str] = frozenset()) -> None:
        self.taken: set[str] = set(FILE_NAMES | MODULE_ATTRIBUTES | set(reserved))
        self.taken |= set(dir(builtins))

    def create(self, name: str, fallback: str = "node") -> str:
        base = self.sanitize(name, fallback)
        candidate, k = base, 1
        while candidate in self.taken or keyword.iskeyword(candidate):
            candidate = f"{base}_{k}"
            k += 1
        self.taken.add(candidate)
        return candidate

    @staticmethod
    def sanitize(name: str, fallback: str = "node") -> str:
        """Letters, digits and ``_`` only; never empty, never starting with a digit or ``__``."""
        cleaned = re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_")[:MAX_LENGTH].strip("_")
        if not cleaned:
            cleaned = fallback
        if cleaned[0].isdigit():
            cleaned = f"{fallback}_{cleaned}"
        return cleaned


def is_identifier(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)
