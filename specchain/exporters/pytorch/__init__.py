"""PyTorch export: idiomatic source + weights + proof of equivalence, and import back.

- ``to_source(model, class_name)`` writes one ``nn.Module`` class (``source.py``): typed,
  ``torch.jit.script``-able, ruff-clean; each node's statement comes from the emitter registered
  for its spec's class (``emitters.py``), a module call or an inline expression
  (``pytorch.inline("torch.cat({items}, dim=-1)")``); structures that one torch module computes
  exactly are fused first (``fusion.py``: stacked layers, bidirectional lanes).
- ``export(model, out_dir)`` writes ``model.py``, ``model.safetensors`` (no pickle),
  ``reference.npz`` (inputs and outputs recorded now) and ``test_model.py`` (a pytest file that
  checks them, eager and scripted) (``files.py``).
- ``verify(model, inputs)`` runs the spec and the generated module side by side and returns a
  ``VerifyReport``: the largest differences of outputs, input gradients and every parameter
  gradient, the numerics contract's tolerances for their dtype, ``.ok`` and a ``PASS``/``FAIL``
  table (``verify.py``, ``verdict.py``); ``raise_on_fail=True`` raises ``VerificationError``.
- ``load_torch_state(model, state_dict_or_module, key_map=...)`` fills a spec from PyTorch
  weights, a hand-written checkpoint's too given a key map (``checkpoints.py``).

A layer of your own exports once it registers an emitter, in its own file::

    from specchain.exporters import pytorch

    @pytorch.emitter(Softplus, pointwise=True)  # acts on the last axis only
    def _emit_softplus(spec: Softplus, in_type: Type) -> pytorch.Emitted:
        return pytorch.Emitted(pytorch.call("nn.Softplus", beta=spec.beta))  # nn.Softplus(beta=2.0)

or declares ``pytorch.no_torch_twin(Softplus, "why, and what to do instead")``.

Only ``verify.py`` uses torch, and only inside its functions: exporting needs no torch.
"""

from specchain.exporters.pytorch.checkpoints import KeyMap, load_torch_state
from specchain.exporters.pytorch.emitters import (
    EMITTERS,
    HELPER_CLASSES,
    Emitted,
    Emitter,
    ExportError,
    NoTwin,
    call,
    emitter,
    emitter_for,
    helper,
    helper_classes,
    inline,
    no_torch_twin,
    non_default,
    pointwise_kinds,
)
from specchain.exporters.pytorch.files import export
from specchain.exporters.pytorch.naming import FILE_CONSTANTS, Names, assign_names, torch_state
from specchain.exporters.pytorch.source import to_source
from specchain.exporters.pytorch.verdict import TensorCheck, VerificationError, VerifyReport
from specchain.exporters.pytorch.verify import build_torch_module, load_module_class, verify

__all__ = [
    "EMITTERS",
    "FILE_CONSTANTS",
    "HELPER_CLASSES",
    "Emitted",
    "Emitter",
    "ExportError",
    "KeyMap",
    "Names",
    "NoTwin",
    "TensorCheck",
    "VerificationError",
    "VerifyReport",
    "assign_names",
    "build_torch_module",
    "call",
    "emitter",
    "emitter_for",
    "export",
    "helper",
    "helper_classes",
    "inline",
    "load_module_class",
    "load_torch_state",
    "no_torch_twin",
    "non_default",
    "pointwise_kinds",
    "to_source",
    "torch_state",
    "verify",
]
