"""Importers: models written elsewhere -> ``SpecChain``.

``specchain.importers.torch.from_torch(module, example_inputs)`` reads a PyTorch ``nn.Module``.
The subpackage is not imported here, so ``import specchain`` never needs torch.
"""
