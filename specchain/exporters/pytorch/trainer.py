"""``train.py`` beside an export: a standard DistributedDataParallel training script.

``trainer_source(model, class_name)`` writes a script that needs only torch, numpy and
safetensors::

    torchrun --nproc_per_node=2 train.py --data data.npz --epochs 3 --batch-size 32 --lr 1e-3

It reads the data file (``specchain.data.write_training_file``: ``x``, optional ``lengths`` and
``x_batch_axis`` for one input; ``x0``, ``x1``, ... each with ``x{i}_batch_axis`` and optional
``lengths{i}`` for several; and ``y``, ``y_batch_axis``), shards the examples with
``DistributedSampler`` (each process takes ``batch-size / world size`` of every global batch, so
a step sees the same examples as one process with the whole batch), takes the same examples from
every input on its own batch axis, calls the exported ``forward`` with each input and its lengths
right after it (``Names.signature``), trains with ``gloo`` on CPU or ``nccl`` on GPUs, and saves
rank 0's weights as ``model.safetensors`` (``load_torch_state`` reads them back into the spec).
The loss is the whole global batch's mean over its positions that count (padding and ignored
labels left out), however they are spread over the processes: each process scales its sum by the
world size over the all-reduced number of positions, and DDP averages the gradients. The printed
epoch loss is ``fit``'s: the batch means weighted by their examples.
"""

from __future__ import annotations

from specchain.chain import SpecChain
from specchain.exporters.pytorch.emitters import ExportError
from specchain.exporters.pytorch.lengths import output_lengths_argument
from specchain.exporters.pytorch.naming import assign_names
from specchain.padded import axes_for
from specchain.types import TensorType, TupleType

LOSSES = ("mse", "cross_entropy")


def trainer_source(model: SpecChain, class_name: str = "Model", loss: str = "mse") -> str:
    """The text of ``train.py`` for ``model``'s export (``model.py`` with ``class_name``)."""
    if loss not in LOSSES:
        raise ExportError(f"train.py loss must be one of {list(LOSSES)}, got {loss!r}")
    names = assign_names(model, class_name)
    items = model.in_type.items if isinstance(model.in_type, TupleType) else (model.in_type,)
    for argument, item in zip(names.arguments, items, strict=True):
        if isinstance(item, TupleType):
            raise ExportError(
                f"train.py gives each forward argument one tensor, but {argument!r} takes a "
                f"tuple {item}; train this model with fit(..., engine='torch'), or give it "
                "one input per tensor (a flat tuple of inputs)"
            )
    out_type = model.out_type
    output_lengths = output_lengths_argument(model, names)  # a padded output: mask the padding
    time_axis, batch_axis = 0, None
    if output_lengths is not None and isinstance(out_type, TensorType) and out_type.rank:
        time_axis, batch_axis = axes_for(out_type, out_type.rank)
    if batch_axis is None:
        output_lengths = None
    return _TEMPLATE.format(
        class_name=class_name,
        arguments=_tuple_text([f'"{name}"' for name in names.arguments]),
        takes_lengths=_tuple_text([str(i in names.lengths) for i in range(len(names.arguments))]),
        output_lengths=output_lengths,
        time_axis=time_axis,
        batch_axis=batch_axis,
        loss=loss,
    )


def _tuple_text(items: list[str]) -> str:
    """A tuple literal as ruff formats it: ``("x",)``, ``(True, False)``."""
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


