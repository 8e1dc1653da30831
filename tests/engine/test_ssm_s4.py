"""engine.ssm.s4 and engine.ssm.hippo: discretization, the recurrent view equals the convolution view (as the
Annotated S4's test_cnn_is_rnn), the HiPPO-LegS matrix, HiPPO as a memory of the past, and typed errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.ssm.errors import SSMError
from engine.ssm.hippo import hippo_legs, hippo_memory, legendre, make_hippo
from engine.ssm.s4 import (
    ContinuousSSM,
    causal_conv,
    causal_conv_fft,
    cnn_vs_rnn,
    discretize,
    random_ssm,
    scan_recurrent,
    ssm_kernel,
)


def _annotated_make_hippo(N):
    """The Annotated S4's make_HiPPO, verbatim (numpy)."""
    P = np.sqrt(1 + 2 * np.arange(N))
    A = P[:, np.newaxis] * P[np.newaxis, :]
    A = np.tril(A) - np.diag(np.arange(N))
    return -A


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_cnn_is_rnn(method, dtype, tol):
    r = cnn_vs_rnn(length=16, method=method, dtype=dtype)  # N=4, L=16, Δ=1/L as in the Annotated S4
    assert r.N == 4 and r.length == 16 and r.step == 1 / 16
    assert r.max_diff_conv <= tol and r.max_diff_fft <= tol
    assert max(abs(v) for v in r.y_recurrent) > 0.1  # not a trivially zero output


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_cnn_is_rnn_hippo_long(method):
    A, B = hippo_legs(16)
    ssm = ContinuousSSM(A=A, B=B, C=torch.ones(1, 16, dtype=torch.float64), D=0.5)
    r = cnn_vs_rnn(ssm, length=256, step=0.01, method=method)
    assert r.max_diff <= 1e-10


def test_scalar_discretizations_match_closed_forms():
    ssm = ContinuousSSM(
        A=torch.tensor([[-1.0]], dtype=torch.float64),
        B=torch.ones(1, 1, dtype=torch.float64),
        C=torch.ones(1, 1, dtype=torch.float64),
    )
    step = 0.3
    z = discretize(ssm, step, "zoh")
    assert float(z.Ab) == pytest.approx(math.exp(-step), abs=1e-14)
    assert float(z.Bb) == pytest.approx(1 - math.exp(-step), abs=1e-14)
    b = discretize(ssm, step, "bilinear")
    assert float(b.Ab) == pytest.approx((1 - step / 2) / (1 + step / 2), abs=1e-14)
    assert float(b.Bb) == pytest.approx(step / (1 + step / 2), abs=1e-14)


def test_kernel_is_the_impulse_response():
    d = discretize(random_ssm(4, seed=1), 0.1, "zoh")
    impulse = torch.zeros(10, dtype=torch.float64)
    impulse[0] = 1.0
    y, states = scan_recurrent(d, impulse)
    assert states.shape == (10, 4)
    assert torch.allclose(y, ssm_kernel(d, 10), atol=1e-14)
    u = torch.linspace(-1, 1, 10, dtype=torch.float64)
    assert torch.allclose(causal_conv(u, ssm_kernel(d, 10)), causal_conv_fft(u, ssm_kernel(d, 10)), atol=1e-12)


@pytest.mark.parametrize("N", [1, 2, 5, 16])
def test_make_hippo_is_the_annotated_s4_formula(N):
    A = make_hippo(N)
    assert np.array_equal(A.numpy(), _annotated_make_hippo(N))
    for n in range(N):  # the closed form, entry by entry
        for k in range(N):
            want = -math.sqrt(2 * n + 1) * math.sqrt(2 * k + 1) if n > k else (-(n + 1) if n == k else 0.0)
            assert float(A[n, k]) == pytest.approx(want, abs=1e-12)


def test_hippo_is_stable_and_b_is_sqrt():
    A, B = hippo_legs(8)
    assert torch.allclose(torch.linalg.eigvals(A).real.sort().values, -torch.arange(8, 0, -1, dtype=torch.float64))
    assert torch.allclose(B[:, 0] ** 2, 1 + 2 * torch.arange(8, dtype=torch.float64))


def test_legendre_polynomials():
    s = torch.linspace(-1, 1, 5, dtype=torch.float64)
    P = legendre(4, s)
    assert torch.allclose(P[2], (3 * s**2 - 1) / 2) and torch.allclose(P[3], (5 * s**3 - 3 * s) / 2)


def test_hippo_memory_reconstructs_the_past():
    m = hippo_memory(N=32, length=400, signal="sine", read_fractions=(0.5, 1.0))
    assert len(m.t) == len(m.signal) == len(m.state_norms) == 400
    assert m.read_times == [0.5, 1.0]
    assert [len(r) for r in m.reconstructions] == [200, 400]
    assert max(m.errors) < 0.05  # a smooth signal: 32 Legendre coefficients remember it well
    few = hippo_memory(N=4, length=400, signal="sine", read_fractions=(1.0,))
    assert few.errors[0] > 5 * m.errors[-1]  # fewer coefficients, a blurrier memory


def test_hippo_memory_custom_signal():
    u = torch.linspace(0, 1, 100, dtype=torch.float64)
    m = hippo_memory(N=8, length=100, signal=u, read_fractions=(1.0,))
    assert m.signal_name == "custom" and m.errors[0] < 0.01  # a straight line needs only P_0 and P_1


def _ssm(A):
    n = A.shape[0]
    return ContinuousSSM(A=A, B=torch.ones(n, 1, dtype=A.dtype), C=torch.ones(1, n, dtype=A.dtype))


def test_bad_inputs_are_typed_errors():
    good = random_ssm(4)
    d = discretize(good, 0.1)
    with pytest.raises(SSMError) as e:
        scan_recurrent(d, torch.tensor([0.0, float("nan")], dtype=torch.float64))
    assert e.value.code == "ssm.not_finite"
    with pytest.raises(SSMError) as e:
        _ssm(torch.tensor([[0.5]], dtype=torch.float64))
    assert e.value.code == "ssm.unstable_a"
    with pytest.raises(SSMError) as e:
        _ssm(torch.tensor([[float("nan")]], dtype=torch.float64))
    assert e.value.code == "ssm.not_finite"
    for step in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(SSMError) as e:
            discretize(good, step)
        assert e.value.code == "ssm.bad_step"
    with pytest.raises(SSMError) as e:
        discretize(_ssm(make_hippo(8)), 1e6, "bilinear")
    assert e.value.code == "ssm.step_too_large" and e.value.fmt["limit_matrix"] == "-I"
    with pytest.raises(SSMError) as e:
        discretize(good, 0.1, "euler")
    assert e.value.code == "input.unknown_choice"
    with pytest.raises(SSMError) as e:
        cnn_vs_rnn(length=10**6)
    assert e.value.code == "ssm.length_too_long"
    with pytest.raises(SSMError) as e:
        make_hippo(10**5)
    assert e.value.code == "ssm.bad_dimension"
    with pytest.raises(SSMError) as e:
        hippo_memory(signal="square")
    assert e.value.code == "input.unknown_choice"
    with pytest.raises(SSMError) as e:
        hippo_memory(length=10**7)
    assert e.value.code == "ssm.length_too_long"
