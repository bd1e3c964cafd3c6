"""Train a character-level language model on a text file and print samples.

    python examples/char_lm.py                      # the Zen of Python (every install has it)
    python examples/char_lm.py my.txt --epochs 20   # any UTF-8 text file
    python examples/char_lm.py --help

The text becomes a character vocabulary (``Vocab.chars``) and overlapping chunks of ``--steps``
characters whose targets are the next characters (``lm_data``); ``sc.models.language_model``
(embedding -> LSTM stack -> dropout -> projection) trains on them with Adam and cross-entropy,
one persisting line per epoch; then ``generate`` samples ``--length`` characters from a prompt,
carrying the LSTM state from one character to the next.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

import numpy as np

import specchain as sc
from specchain.data.text import Vocab, lm_data
from specchain.generation import generate
from specchain.optim import Adam
from specchain.train import History, evaluate, fit


def zen_of_python() -> str:
    """The Zen of Python, decoded from the standard library's ``this`` module (silently)."""
    with contextlib.redirect_stdout(io.StringIO()):
        import this
    return "".join(this.d.get(c, c) for c in this.s)


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, help="UTF-8 text (default: the Zen)")
    parser.add_argument("--epochs", type=int, default=20, help="passes over the chunks")
    parser.add_argument("--steps", type=int, default=32, help="characters per training chunk")
    parser.add_argument("--stride", type=int, default=4, help="characters between chunk starts")
    parser.add_argument("--hidden", type=int, default=64, help="LSTM hidden size")
    parser.add_argument("--layers", type=int, default=1, help="LSTM layers")
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout before the output")
    parser.add_argument("--lr", type=float, default=0.01, help="Adam learning rate")
    parser.add_argument("--batch-size", type=int, default=32, help="chunks per step")
    parser.add_argument("--prompt", default="", help="text to start each sample with")
    parser.add_argument("--length", type=int, default=300, help="characters to sample")
    parser.add_argument("--samples", type=int, default=2, help="samples to print")
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    parser.add_argument("--top-k", type=int, default=None, help="sample among the k most likely")
    parser.add_argument("--seed", type=int, default=0, help="seeds the weights, data and samples")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    text = zen_of_python() if args.file is None else args.file.read_text(encoding="utf-8")
    source = "the Zen of Python" if args.file is None else str(args.file)
    vocab = Vocab.chars(text, pad=None, unk=None)  # every character is in the text
    data = lm_data(vocab.encode(text), steps=args.steps, stride=args.stride)
    print(
        f"{source}: {len(text):,} characters, {len(vocab)} tokens in the vocabulary, "
        f"{data.inputs.shape[1]:,} chunks of {args.steps}"
    )
    sc.seed(args.seed)
    model = sc.models.language_model(len(vocab), args.hidden, args.layers, dropout=args.dropout)
    print(f"model: {model.num_params:,} parameters")

    def report(epoch: int, history: History) -> None:
        print(
            f"epoch {epoch}/{args.epochs} - loss {history.epoch_loss[-1]:.4f} - "
            f"{history.epoch_time[-1]:.1f} s",
            flush=True,
        )

    fit(
        model,
        data,
        sc.losses.cross_entropy,
        Adam(model, lr=args.lr),
        epochs=args.epochs,
        batch_size=args.batch_size,
        clip=5.0,
        rng=args.seed,
        progress=False,
        on_epoch=report,
    )
    loss = evaluate(model, data.inputs, data.targets, sc.losses.cross_entropy)
    print(f"final loss {loss:.4f} ({np.exp(loss):.2f} perplexity per character)")
    prompt_text = args.prompt or text[0]
    prompt = np.repeat(vocab.encode(prompt_text)[:, None], args.samples, axis=1)
    start = time.perf_counter()
    out = generate(model, prompt, args.length, args.temperature, top_k=args.top_k, rng=args.seed)
    took = time.perf_counter() - start
    for b in range(args.samples):
        print(f"\n--- sample {b + 1} (temperature {args.temperature}) ---")
        print(vocab.decode(out[:, b]))
    print(f"\nsampled {args.samples} x {args.length} characters in {took:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
