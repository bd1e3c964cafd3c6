"""Exporters: ``graphviz`` (DOT diagrams and their rendering)."""
