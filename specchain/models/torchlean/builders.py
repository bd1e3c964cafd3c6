"""TorchLean's chain builders (``simpleLstmModelSpec``, ...) and packagers
(``simpleLSTMToModuleSpec``, ...): records' weights as ready-to-run ``SpecChain``s."""

from __future__ import annotations

from specchain.chain import SpecChain
from specchain.models import zoo
from specchain.models.torchlean.chains import build_loaded
from specchain.models.torchlean.language import LSTMGenerator
from specchain.models.torchlean.layout import Layout, LinearSlot, LSTMSlot, state_of
from specchain.models.torchlean.parts import LinearParams
from specchain.models.torchlean.sequence_models import (
    BiLSTMModel,
    LSTMClassifier,
    MultiLayerLSTMModel,
    SimpleLSTMModel,
)
from specchain.modules.gatewise import LSTMGateParams


def simple_lstm_model_spec(lstm: LSTMGateParams, output: LinearParams) -> SpecChain:
    """TorchLean's ``simpleLstmModelSpec``: LSTM then a per-timestep linear head,
    ``[T, B, I]`` -> ``[T, B, O]`` (``zoo.seq2seq`` with these weights)."""
    return SimpleLSTMModel(lstm, output).to_chain()


def lstm_classifier_model_spec(lstm: LSTMGateParams, classifier: LinearParams) -> SpecChain:
    """TorchLean's ``lstmClassifierModelSpec``: ``[T, B, I]`` -> ``[B, C]`` (``zoo.classifier``)."""
    return LSTMClassifier(lstm, classifier).to_chain()


def multilayer_lstm_spec(
    lstm1: LSTMGateParams, lstm2: LSTMGateParams, output: LinearParams
) -> SpecChain:
    """TorchLean's ``multilayerLstmSpec``: two LSTMs as two specs and a per-timestep head,
    ``[T, B, I]`` -> ``[T, B, O]`` (``zoo.two_layer``: nodes ``lstm1``, ``lstm2``, ``head``)."""
    model = MultiLayerLSTMModel(lstm1, (lstm2,), output)
    layout: Layout = {
        "first_layer": LSTMSlot("lstm1.", "_l0"),
        "hidden_layers": (LSTMSlot("lstm2.", "_l0"),),
        "output_layer": LinearSlot("head."),
    }
    i, h, o = model.input_size, model.hidden_size, model.output_size
    parts = {"first_layer": lstm1, "hidden_layers": (lstm2,), "output_layer": output}
    state = state_of(layout, parts)
    return build_loaded(lambda: zoo.two_layer(i, h, o), model.dtype, state)


def lstm_language_model_spec(
    embedding: LinearParams, lstm: LSTMGateParams, output: LinearParams, tokens: bool = False
) -> SpecChain:
    """TorchLean's ``lstmLanguageModelSpec``: linear embedding, LSTM, linear projection,
    ``[T, B, V]`` (or int tokens ``[T, B]`` with ``tokens=True``) -> ``[T, B, V]``. It is the
    ``LSTMGenerator``'s chain."""
    return LSTMGenerator(embedding, lstm, output).to_chain(tokens=tokens)


def simple_lstm_to_module_spec(model: SimpleLSTMModel) -> SpecChain:
    """TorchLean's ``simpleLSTMToModuleSpec``: ``model.to_chain()`` (zero initial state)."""
    return model.to_chain()


def lstm_classifier_to_module_spec(model: LSTMClassifier) -> SpecChain:
    """TorchLean's ``lstmClassifierToModuleSpec``: ``model.to_chain()`` (zero initial state)."""
    return model.to_chain()


def bilstm_to_module_spec(model: BiLSTMModel) -> SpecChain:
    """TorchLean's ``biLSTMToModuleSpec``: ``model.to_chain()`` (zero initial states)."""
    return model.to_chain()
