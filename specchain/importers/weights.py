"""Weights: every parameter of the imported module, copied into the spec that converted it,
under the same ``state_dict`` name (``lstm.weight_ih_l0``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from specchain.importers.registry import TorchImportError
from specchain.spec import NNModuleSpec

if TYPE_CHECKING:
    from specchain.chain import SpecChain

DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def node_state(name: str, module: nn.Module, spec: NNModuleSpec) -> dict[str, np.ndarray]:
    """``{f"{name}.{key}": array}`` for every entry of ``module.state_dict()``; an error naming
    the node when the spec's parameter names or shapes differ from the module's."""
    state = module.state_dict()
    ours = {key: tuple(p.shape) for key, p in spec.params.items()}
    theirs = {key: tuple(t.shape) for key, t in state.items()}
    if ours != theirs:
        differ = sorted(k for k in ours.keys() & theirs.keys() if ours[k] != theirs[k])
        raise TorchImportError(
            f"node {name!r}: {type(spec).__name__} holds {_listed(ours, theirs)} but "
            f"{type(module).__name__} has {_listed(theirs, ours)}"
            + (f" (shapes differ: {differ})" if differ else "")
            + "; a converter must build a spec whose parameters have the module's state_dict "
            "names and shapes"
        )
    return {f"{name}.{key}": tensor.detach().cpu().numpy().copy() for key, tensor in state.items()}


def check_untied(modules: dict[str, nn.Module]) -> None:
    """Refuse one parameter held by two different modules (an LM's decoder tied to its
    embedding): specchain's layers of different kinds do not share arrays."""
    owners: dict[int, str] = {}
    tied = []
    for name, module in modules.items():
        for key, param in module.named_parameters():
            first = owners.setdefault(id(param), f"{name}.{key}")
            if not first.startswith(f"{name}."):
                tied.append(f"{name}.{key} is {first}")
    if tied:
        raise TorchImportError(
            f"tied weights: {'; '.join(tied)}; specchain layers of different kinds do not share "
            "weights: untie them before importing (e.g. module.decoder.weight = "
            "nn.Parameter(module.encoder.weight.detach().clone())), and the imported model "
            "trains them separately"
        )


def _listed(keys: dict[str, Any], other: dict[str, Any]) -> str:
    extra = sorted(k for k in keys if k not in other)
    return f"{sorted(keys)} ({'extra: ' + ', '.join(extra) if extra else 'no others'})"


def float_dtype(module: nn.Module) -> Any:
    """numpy's float32 or float64 for the module's parameters (None without parameters)."""
    dtypes = {p.dtype for p in module.parameters()}
    if not dtypes:
        return None
    if len(dtypes) > 1 or next(iter(dtypes)) not in DTYPES:
        raise TorchImportError(
            f"{type(module).__name__}'s parameters are {sorted(str(d) for d in dtypes)}; "
            "specchain holds float32 or float64: call module.float() or module.double() first"
        )
    return DTYPES[dtypes.pop()]


def load_weights(chain: SpecChain, module: nn.Module, state: dict[str, np.ndarray]) -> None:
    """Cast ``chain`` to the module's dtype and load ``state``; an error listing the module's
    ``state_dict`` keys that no node holds (a module ``forward`` never calls, or one weight tied
    into two modules)."""
    missing = sorted(set(module.state_dict()) - set(state))
    if missing:
        raise TorchImportError(
            f"{type(module).__name__}.state_dict() has {missing}, which the traced forward never "
            "uses under those names (a module forward does not call, or a weight tied into two "
            "modules: specchain layers do not share weights across kinds); delete the unused "
            "module, or untie the weights (module.b.weight = nn.Parameter(module.a.weight.clone()))"
        )
    dtype = float_dtype(module)
    if dtype is not None:
        chain.to(dtype)
    chain.load_state_dict(state)
