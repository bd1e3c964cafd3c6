"""Where a spec trains: ``numpy`` (the reference, ``specchain.train``) or ``torch``
(``torch_engine``: the exported module, on any device torch supports)."""
