"""``specchain demo``: every zoo model built, summarised, exported (and verified when torch is
installed) and drawn; the classifier trained on the embedded Reber grammar for a fixed number of
epochs with fixed seeds, so every run prints the same figures; ``index.html`` (diagrams and the
loss curve inline) and ``index.md`` report it all.

The output folder gets a ``.gitignore`` holding ``*`` (as pytest's cache and virtual
environments do), so a demo run inside a git checkout leaves ``git status`` clean.
"""

from __future__ import annotations

import time
from pathlib import Path

from specchain.chain import SpecChain
from specchain.demo_results import ModelResult, TrainingResult, Verdict, plural
from specchain.loss_svg import loss_curve_svg
from specchain.models import ZOO
from specchain.models.zoo import classifier
from specchain.params import seed
from specchain.report_html import write_html
from specchain.types import SpecError

REBER_SYMBOLS = 7
EPOCHS = 20  # the classifier reaches 100% held-out accuracy well before (see docs/tutorial.md)
SEED = 0


def run_demo(out: Path, epochs: int = EPOCHS) -> None:
    """Run the demo into ``out`` (created if missing): ``epochs`` epochs of training, everything
    else fixed. Prints what it does; writes ``index.html``, ``index.md``, ``loss.svg``,
    ``summaries/``, ``exports/`` and ``diagrams/``. Reseeds the library's random streams
    (``sc.seed(0)``), so the models, the training and the figures are the same on every run.

    Raises:
        SpecError: ``epochs`` is not a positive int (before anything is written).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise SpecError(
            f"the demo's epochs (--epochs) must be a positive int, got {epochs!r}; "
            f"the default is {EPOCHS}"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / ".gitignore").write_text("# written by specchain demo: git ignores this folder\n*\n")
    print(f"specchain demo: writing to {out.resolve()} (git-ignored by its .gitignore)\n")
    seed(SEED)
    models = [_model_result(name, entry.build(), out) for name, entry in ZOO.items()]
    training = _train_reber_classifier(epochs)
    curves = {"loss": training.history.epoch_loss, "val_loss": training.history.val_loss}
    picture = loss_curve_svg(curves, title="classifier loss per epoch")
    (out / "loss.svg").write_text(picture)
    page = write_html(out, models, training, picture)
    _write_markdown(out, models, training)
    print(f"\nwrote {page} (open it in a browser) and {out / 'index.md'}")


def _model_result(name: str, model: SpecChain, out: Path) -> ModelResult:
    summary = model.summary()
    print(f"== {name}\n{summary}\n")
    (out / "summaries").mkdir(exist_ok=True)
    (out / "summaries" / f"{name}.txt").write_text(summary + "\n")
    verdict = _export(model, name, out)
    diagram, note = _render(model, name, out)
    return ModelResult(name, model, summary, verdict, diagram, note)


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _export(model: SpecChain, name: str, out: Path) -> Verdict | None:
    """Export to ``exports/<name>/``; the verification verdict, or None without torch."""
    from specchain.exporters import pytorch

    target = out / "exports" / name
    pytorch.export(model, target, class_name=_class_name(name), source=f"zoo:{name}")
    if not _has_torch():
        print(f"   export {name}: written (install torch to verify it)")
        return None
    report = pytorch.verify(model, class_name=_class_name(name))
    verdict = Verdict(report.ok, report.max_abs)
    print(f"   export {name}: {verdict.label} (pytorch.verify, max |diff| {verdict.max_abs:.1e})")
    return verdict


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _render(model: SpecChain, name: str, out: Path) -> tuple[Path | None, str]:
    """Draw ``diagrams/<name>.svg``; (the file, "") or (None, why not)."""
    from specchain.exporters import graphviz

    target = out / "diagrams" / f"{name}.svg"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        graphviz.render(model, target, expand=True)
    except Exception as err:  # rendering backends are optional: say what happened, go on
        print(f"   diagram {name}: not rendered ({err})")
        return None, str(err)
    return target, ""


def _train_reber_classifier(epochs: int) -> TrainingResult:
    from specchain import losses
    from specchain.data import reber
    from specchain.optim import Adam
    from specchain.train import accuracy, fit

    train = reber.classification_data(reber.embedded_reber_strings(512, rng=0))
    test = reber.classification_data(reber.embedded_reber_strings(256, rng=1))
    seed(SEED)
    model = classifier(REBER_SYMBOLS, 16, 2)
    optimizer = Adam(model.named_parameters(), lr=0.02)
    print(
        f"training the classifier on the embedded Reber grammar: {plural(epochs, 'epoch')} "
        f"of {len(train.targets)} strings, {len(test.targets)} held out"
    )
    start = time.perf_counter()
    history = fit(
        model,
        (train.inputs, train.targets),
        losses.cross_entropy,
        optimizer,
        epochs=epochs,
        batch_size=32,
        rng=SEED,
        validation_data=(test.inputs, test.targets),
    )
    seconds = time.perf_counter() - start
    held_out = accuracy(model(test.inputs), test.targets)
    result = TrainingResult(history, seconds, held_out, (len(train.targets), len(test.targets)))
    print(result.line())
    return result


def _write_markdown(out: Path, models: list[ModelResult], training: TrainingResult) -> None:
    lines = ["# specchain demo", "", training.line(), "", "![loss per epoch](loss.svg)", ""]
    for result in models:
        name, model = result.name, result.model
        if result.verdict is None:
            export = "written (install torch to verify)"
        else:
            export = f"{result.verdict.label}, max abs diff {result.verdict.max_abs:.1e}"
        diagram = f"![{name}](diagrams/{name}.svg)" if result.diagram else result.diagram_note
        lines += [
            f"## {name}",
            "",
            f"`{model.in_type}` -> `{model.out_type}`, {model.num_params:,} parameters. "
            f"[summary](summaries/{name}.txt)",
            "",
            f"PyTorch export [{name}/model.py](exports/{name}/model.py): {export}",
            "",
            diagram,
            "",
        ]
    (out / "index.md").write_text("\n".join(lines))
