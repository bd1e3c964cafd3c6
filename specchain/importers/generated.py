"""Converters of the helper modules specchain's exporter writes into ``model.py`` and that
tracing cannot enter: ``AttentionLSTM`` (its decoder loop runs over a tensor's length). They are
found by class name, since every exported file defines its own class.
"""

from __future__ import annotations

from specchain.importers.registry import Call, generated
from specchain.modules.attention import AttentionLSTM
from specchain.spec import NNModuleSpec

ATTENTION_PARTS = ("encoder", "decoder", "output", "score")


@generated("AttentionLSTM")
def _attention(call: Call) -> NNModuleSpec:
    """The exported encoder/decoder with attention (``(source, decoder_inputs)`` in)."""
    m = call.module
    missing = [name for name in ATTENTION_PARTS if not hasattr(m, name)]
    if missing:
        raise call.fail(
            f"a class named AttentionLSTM is read as specchain's exported attention model, but "
            f"it has no {', '.join(missing)}",
            "rename your class, or register a converter for it with "
            "@specchain.importers.torch.converter(YourClass)",
        )
    encoder = m.encoder
    return AttentionLSTM(
        encoder.input_size, encoder.hidden_size, m.output.out_features, score=m.score
    )
