"""``specchain demo``: every zoo model built, summarised, exported and drawn; the classifier
trained on the embedded Reber grammar; an ``index.md`` linking it all."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from specchain.chain import SpecChain
from specchain.models import ZOO
from specchain.models.zoo import classifier

REBER_SYMBOLS = 7
EPOCHS = 40  # or fewer: training stops when the time budget is spent


def run_demo(out: Path, seconds: float = 8.0) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, entry in ZOO.items():
        model = entry.build()
        summary = model.summary()
        print(f"== {name}\n{summary}\n")
        (out / "summaries").mkdir(exist_ok=True)
        (out / "summaries" / f"{name}.txt").write_text(summary + "\n")
        rows.append((name, model, _export(model, name, out), _render(model, name, out)))
    training = _train_reber_classifier(seconds)
    _write_index(out, rows, training)
    print(f"\nwrote {out / 'index.md'}")


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _export(model: SpecChain, name: str, out: Path) -> str:
    from specchain.exporters import pytorch

    target = out / "exports" / name
    pytorch.export(model, target, class_name=_class_name(name), source=f"zoo:{name}")
    if not _has_torch():
        return f"[{name}/model.py](exports/{name}/model.py) (install torch to verify)"
    report = pytorch.verify(model, class_name=_class_name(name))
    status = "equivalent" if report.ok else "MISMATCH"
    print(f"   export {name}: {status} to torch, max |diff| {report.max_abs:.1e}")
    return (
        f"[{name}/model.py](exports/{name}/model.py): {status}, max abs diff {report.max_abs:.1e}"
    )


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _render(model: SpecChain, name: str, out: Path) -> str:
    from specchain.exporters import graphviz

    target = out / "diagrams" / f"{name}.svg"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        graphviz.render(model, target, expand=True)
    except Exception as err:  # rendering backends are optional: say what happened, go on
        print(f"   diagram {name}: not rendered ({err})")
        return f"not rendered: {err}"
    return f"![{name}](diagrams/{name}.svg)"


def _train_reber_classifier(seconds: float) -> str:
    from specchain import losses
    from specchain.data import reber
    from specchain.optim import Adam
    from specchain.train import accuracy, fit

    train = reber.classification_data(reber.embedded_reber_strings(512, rng=0))
    test = reber.classification_data(reber.embedded_reber_strings(256, rng=1))
    model = classifier(REBER_SYMBOLS, 16, 2)
    optimizer = Adam(model.named_parameters(), lr=0.02)
    start = time.perf_counter()

    def out_of_time(epoch: int, history: Any) -> bool:
        return time.perf_counter() - start > seconds

    print(f"training the classifier on the embedded Reber grammar for ~{seconds:g} s")
    history = fit(
        model,
        (train.inputs, train.targets),
        losses.cross_entropy,
        optimizer,
        epochs=EPOCHS,
        batch_size=32,
        on_epoch=out_of_time,
    )
    held_out = accuracy(model(test.inputs), test.targets)
    line = (
        f"classifier on embedded Reber: {len(history.epoch_loss)} epochs, "
        f"final loss {history.epoch_loss[-1]:.4f}, held-out accuracy {held_out:.1%}"
    )
    print(line)
    return line


def _write_index(out: Path, rows: list[tuple[str, SpecChain, str, str]], training: str) -> None:
    lines = ["# specchain demo", "", training, ""]
    for name, model, export, diagram in rows:
        lines += [
            f"## {name}",
            "",
            f"`{model.in_type}` -> `{model.out_type}`, {model.num_params:,} parameters. "
            f"[summary](summaries/{name}.txt)",
            "",
            f"PyTorch export: {export}",
            "",
            diagram,
            "",
        ]
    (out / "index.md").write_text("\n".join(lines))