_TEMPLATE = '''"""Train {class_name} (exported by specchain) with DistributedDataParallel.

    torchrun --nproc_per_node=2 train.py --data data.npz --epochs 3 --batch-size 32 --lr 1e-3

Several machines: the same command on each, with torchrun's --nnodes, --node-rank and
--rdzv-endpoint HOST:PORT. Data: an .npz (specchain.data.write_training_file writes it) with,
for one input, x, optional lengths and x_batch_axis; for several, x0, x1, ... (in the order
forward takes them), each with x{{i}}_batch_axis and optional lengths{{i}}; and y, y_batch_axis.
--batch-size is the global batch: each of the N processes takes batch-size / N examples of it
(the same examples from every input), so a step sees the examples one process would see with
the whole batch when the number of examples is a multiple of N (DistributedSampler repeats a
few examples to fill the last batches otherwise). Backend: nccl on GPUs, gloo on CPU. Rank 0
saves the trained weights as model.safetensors. Needs torch, numpy and safetensors.
"""

import argparse
import gc
import os

import numpy as np
import torch
import torch.distributed as dist
from model import {class_name}
from safetensors.torch import load_file, save_file
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

ARGUMENTS = {arguments}  # forward's inputs, in order
TAKES_LENGTHS = {takes_lengths}  # per input: forward takes its lengths after it
OUTPUT_LENGTHS = {output_lengths}  # the input whose lengths the output keeps, or None
TIME_AXIS, BATCH_AXIS = {time_axis}, {batch_axis}  # of the output, when it keeps lengths
LOSS = "{loss}"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the .npz data file")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32, help="global batch size")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    parser.add_argument("--weights", default="model.safetensors", help="start weights")
    parser.add_argument("--out", default="model.safetensors", help="where rank 0 saves")
    parser.add_argument("--seed", type=int, default=0, help="shuffling seed")
    return parser.parse_args()


def batch_first(data, key: str) -> torch.Tensor:
    """Array ``key`` with its examples on axis 0 (its ``key_batch_axis``)."""
    return torch.from_numpy(np.moveaxis(data[key], int(data[key + "_batch_axis"]), 0))


class Examples(torch.utils.data.Dataset):
    """The examples of the data file, one index per example; each input keeps its lengths."""

    def __init__(self, path: str) -> None:
        data = np.load(path)
        numbered = [k[1:] for k in data.files if k[:1] == "x" and k[1:].isdigit()]
        suffixes = [""] if "x" in data else sorted(numbered, key=int)  # x0, x1, ...
        if len(suffixes) != len(ARGUMENTS):
            raise SystemExit(
                f"{{path}} holds {{len(suffixes)}} inputs, but the model takes "
                f"{{len(ARGUMENTS)}} {{ARGUMENTS}}: write the data with "
                "specchain.data.write_training_file(path, model, data) for this model"
            )
        self.x = [batch_first(data, "x" + s) for s in suffixes]
        self.x_axes = [int(data[f"x{{s}}_batch_axis"]) for s in suffixes]
        self.lengths = [
            torch.from_numpy(data["lengths" + s]) if "lengths" + s in data else None
            for s in suffixes
        ]
        self.y, self.y_axis = batch_first(data, "y"), int(data["y_batch_axis"])
        for name, takes, lengths in zip(ARGUMENTS, TAKES_LENGTHS, self.lengths):
            if takes and lengths is None:
                raise SystemExit(f"{{path}}: no lengths for {{name}}; the model takes them")
            if not takes and lengths is not None:
                raise SystemExit(
                    f"{{path}} has lengths for {{name}}, but the model takes none: export a "
                    "model that starts with sc.Input(..., lengths=True), or write the data "
                    "without lengths"
                )

    def __len__(self) -> int:
        return self.y.shape[0]

    def __getitem__(self, i: int) -> int:
        return i

    def batch(
        self, index: list[int], device: torch.device
    ) -> tuple[list[torch.Tensor], torch.Tensor | None, torch.Tensor]:
        """The examples ``index``: forward's arguments (each input on its batch axis, its
        lengths right after it), the lengths the output keeps (or None) and y."""
        rows = torch.tensor(index)
        inputs = []
        for x, axis, lengths in zip(self.x, self.x_axes, self.lengths):
            inputs.append(x[rows].movedim(0, axis).to(device))
            if lengths is not None:
                inputs.append(lengths[rows])  # lengths stay on the CPU
        kept = None if OUTPUT_LENGTHS is None else self.lengths[OUTPUT_LENGTHS][rows]
        return inputs, kept, self.y[rows].movedim(0, self.y_axis).to(device)


def loss_sum(
    out: torch.Tensor, y: torch.Tensor, lengths: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss summed over the positions that count (padding left out) and their number."""
    keep = None
    if lengths is not None:
        steps = torch.arange(out.shape[TIME_AXIS], device=out.device)
        shape = [1] * out.dim()
        shape[TIME_AXIS] = -1
        ends = [1] * out.dim()
        ends[BATCH_AXIS] = -1
        keep = steps.view(shape) < lengths.to(out.device).view(ends)
    if LOSS == "cross_entropy":
        counts = y != -100
        if keep is not None:
            counts = counts & keep[..., 0]
        safe = torch.where(counts, y, torch.zeros_like(y))
        picked = torch.log_softmax(out, -1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
        losses = -torch.where(counts, picked, torch.zeros_like(picked))
        return losses.sum(), counts.sum()
    diff = out - y
    if keep is None:
        return (diff * diff).sum(), torch.tensor(diff.numel(), device=diff.device)
    keep = keep.expand_as(diff)
    diff = torch.where(keep, diff, torch.zeros_like(diff))
    return (diff * diff).sum(), keep.sum()


def main() -> None:
    args = arguments()
    examples = Examples(args.data)  # a wrong file stops here, before any process group
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if args.batch_size % world:
        raise SystemExit(f"--batch-size {{args.batch_size}} is not a multiple of {{world}}")
    weights = load_file(args.weights)
    dtype = next(iter(weights.values())).dtype  # training keeps the weights' precision
    for name, x in zip(ARGUMENTS, examples.x):
        if x.is_floating_point() and x.dtype != dtype:
            raise SystemExit(f"{{args.data}}: {{name}} is {{x.dtype}}, weights {{dtype}}")
    model = {class_name}().to(dtype)
    model.load_state_dict(weights)
    model.to(device)
    ddp = DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    optimizer = (
        torch.optim.Adam(ddp.parameters(), lr=args.lr)
        if args.optimizer == "adam"
        else torch.optim.SGD(ddp.parameters(), lr=args.lr)
    )
    sampler = DistributedSampler(examples, world, rank, shuffle=True, seed=args.seed)
    loader = DataLoader(
        examples, batch_size=args.batch_size // world, sampler=sampler, collate_fn=list
    )
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        total = torch.zeros(2, dtype=torch.float64, device=device)
        for index in loader:
            inputs, lengths, y = examples.batch(index, device)
            summed, count = loss_sum(ddp(*inputs), y, lengths)
            # the global batch's loss sum, positions and examples, from every process
            examples_here = torch.tensor(len(index), device=device)
            batch = torch.stack([summed.detach(), count, examples_here]).double()
            dist.all_reduce(batch)
            # DDP averages gradients over the processes: world / (all positions) makes that
            # the gradient of the global batch's mean, however the positions are spread
            loss = summed * (world / batch[1].item())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            # the epoch's loss as fit's History has it: batch means weighted by examples
            total += torch.stack([batch[0] / batch[1] * batch[2], batch[2]])
        if rank == 0:
            mean = (total[0] / total[1]).item()
            print(f"epoch {{epoch + 1}}/{{args.epochs}} - loss: {{mean:.6f}}")
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    replicas = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(replicas, flat)
    if rank == 0:
        spread = max((r - flat).abs().max().item() for r in replicas)
        print(f"replicas: {{world}} processes, largest weight difference {{spread:.3e}}")
        trained = ddp.module.state_dict()
        state = {{k: v.detach().cpu().contiguous() for k, v in trained.items()}}
        save_file(state, args.out)
    del ddp, optimizer, loader  # no gloo work may outlive the group (it aborts at exit)
    gc.collect()
    dist.barrier()  # and every rank leaves together
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
'''
