"""Generated datasets, seeded and time-major: the embedded Reber grammar, the adding problem and
the copy task (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016); and text helpers
(``specchain.data.text``: vocabularies, language-model chunks, padded batches)."""

from specchain.data import adding, copy, reber, text
from specchain.data.dataset import IGNORE_INDEX, SequenceData
from specchain.data.training_file import write_training_file

__all__ = [
    "IGNORE_INDEX",
    "SequenceData",
    "adding",
    "copy",
    "reber",
    "text",
    "write_training_file",
]
