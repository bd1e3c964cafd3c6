"""``train.py`` beside an export: a standard DistributedDataParallel training script.

``trainer_source(model, class_name)`` writes a script that needs only torch, numpy and
safetensors::

    torchrun --nproc_per_node=2 train.py --data data.npz --epochs 3 --batch-size 32 --lr 1e-3

It reads the data file (``specchain.data.write_training_file``: arrays ``x``, ``y``, optional
``lengths``, and the batch axis of each), shards the examples with ``DistributedSampler``
(each process takes ``batch-size / world size`` of every global batch, so a step sees the same
examples as one process with the whole batch), trains with ``gloo`` on CPU or ``nccl`` on
GPUs, and saves rank 0's weights as ``model.safetensors`` (``load_torch_state`` reads them back
into the spec). The loss is each process's mean over its positions that count (padding left
out); DDP averages the gradients, which is the whole batch's mean when every process holds
the same number of positions (always without padding).
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
    if isinstance(model.in_type, TupleType):
        raise ExportError(
            "train.py trains models with one input (a sequence, with or without lengths); "
            f"this model takes {len(model.in_type.items)}: train it with fit(..., engine='torch')"
        )
    names = assign_names(model, class_name)
    out_type = model.out_type
    padded_output = output_lengths_argument(model, names) is not None
    if padded_output and isinstance(out_type, TensorType) and out_type.rank is not None:
        time_axis, batch_axis = axes_for(out_type, out_type.rank)
    else:
        time_axis, batch_axis = 0, None
    return _TEMPLATE.format(
        class_name=class_name,
        takes_lengths=bool(names.lengths),
        padded_output=padded_output,
        time_axis=time_axis,
        batch_axis=batch_axis,
        loss=loss,
    )


_TEMPLATE = '''"""Train {class_name} (exported by specchain) with DistributedDataParallel.

    torchrun --nproc_per_node=2 train.py --data data.npz --epochs 3 --batch-size 32 --lr 1e-3

Several machines: the same command on each, with torchrun's --nnodes, --node-rank and
--rdzv-endpoint HOST:PORT. Data: an .npz with x, y, optional lengths and the batch axis of x and
y (specchain.data.write_training_file writes it). --batch-size is the global batch: each of the N
processes takes batch-size / N examples of it, so a step sees the examples one process would see
with the whole batch when the number of examples is a multiple of N (DistributedSampler repeats
a few examples to fill the last batches otherwise). Backend: nccl on GPUs, gloo on CPU. Rank 0 saves
the trained weights as model.safetensors. Needs torch, numpy and safetensors.
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

TAKES_LENGTHS = {takes_lengths}
PADDED_OUTPUT = {padded_output}  # the output keeps the input's lengths: padding is left out
TIME_AXIS, BATCH_AXIS = {time_axis}, {batch_axis}  # of the output, when it is padded
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


class Examples(torch.utils.data.Dataset):
    """The examples of the data file, one index per example."""

    def __init__(self, path: str) -> None:
        data = np.load(path)
        self.x = torch.from_numpy(np.moveaxis(data["x"], int(data["x_batch_axis"]), 0))
        self.y = torch.from_numpy(np.moveaxis(data["y"], int(data["y_batch_axis"]), 0))
        self.x_axis, self.y_axis = int(data["x_batch_axis"]), int(data["y_batch_axis"])
        self.lengths = torch.from_numpy(data["lengths"]) if "lengths" in data else None
        if TAKES_LENGTHS and self.lengths is None:
            raise SystemExit(f"{{path}} has no lengths, but the model takes them")
        if not TAKES_LENGTHS and self.lengths is not None:
            raise SystemExit(
                f"{{path}} has lengths, but the model takes none: export a model that starts "
                "with sc.Input(..., lengths=True), or write the data without lengths"
            )

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> int:
        return i

    def batch(
        self, index: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """x, lengths and y of the examples ``index``, on their batch axes."""
        rows = torch.tensor(index)
        x = self.x[rows].movedim(0, self.x_axis)
        y = self.y[rows].movedim(0, self.y_axis)
        return x, (None if self.lengths is None else self.lengths[rows]), y


def loss_of(
    out: torch.Tensor, y: torch.Tensor, lengths: torch.Tensor | None
) -> torch.Tensor:
    """The mean loss over the positions that count (padding left out)."""
    keep = None
    if PADDED_OUTPUT and lengths is not None:
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
        total = -torch.where(counts, picked, torch.zeros_like(picked)).sum()
        return total / counts.sum()
    diff = out - y
    if keep is None:
        return (diff * diff).mean()
    keep = keep.expand_as(diff)
    diff = torch.where(keep, diff, torch.zeros_like(diff))
    return (diff * diff).sum() / keep.sum()


def main() -> None:
    args = arguments()
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if cuda else None
    if args.batch_size % world:
        raise SystemExit(f"--batch-size {{args.batch_size}} is not a multiple of {{world}}")
    examples = Examples(args.data)
    weights = load_file(args.weights)
    dtype = next(iter(weights.values())).dtype  # training keeps the weights' precision
    if examples.x.is_floating_point() and examples.x.dtype != dtype:
        raise SystemExit(f"{{args.data}}: x is {{examples.x.dtype}}, weights {{dtype}}")
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
            x, lengths, y = examples.batch(index)
            x, y = x.to(device) if cuda else x, y.to(device) if cuda else y
            out = ddp(x, lengths) if TAKES_LENGTHS else ddp(x)
            loss = loss_of(out, y, lengths)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += torch.tensor([loss.item() * len(index), len(index)], device=device)
        dist.all_reduce(total)
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
