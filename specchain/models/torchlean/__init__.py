"""TorchLean's LSTM model API (``NN/Spec/Module/LstmModels.lean``), as a thin layer over chains.

TorchLean describes its models as parameter records (``SimpleLSTMModel``, ``LSTMClassifier``, ...)
and free functions (``simpleLstmForward``, ``simpleLstmBackward``, ...). Here every record holds
numpy arrays in TorchLean's gate-wise layout (``LSTMGateParams``: per gate a weight ``[H, I + H]``
over ``[x; h]`` and one bias ``[H]``; ``LinearParams``: ``weight [O, I]``, ``bias [O]``), and every
function does the same three things: build the equivalent ``SpecChain`` (a zoo builder or a few
specs), load the record's weights into it (``record.state_dict()``, PyTorch's fused layout) and run
the chain's ``forward`` / ``backward``. No LSTM math lives in this package. (A record keeps the
chains its functions built and reloads its arrays into them at every call, so repeated calls, such
as stepping ``simple_lstm_forward`` through a sequence, pay for type inference only once.)

Conventions:

- Sequences are time-major: ``inputs [T, B, F]``; a single example ``[T, F]`` works too, and then
  states are ``[H]`` instead of ``[B, H]``. Token inputs are integer ``[T, B]`` (or ``[T]``).
- Variable lengths: the functions over a sequence take ``lengths=`` (int ``[B]``, each in
  ``1..T``; the attention functions ``source_lengths=`` and ``decoder_lengths=``), as
  ``pack_padded_sequence`` does; outputs past each length are 0, final states are each
  sequence's own, and gradients ignore the padding (``lengths``).
- A state is the pair ``(h, c)``, each ``[B, H]``; ``None`` means zeros. Multi-layer functions take
  and return a list with one pair per layer.
- Records' fields are named as in ``LstmModels.lean`` (``output_layer``, ``first_layer`` /
  ``hidden_layers``, ``encoder_lstm`` / ``decoder_lstm``, ...); the names this package used before
  (``output``, ``layers``, ``encoder``, ``decoder``) are read-only aliases.
- Every record has ``init(sizes..., rng=None, dtype=np.float32)`` (PyTorch's default
  initialisation, like the specs), ``state_dict()``, ``to_chain()``, ``from_chain(chain)`` and
  ``grads_by_field(grads)``; the chains the functions run are public too (``cached_chain()``,
  ``chain_with_initial_state()``, ``chain_with_final_state()``, where they apply). Its sizes are
  read off the arrays and checked against each other when it is built.
- Gradients come back as TorchLean's records (``LSTMGrads``, ``LinearGrads`` and one record per
  model with the model's field names), inputs' and states' gradients as arrays shaped like them.
- ``LSTMLanguageModel``'s inference dropout follows either revision of TorchLean's
  ``dropoutInferenceSpec`` (``DropoutInference``): ``(1 - p) * x`` by default (``"seed"``, the
  revision this port follows) or the identity (``"identity"``, its later evaluation-mode dropout).
- Building a chain here never advances the library-wide generator (``sc.seed``): the throwaway
  initial weights it draws are replaced by the record's, and the generator's state is restored.

Files (this one only re-exports; a name is public here, its module's other names are the
package's own):

- ``parts``: ``LinearParams``, PyTorch's default LSTM initialisation, the size and kind checks.
- ``layout``: where each part's arrays live in a chain's ``state_dict`` (slots), both ways.
- ``chains``: building, typing and loading the chains the records run.
- ``record``: ``Model``, what every record shares, and ``SequenceModel`` / ``OutputModel`` /
  ``StateModel`` / ``SizedModel`` for the records over float sequences; ``alias``: the read-only
  aliases of fields' earlier names.
- ``sequence_models``, ``language``, ``attention``: the records; ``grads``: their gradients.
- ``inputs``: the functions' input and state checks; ``lengths``: padded batches (``lengths=``);
  ``functions``: the forward / backward functions; ``builders``: TorchLean's chain builders and
  packagers.
"""

from __future__ import annotations

from specchain.models.torchlean.attention import AttentionLSTMModel
from specchain.models.torchlean.builders import (
    bilstm_to_module_spec,
    lstm_classifier_model_spec,
    lstm_classifier_to_module_spec,
    lstm_language_model_spec,
    multilayer_lstm_spec,
    simple_lstm_model_spec,
    simple_lstm_to_module_spec,
)
from specchain.models.torchlean.functions import (
    attention_lstm_backward,
    attention_lstm_forward,
    bilstm_backward,
    bilstm_forward,
    lstm_classifier_backward,
    lstm_classifier_forward,
    lstm_generator_forward,
    lstm_lm_backward,
    lstm_lm_forward,
    multilayer_lstm_backward,
    multilayer_lstm_forward,
    simple_lstm_backward,
    simple_lstm_forward,
    simple_lstm_mse_grad,
    simple_lstm_mse_loss,
    simple_lstm_sequence_forward,
)
from specchain.models.torchlean.grads import (
    AttentionLSTMModelGrads,
    BiLSTMModelGrads,
    LSTMLanguageModelGrads,
    MultiLayerLSTMModelGrads,
    SimpleLSTMModelGrads,
)
from specchain.models.torchlean.inputs import State
from specchain.models.torchlean.language import (
    DropoutInference,
    LSTMGenerator,
    LSTMLanguageModel,
)
from specchain.models.torchlean.layout import Layout as Layout
from specchain.models.torchlean.parts import LinearParams
from specchain.models.torchlean.sequence_models import (
    BiLSTMModel,
    LSTMClassifier,
    MultiLayerLSTMModel,
    SimpleLSTMModel,
)

__all__ = [
    "AttentionLSTMModel",
    "AttentionLSTMModelGrads",
    "BiLSTMModel",
    "BiLSTMModelGrads",
    "DropoutInference",
    "LSTMClassifier",
    "LSTMGenerator",
    "LSTMLanguageModel",
    "LSTMLanguageModelGrads",
    "LinearParams",
    "MultiLayerLSTMModel",
    "MultiLayerLSTMModelGrads",
    "SimpleLSTMModel",
    "SimpleLSTMModelGrads",
    "State",
    "attention_lstm_backward",
    "attention_lstm_forward",
    "bilstm_backward",
    "bilstm_forward",
    "bilstm_to_module_spec",
    "lstm_classifier_backward",
    "lstm_classifier_forward",
    "lstm_classifier_model_spec",
    "lstm_classifier_to_module_spec",
    "lstm_generator_forward",
    "lstm_language_model_spec",
    "lstm_lm_backward",
    "lstm_lm_forward",
    "multilayer_lstm_backward",
    "multilayer_lstm_forward",
    "multilayer_lstm_spec",
    "simple_lstm_backward",
    "simple_lstm_forward",
    "simple_lstm_model_spec",
    "simple_lstm_mse_grad",
    "simple_lstm_mse_loss",
    "simple_lstm_sequence_forward",
    "simple_lstm_to_module_spec",
]
