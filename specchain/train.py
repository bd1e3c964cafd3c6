"""Training loop, evaluation and sampling: ``fit``, ``evaluate``, ``accuracy``, ``generate``.

Data convention (time-major, like ``nn.LSTM(batch_first=False)``): ``fit`` takes ``(inputs,
targets)`` holding N examples, batched on the axes ``specchain.batches`` describes (``[T, N, F]``
inputs with ``[N]`` labels or ``[T, N, ...]`` per-step targets). Both sides must hold the same N.
Padded batches of variable-length sequences: give the inputs as ``(x, lengths)`` (or a
``Padded``) with ``lengths`` int ``[N]``; each mini-batch takes its examples' lengths, and the
loss skips the padding of the model's ``Padded`` output (``specchain.losses``). Targets stay
plain arrays (their padded positions are never read). A model with several inputs takes a tuple
(or list) of inputs, one per input (each an array, ``(x, lengths)`` or a ``Padded``), and every
batch takes the same examples from each.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from specchain.batches import Data, Examples, Inputs, batch_axes, target_axis, unpack
from specchain.callbacks import Callback
from specchain.chain import SpecChain
from specchain.checkpoints import TrainingState, checkpoint_file, load_checkpoint, save_checkpoint
from specchain.engines.torch_engine import ENGINES, TorchEngine
from specchain.fit_args import (
    Metric,
    check_callbacks,
    check_example_counts,
    check_loss,
    check_loss_fits,
    resolve_metrics,
)
from specchain.generation import generate
from specchain.history import History
from specchain.interrupts import DeferredInterrupt
from specchain.losses import Loss
from specchain.optim import Optimizer
from specchain.padded import Padded
from specchain.params import RngLike, runtime_generator
from specchain.progress import EpochProgress
from specchain.spec import NNModuleSpec
from specchain.threads import fit_threads
from specchain.train_loop import EpochRunner, TrainingError
from specchain.types import ShapeError, SpecError
from specchain.validate import (
    check_flag,
    check_int_array,
    check_non_negative_int,
    check_number,
    check_positive_int,
    out_of_range,
)


class TrainingInterrupted(KeyboardInterrupt):
    """``fit`` stopped by Ctrl-C (SIGINT); catch it as ``KeyboardInterrupt``.

    ``history`` holds the run so far, and the parameters are those after its last step
    (``history.steps``), unless ``forced``: a second Ctrl-C during an update stops at once and
    the parameters may then mix two steps.
    """

    def __init__(self, message: str, history: History, forced: bool) -> None:
        super().__init__(message)
        self.history = history
        self.forced = forced


EpochCallback = Callable[[int, History], bool | None]


def _as_model(model: SpecChain | NNModuleSpec) -> SpecChain:
    return model.as_chain() if isinstance(model, NNModuleSpec) else SpecChain.of(model)


def _check_optimizer(model: SpecChain, optimizer: Optimizer) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"optimizer must be a specchain.optim optimizer, got {type(optimizer).__name__}"
        )
    mine, theirs = model.named_parameters(), optimizer.params
    stale = [name for name, p in mine.items() if theirs.get(name) is not p]
    if stale:
        raise SpecError(
            f"the optimizer does not hold the model's current parameter arrays (for {stale}): "
            "it was built for another model, or before model.to(...) / model.load_state_dict; "
            "build it from the model itself, e.g. SGD(model, lr=0.1)"
        )


# --- fit --------------------------------------------------------------------------------------


def fit(
    model: SpecChain,
    data: Data,
    loss: Loss,
    optimizer: Optimizer,
    epochs: int = 1,
    batch_size: int = 32,
    clip: float | None = None,
    rng: RngLike = None,
    progress: bool = True,
    on_epoch: EpochCallback | None = None,
    *,
    validation_data: Data | None = None,
    metrics: Sequence[str | Metric] = (),
    callbacks: Sequence[Callback] = (),
    checkpoint: str | Path | None = None,
    initial_epoch: int = 0,
    shuffle: bool = True,
    engine: str = "numpy",
    device: str = "cpu",
) -> History:
    """Train ``model`` on ``data`` until epoch ``epochs``, in mini-batches (shuffled by default).

    Args:
        model: the chain to train (its parameters are updated in place by ``optimizer``).
        data: ``(inputs, targets)`` with N examples, batched as the module docstring says
            (``[T, N, F]`` inputs with ``[N]`` labels, or ``[T, N, ...]`` targets), or a
            ``specchain.data`` dataset (anything with ``.inputs`` and ``.targets``). The inputs
            may be ``(x, lengths)`` or a ``Padded``: a padded batch with int ``[N]`` lengths.
            A model whose input type is a tuple of k items takes a k-tuple (or list) of inputs,
            e.g. ``((source, decoder_inputs), y)``, each on its own batch axis, all with N.
        loss: a loss object, ``sc.losses.cross_entropy`` or ``sc.losses.mse`` (scalar reduction).
        optimizer: an ``specchain.optim`` optimizer built on ``model``.
        epochs: the epoch to train until, as in Keras: epochs ``initial_epoch + 1 .. epochs``.
        batch_size: examples per step; the last batch of an epoch may be smaller.
        clip: if given, ``clip_grad_norm(grads, clip)`` before every step.
        rng: the batch order and the training-mode randomness (dropout). ``None`` (default)
            draws from the library's run-time stream: every epoch and every call differ, and
            ``sc.seed(n)`` at the top of a script makes the whole script repeat. An int seed
            (or a Generator) makes this call repeat exactly.
        progress: print one line per epoch (``Epoch 3/20 - loss: ... - val_loss: ... - 0.4s``,
            to stdout) and, on a terminal, a tqdm bar while the epoch runs.
        on_epoch: ``on_epoch(epoch, history)`` after each epoch (``epoch`` counts from 1);
            returning True stops training.
        validation_data: ``(inputs, targets)`` or a dataset, evaluated in inference mode after
            every epoch: ``val_loss`` (and ``val_<metric>``) in the line, the History and logs.
        metrics: e.g. ``["accuracy"]`` or functions ``metric(outputs, targets) -> float``, on
            the training batches (averaged over the epoch) and on the validation data.
        callbacks: ``specchain.callbacks`` objects (``EarlyStopping``, ``ModelCheckpoint``).
        checkpoint: a folder: after every epoch the model, optimizer state, epoch, generator
            state and History go to ``folder/checkpoint.safetensors``; if that file exists when
            ``fit`` starts, training resumes from it (delete it to start over), exactly as the
            run that was never stopped (``specchain.checkpoints``).
        initial_epoch: epochs already done (numbers the epochs; ``checkpoint`` sets it).
        shuffle: draw a new batch order every epoch (True), or keep the data's order.
        engine: ``"numpy"`` (the reference) or ``"torch"``: the same steps on the exported
            module with ``torch.optim`` configured from ``optimizer``, on ``device``
            (``"cpu"``, ``"cuda"``, ...); the weights and optimizer state are written back into
            the spec after every epoch, so History, metrics, validation, callbacks and
            checkpoints work as with numpy. Dropout masks then come from torch's generator
            (seeded from ``rng``); everything else matches the numpy engine to rounding
            (``specchain.engines.torch_engine``; needs ``pip install 'specchain[torch]'``).
        device: where the torch engine runs; ``"cpu"`` is the only choice for ``"numpy"``.

    Returns:
        The ``History`` (continued from the checkpoint when resuming). A NaN or infinite loss
        (or gradient) raises ``TrainingError`` naming the epoch and the step, before that step
        changes any parameter (``err.history`` holds the run so far).

    Ctrl-C (SIGINT) never cuts a parameter update: one that arrives during an update is held
    until the update (and its History entry) is complete; one that arrives elsewhere (forward,
    backward, a callback) stops at once, before the next update. Either way the parameters are
    all from the same step, and ``fit`` raises ``TrainingInterrupted`` (a ``KeyboardInterrupt``,
    which propagates as in Keras) with the History so far as ``err.history``; with ``progress``
    it also prints a one-line note to stderr. A second Ctrl-C during an update stops at once
    (``err.forced``: the parameters may then mix two steps). Deferral needs the main thread and
    a Python-level SIGINT handler (the default); elsewhere Ctrl-C behaves as usual.
    """
    chain = _as_model(model)
    loss = check_loss("fit", loss)
    inputs, targets = unpack("fit", chain, data)
    epochs = check_positive_int("fit", "epochs", epochs)
    batch_size = check_positive_int("fit", "batch_size", batch_size)
    if clip is not None:
        clip = check_number("fit", "clip", clip)
        if not clip > 0:
            raise out_of_range("fit", "clip", "> 0 (a max gradient norm) or None", clip)
    initial_epoch = check_non_negative_int("fit", "initial_epoch", initial_epoch)
    shuffle = check_flag("fit", "shuffle", shuffle)
    scorers = resolve_metrics("fit", metrics)
    hooks = check_callbacks("fit", callbacks)
    _check_optimizer(chain, optimizer)
    check_loss_fits("fit", chain, loss, targets)
    inputs.check_axes(chain)
    out_axis = target_axis(chain, targets)
    inputs.check_lengths("fit")
    n = check_example_counts("fit", chain, inputs, targets, out_axis)
    if n == 0:
        raise SpecError(f"fit got no training examples (inputs of shape {inputs.shapes()})")
    held_out = None if validation_data is None else _validation(chain, loss, validation_data)
    printer = EpochProgress(progress, epochs)
    state = TrainingState(initial_epoch, History(), runtime_generator(rng))
    saved = None if checkpoint is None else checkpoint_file(checkpoint)
    if saved is not None and saved.is_file():
        state = load_checkpoint(saved, chain, optimizer)
        done = " (a callback stopped the run there: nothing more to train)" if state.stopped else ""
        printer.note(f"resumed from {saved} after epoch {state.epoch}{done}")
    stepper = _engine(engine, device, chain, loss, optimizer, clip)
    run = EpochRunner(
        chain, loss, optimizer, inputs, targets, out_axis, batch_size, clip, scorers, state, stepper
    )
    for hook in hooks:
        hook.set_model(chain)
        hook.on_train_begin(state.history)
    guard = DeferredInterrupt()
    try:
        with guard, fit_threads(chain):
            while state.epoch < epochs and not state.stopped:
                epoch = state.epoch + 1
                for hook in hooks:
                    hook.on_epoch_begin(epoch)
                run.refresh()
                try:
                    run.epoch(epoch, shuffle, printer, guard)
                finally:  # the torch engine's steps reach the spec whatever stops the epoch
                    run.sync()
                if held_out is not None:
                    run.validate(*held_out)
                logs = state.history.logs(state.history.epochs)
                printer.end(epoch, logs)
                state.epoch = epoch
                for hook in hooks:
                    if hook.on_epoch_end(epoch, logs) is True:
                        state.stopped = True
                        printer.note(hook.reason or f"Epoch {epoch}: stopped by {hook!r}")
                if on_epoch is not None and on_epoch(epoch, state.history) is True:
                    state.stopped = True
                if saved is not None:
                    save_checkpoint(saved, chain, optimizer, state)
    except KeyboardInterrupt as err:
        printer.close()  # the note goes below the bar's line, not onto it
        run.clock()
        stopped = _interrupted(state.history, epochs, guard.forced)
        if progress:
            print(stopped, file=sys.stderr)
        raise stopped.with_traceback(err.__traceback__) from None
    finally:
        printer.close()
    for hook in hooks:
        hook.on_train_end(state.history)
    return state.history


def _engine(
    engine: str,
    device: str,
    chain: SpecChain,
    loss: Loss,
    optimizer: Optimizer,
    clip: float | None,
) -> TorchEngine | None:
    """The torch engine for ``engine="torch"`` (its dropout stream is seeded before every
    epoch: ``EpochRunner.refresh``), None for numpy; refuses anything else."""
    if engine not in ENGINES:
        raise out_of_range("fit", "engine", " or ".join(map(repr, ENGINES)), engine)
    if engine == "numpy":
        if device != "cpu":
            raise SpecError(
                f"fit: device={device!r} needs engine='torch'; the numpy engine runs on the CPU"
            )
        return None
    return TorchEngine(chain, loss, optimizer, device, clip)


def _validation(chain: SpecChain, loss: Loss, data: Data) -> tuple[Examples, np.ndarray]:
    inputs, targets = unpack("fit.validation_data", chain, data)
    check_loss_fits("fit.validation_data", chain, loss, targets)
    inputs.check_axes(chain)
    out_axis = target_axis(chain, targets)
    inputs.check_lengths("fit.validation_data")
    if check_example_counts("fit.validation_data", chain, inputs, targets, out_axis) == 0:
        raise SpecError(
            f"fit.validation_data holds no examples (inputs of shape {inputs.shapes()}): its loss "
            "would be NaN every epoch; pass held-out examples, or validation_data=None"
        )
    return inputs, targets


def _interrupted(history: History, epochs: int, forced: bool) -> TrainingInterrupted:
    where = (
        f"during step {history.steps + 1}: a second Ctrl-C cut that update, so the parameters "
        f"may mix steps {history.steps} and {history.steps + 1}"
        if forced
        else f"after step {history.steps}: the parameters are those of that step"
    )
    return TrainingInterrupted(
        f"fit interrupted by Ctrl-C {where} ({history.epochs} of {epochs} epochs complete); "
        "the History so far is err.history",
        history,
        forced,
    )


# --- evaluation -------------------------------------------------------------------------------


def evaluate(model: SpecChain, inputs: Inputs, targets: np.ndarray, loss: Loss) -> float:
    """The loss of the whole set in inference mode (dropout off), in one forward pass;
    ``inputs`` may be ``(x, lengths)`` or a ``Padded`` (the loss then skips the padding), or a
    tuple of inputs for a model with several."""
    chain = _as_model(model)
    loss = check_loss("evaluate", loss)
    examples, targets = unpack("evaluate", chain, (inputs, targets))
    check_loss_fits("evaluate", chain, loss, targets)
    return float(loss(chain(examples.call_input()), targets))


def accuracy(
    logits: np.ndarray | Padded, labels: np.ndarray, ignore_index: int | None = None
) -> float:
    """The fraction of positions where ``argmax(logits[..., :])`` equals ``labels[...]``.

    ``logits`` is ``[..., C]`` and ``labels`` the integer array ``[...]`` (ties go to the first
    class, as ``argmax`` does). Positions whose label is ``ignore_index`` do not count, nor
    the padding of a ``Padded`` ``logits`` (a model's output on a padded batch).
    """
    counted = None
    if isinstance(logits, Padded):  # a padded batch: only its real steps count
        counted, logits = logits.mask()[..., 0], logits.data
    if not isinstance(logits, np.ndarray) or logits.ndim < 1:
        raise ShapeError("accuracy: logits must be a numpy array [..., C] (classes last)")
    labels = check_int_array("accuracy", "labels", np.asarray(labels), "integer class indices")
    if logits.shape[:-1] != labels.shape:
        raise ShapeError(
            f"accuracy: logits {list(logits.shape)} need labels of shape "
            f"{list(logits.shape[:-1])}, got {list(labels.shape)}"
        )
    keep = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    if counted is not None:
        keep &= counted
    if not keep.any():
        raise SpecError("accuracy of no predictions is undefined (no labels to compare)")
    hits = (np.argmax(logits, axis=-1) == labels) & keep
    return float(hits.sum() / keep.sum())


__all__ = [
    "History",
    "TrainingError",
    "TrainingInterrupted",
    "TrainingState",
    "accuracy",
    "batch_axes",
    "evaluate",
    "fit",
    "generate",
]
