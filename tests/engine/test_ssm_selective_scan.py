"""engine.ssm.selective_scan: the parallel associative scan equals the sequential loop (outputs and gradients),
the combine rule, the selective-copying demonstration, and typed errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.ssm.errors import SSMError
from engine.ssm.selective_scan import (
    scan_combine,
    selective_copy_demo,
    selective_scan,
    selective_scan_parallel,
    selective_scan_sequential,
)


def _inputs(dtype, b=2, length=37, d=5, n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, length, d, generator=g, dtype=dtype)
    delta = F.softplus(torch.randn(b, length, d, generator=g, dtype=dtype))
    A = -torch.rand(d, n, generator=g, dtype=dtype) - 0.1
    Bm = torch.randn(b, length, n, generator=g, dtype=dtype)
    Cm = torch.randn(b, length, n, generator=g, dtype=dtype)
    Dk = torch.randn(d, generator=g, dtype=dtype)
    z = torch.randn(b, length, d, generator=g, dtype=dtype)
    return x, delta, A, Bm, Cm, Dk, z


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-4)])
@pytest.mark.parametrize("length", [1, 2, 37, 64])
def test_parallel_equals_sequential(dtype, tol, length):
    args = _inputs(dtype, length=length)
    ys = selective_scan_sequential(*args)
    yp = selective_scan_parallel(*args)
    assert ys.shape == (2, length, 5)
    assert float((ys - yp).abs().max()) <= tol


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_parallel_equals_sequential_gradients(dtype, tol):
    base = _inputs(dtype)
    w = torch.randn(2, 37, 5, generator=torch.Generator().manual_seed(9), dtype=dtype)
    grads = []
    for fn in (selective_scan_sequential, selective_scan_parallel):
        args = [t.clone().requires_grad_(True) for t in base]
        (fn(*args) * w).sum().backward()
        grads.append([a.grad for a in args])
    for gs, gp in zip(*grads, strict=True):
        assert float((gs - gp).abs().max()) <= tol


def test_start_state_and_last_state():
    x, delta, A, Bm, Cm, Dk, z = _inputs(torch.float64)
    # run the whole sequence, or the first half then the second half from the carried state: the same
    y_all, h_all = selective_scan_sequential(x, delta, A, Bm, Cm, Dk, z, return_state=True)
    y1, h1 = selective_scan_parallel(
        x[:, :20], delta[:, :20], A, Bm[:, :20], Cm[:, :20], Dk, z[:, :20], return_state=True
    )
    y2, h2 = selective_scan_parallel(
        x[:, 20:], delta[:, 20:], A, Bm[:, 20:], Cm[:, 20:], Dk, z[:, 20:], h0=h1, return_state=True
    )
    assert torch.allclose(torch.cat([y1, y2], 1), y_all, atol=1e-12)
    assert torch.allclose(h2, h_all, atol=1e-12) and h_all.shape == (2, 5, 3)


def test_combine_is_associative_not_commutative():
    g = torch.Generator().manual_seed(1)
    p, q, r = [
        (torch.rand(3, generator=g, dtype=torch.float64), torch.randn(3, generator=g, dtype=torch.float64))
        for _ in range(3)
    ]
    left = scan_combine(scan_combine(p, q), r)
    right = scan_combine(p, scan_combine(q, r))
    assert all(torch.allclose(a, b, atol=1e-15) for a, b in zip(left, right, strict=True))
    assert not torch.allclose(scan_combine(p, q)[1], scan_combine(q, p)[1])
    # (a, b) applied to h: a*h + b; composing two steps is one step with the combined pair
    h = torch.randn(3, generator=g, dtype=torch.float64)
    a, b = scan_combine(p, q)
    assert torch.allclose(q[0] * (p[0] * h + p[1]) + q[1], a * h + b)


def test_selective_copy_demo():
    d = selective_copy_demo(length=16, positions=(2, 9), value=1.0)
    assert len(d.inputs) == 2 and set(d.lti_kernels) == {"leaky", "sum"}
    assert [m.index(1) for m in d.markers] == [2, 9]
    # no fixed kernel gets both inputs right: it weighs tokens by position, or adds the noise in
    for name, outs in d.lti_outputs.items():
        assert max(abs(y - 1.0) for y in outs) > 0.1, name
    # the selective scan writes on content and keeps its state on noise: the value, wherever it was
    assert d.selective_outputs == pytest.approx([1.0, 1.0], abs=1e-4)
    assert d.as_dict()["positions"] == [2, 9]


def test_bad_inputs_are_typed_errors():
    x, delta, A, Bm, Cm, _, _ = _inputs(torch.float64)
    bad = x.clone()
    bad[0, 3, 1] = float("nan")
    with pytest.raises(SSMError) as e:
        selective_scan(bad, delta, A, Bm, Cm)
    assert e.value.code == "ssm.not_finite"
    with pytest.raises(SSMError) as e:
        selective_scan(x, delta * float("inf"), A, Bm, Cm)
    assert e.value.code == "ssm.not_finite"
    with pytest.raises(SSMError) as e:
        selective_scan(x, delta * 1e6, A, Bm, Cm)  # a huge Δ
    assert e.value.code == "ssm.step_too_large"
    with pytest.raises(SSMError) as e:
        selective_scan(x, -delta, A, Bm, Cm)
    assert e.value.code == "ssm.bad_step"
    with pytest.raises(SSMError) as e:
        selective_scan(x, delta, -A, Bm, Cm)
    assert e.value.code == "ssm.unstable_a"
    with pytest.raises(SSMError) as e:
        selective_scan(x, delta, A, Bm, Cm, mode="fast")
    assert e.value.code == "input.unknown_choice"
    long = torch.zeros(1, 8193, 1, dtype=torch.float64)
    with pytest.raises(SSMError) as e:
        selective_scan(long, long, -torch.ones(1, 1, dtype=torch.float64), long, long)
    assert e.value.code == "ssm.length_too_long"
    for kwargs, code in (
        ({"length": 10**6}, "ssm.length_out_of_range"),
        ({"positions": (2, 99)}, "ssm.position_out_of_range"),
        ({"value": float("nan")}, "ssm.not_finite"),
    ):
        with pytest.raises(SSMError) as e:
            selective_copy_demo(**kwargs)
        assert e.value.code == code
