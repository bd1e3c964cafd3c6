"""specchain: recurrent neural networks as typed graphs of module specs."""

from specchain import callbacks, checkpoints, data, losses, models, optim, train
from specchain.chain import LintError, SpecChain, branch, parallel, serial
from specchain.engine import Tape
from specchain.gradcheck import GradcheckReport, gradcheck
from specchain.inputs import Input
from specchain.params import seed
from specchain.saving import ModelFileError, load
from specchain.spec import Context, NNModuleSpec
from specchain.state import StateDictError
from specchain.threads import get_num_threads, set_num_threads
from specchain.types import ANY, DimEnv, ShapeError, SpecError, TensorType, TupleType

__version__ = "0.1.0"

__all__ = [
    "ANY",
    "Context",
    "DimEnv",
    "GradcheckReport",
    "Input",
    "LintError",
    "ModelFileError",
    "NNModuleSpec",
    "ShapeError",
    "SpecChain",
    "SpecError",
    "StateDictError",
    "Tape",
    "TensorType",
    "TupleType",
    "__version__",
    "branch",
    "callbacks",
    "checkpoints",
    "data",
    "get_num_threads",
    "gradcheck",
    "load",
    "losses",
    "models",
    "optim",
    "parallel",
    "seed",
    "serial",
    "set_num_threads",
    "train",
]
