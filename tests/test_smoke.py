import numpy as np

import specchain as sc
from specchain.modules import Concat, Linear, Reverse


def test_bidirectional_shape_and_gradcheck(rng: np.random.Generator) -> None:
    model = sc.branch(Linear(8, 16), Reverse(axis=0) >> Linear(8, 16) >> Reverse()) >> Concat()
    model = model >> Linear(32, 4)
    assert str(model.in_type) == "[T, B, 8]" and str(model.out_type) == "[T, B, 4]"
    model.to(np.float64)
    report = sc.gradcheck(model, rng.standard_normal((5, 3, 8)))
    assert report.passed(1e-7), str(report)
