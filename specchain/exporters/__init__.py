"""Exporters: ``pytorch`` (a standalone ``nn.Module`` file with its weights, and the check that it
matches the spec) and ``graphviz`` (DOT diagrams and their rendering)."""
