"""engine.training.memory.zero: the ZeRO paper's Figure 1 example (Ψ = 7.5B, N = 64, K = 12)."""

from __future__ import annotations

import pytest

from engine.training.memory.zero import max_params_that_fit, zero_per_gpu, zero_table


def test_paper_example():
    totals = [round(z.total / 1e9, 1) for z in zero_table(7_500_000_000, 64)]
    assert totals == [120.0, 31.4, 16.6, 1.9]


def test_stage_formulas():
    psi, n = 1_000_000, 8
    assert zero_per_gpu(psi, n, 0).as_dict()["total"] == 16 * psi
    assert zero_per_gpu(psi, n, 1).total == 2 * psi + 2 * psi + 12 * psi / n
    assert zero_per_gpu(psi, n, 2).total == 2 * psi + 14 * psi / n
    assert zero_per_gpu(psi, n, 3).total == 16 * psi / n
    assert zero_per_gpu(psi, 1, 3).total == zero_per_gpu(psi, 1, 0).total  # one GPU: nothing to split


def test_max_params_that_fit():
    # paper: with 1024 GPUs and 32 GB each, stage 3 fits model states of a 2T-parameter model
    assert max_params_that_fit(32e9, 1024, 3) == 2_048_000_000_000


@pytest.mark.parametrize(("params", "gpus", "stage"), [(0, 8, 1), (10, 0, 1), (10, 8, 4), (10**16, 8, 1)])
def test_bad_input(params, gpus, stage):
    with pytest.raises(ValueError):
        zero_per_gpu(params, gpus, stage)
