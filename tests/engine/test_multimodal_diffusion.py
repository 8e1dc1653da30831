"""DDPM from scratch (engine.multimodal: schedules, ddpm, unet, fashion_ddpm) against closed forms.

`diffusers` is not installed (not in the lock), so the checks are the formulas themselves: the schedules' ᾱ_t,
the forward process composed step by step = the one-jump q(x_t | x_0), the posterior q(x_{t-1} | x_t, x_0) = Bayes'
rule for two Gaussians, the sampler's mean = the paper's μ_θ, and for 1-D Gaussian data (where the exact reverse
is known) the DDPM step with the optimal ε̂ has exactly the mean E[x_{t-1} | x_t]; with a point mass the sampler
lands exactly on it.
"""

from __future__ import annotations

import math

import pytest
import torch

from engine.core.progress import Cancelled
from engine.multimodal import (
    GenerationError,
    TinyUNet,
    ToyConfig,
    UNetConfig,
    compare_schedules,
    cosine_schedule,
    guided_eps,
    linear_schedule,
    make_schedule,
    p_step,
    posterior,
    predict_x0,
    q_sample,
    q_step,
    sample,
    toy_data,
    train_toy,
)
from engine.multimodal.fashion_ddpm import FashionRun, generate, load_fashion_unet, save_checkpoint


def test_linear_schedule_is_ho_et_al_at_1000_steps():
    s = linear_schedule(1000)
    assert float(s.betas[0]) == pytest.approx(1e-4, abs=1e-15)
    assert float(s.betas[-1]) == pytest.approx(0.02, abs=1e-15)
    # ᾱ_t = ∏ (1 − β_s), computed here with plain floats
    prod = 1.0
    for t in range(1000):
        prod *= 1.0 - (1e-4 + (0.02 - 1e-4) * t / 999)
        if t in (0, 99, 499, 999):
            assert float(s.alpha_bar[t]) == pytest.approx(prod, rel=1e-12)
    assert float(s.alpha_bar[-1]) == pytest.approx(4.0358e-5, rel=1e-3)  # the well-known ᾱ_T of DDPM
    assert float(s.alpha_bar_prev[0]) == 1.0


def test_linear_schedule_scales_for_fewer_steps():
    s = linear_schedule(100)
    assert float(s.betas[0]) == pytest.approx(1e-3, abs=1e-15)
    assert float(s.betas[-1]) == pytest.approx(0.2, abs=1e-15)


def test_cosine_schedule_closed_form():
    T, s0 = 200, 0.008
    s = cosine_schedule(T)

    def f(t):
        return math.cos((t / T + s0) / (1 + s0) * math.pi / 2) ** 2

    for t in (0, 50, 100, 150, 198):
        assert float(s.alpha_bar[t]) == pytest.approx(f(t + 1) / f(0), rel=1e-10)
    assert float(s.betas.max()) <= 0.999
    assert bool((s.alpha_bar[1:] < s.alpha_bar[:-1]).all())


def test_compare_schedules_linear_wastes_more_steps_on_noise():
    cmp = compare_schedules(1000)
    # linear: ᾱ < 0.01 from about t = 600 on; cosine only near the end
    assert cmp["linear"]["noise_only_from"] < cmp["cosine"]["noise_only_from"]
    assert len(cmp["cosine"]["alpha_bar"]) == 1000


def test_q_sample_is_the_formula():
    sch = make_schedule("cosine", 50)
    x0 = torch.tensor([[1.0, -2.0], [0.5, 0.0]], dtype=torch.float64)
    eps = torch.tensor([[0.3, 0.1], [-1.0, 2.0]], dtype=torch.float64)
    t = torch.tensor([3, 40])
    got = q_sample(x0, t, eps, sch)
    for i in range(2):
        ab = float(sch.alpha_bar[t[i]])
        want = math.sqrt(ab) * x0[i] + math.sqrt(1 - ab) * eps[i]
        assert torch.allclose(got[i], want, atol=1e-14)


def test_forward_steps_compose_to_the_one_jump_law():
    """x_t after t+1 single steps is linear in x_0 and the noises: coefficient of x_0 = √ᾱ_t, noise variance 1 − ᾱ_t."""
    sch = linear_schedule(100)
    t_end = 60
    one, zero = torch.ones(1, 1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)
    x = one
    for t in range(t_end + 1):
        x = q_step(x, torch.tensor([t]), zero, sch)
    assert float(x) == pytest.approx(math.sqrt(float(sch.alpha_bar[t_end])), rel=1e-12)
    var = 0.0
    for s in range(t_end + 1):  # the contribution of the noise drawn at step s
        x = zero
        for t in range(t_end + 1):
            x = q_step(x, torch.tensor([t]), one if t == s else zero, sch)
        var += float(x) ** 2
    assert var == pytest.approx(1 - float(sch.alpha_bar[t_end]), rel=1e-12)


@pytest.mark.parametrize("t", [1, 7, 30, 49])
def test_posterior_is_bayes_rule(t):
    """q(x_{t-1}|x_t,x_0) ∝ N(x_t; √α_t x_{t-1}, β_t) · N(x_{t-1}; √ᾱ_{t-1} x_0, 1 − ᾱ_{t-1})."""
    sch = make_schedule("linear", 50)
    a, b = float(sch.alphas[t]), float(sch.betas[t])
    abp = float(sch.alpha_bar_prev[t])
    x0, xt = 0.7, -1.3
    precision = a / b + 1 / (1 - abp)
    want_mean = (math.sqrt(a) * xt / b + math.sqrt(abp) * x0 / (1 - abp)) / precision
    mean, var = posterior(
        torch.tensor([[x0]], dtype=torch.float64), torch.tensor([[xt]], dtype=torch.float64), torch.tensor([t]), sch
    )
    assert float(mean) == pytest.approx(want_mean, rel=1e-12)
    assert float(var) == pytest.approx(1 / precision, rel=1e-12)


def test_posterior_at_the_first_step_is_x0():
    sch = make_schedule("cosine", 20)
    mean, var = posterior(
        torch.tensor([[0.25]], dtype=torch.float64), torch.tensor([[3.0]], dtype=torch.float64), torch.tensor([0]), sch
    )
    assert float(mean) == pytest.approx(0.25, abs=1e-14)
    assert float(var) == 0.0


def test_p_step_mean_is_the_papers_mu_theta():
    sch = make_schedule("linear", 100)
    xt = torch.tensor([[0.4, -0.9]], dtype=torch.float64)
    eps = torch.tensor([[1.1, 0.2]], dtype=torch.float64)
    t = 57
    a, b, ab = float(sch.alphas[t]), float(sch.betas[t]), float(sch.alpha_bar[t])
    want = (xt - b / math.sqrt(1 - ab) * eps) / math.sqrt(a)
    assert torch.allclose(p_step(xt, t, eps, sch, None), want, atol=1e-13)


def _optimal_eps(mu: float, var: float, sch):
    """E[ε | x_t] for 1-D data N(mu, var): x_t ~ N(√ᾱ mu, ᾱ var + 1 − ᾱ)."""

    def eps_fn(x, t):
        ab = sch.alpha_bar[t].to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
        return (1 - ab).sqrt() * (x - ab.sqrt() * mu) / (ab * var + 1 - ab)

    return eps_fn


@pytest.mark.parametrize("t", [1, 10, 35, 49])
def test_gaussian_data_ddpm_mean_is_the_exact_reverse_mean(t):
    mu, var = 1.5, 0.3**2
    sch = make_schedule("cosine", 50)
    xt = torch.tensor([[-2.0], [0.0], [0.7], [3.0]], dtype=torch.float64)
    eps = _optimal_eps(mu, var, sch)(xt, torch.full((4,), t))
    got = p_step(xt, t, eps, sch, None)
    # exact: (x_{t-1}, x_t) jointly Gaussian; Cov = √α_t v_{t-1}
    ab, abp, a = float(sch.alpha_bar[t]), float(sch.alpha_bar_prev[t]), float(sch.alphas[t])
    m_t, v_t = math.sqrt(ab) * mu, ab * var + 1 - ab
    m_p, v_p = math.sqrt(abp) * mu, abp * var + 1 - abp
    want = m_p + math.sqrt(a) * v_p / v_t * (xt - m_t)
    assert torch.allclose(got, want, atol=1e-12)


def test_point_mass_data_sampler_lands_exactly_on_it():
    mu = -0.75
    sch = make_schedule("linear", 40)
    gen = torch.Generator().manual_seed(3)

    def eps_fn(x, t):  # the optimal ε̂ for a point mass (var = 0); float64 for an exact answer
        return _optimal_eps(mu, 0.0, sch)(x.double(), t).to(x.dtype)

    traj = sample(eps_fn, (5, 1), sch, gen, keep=4)
    assert torch.allclose(traj.final.double(), torch.full((5, 1), mu, dtype=torch.float64), atol=1e-5)
    assert traj.steps == [39, 26, 13, 0, -1]
    assert len(traj.snapshots) == 5


def test_predict_x0_inverts_q_sample():
    sch = make_schedule("cosine", 30)
    x0 = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    eps = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t = torch.arange(6) * 5
    assert torch.allclose(predict_x0(q_sample(x0, t, eps, sch), t, eps, sch), x0, atol=1e-10)


def test_classifier_free_guidance_mixes_the_two_predictions():
    torch.manual_seed(0)
    net = TinyUNet(UNetConfig(channels=8, emb_dim=16, diffusion_steps=10)).eval()
    x = torch.randn(2, 1, 28, 28)
    t = torch.tensor([3, 7])
    y = torch.tensor([1, 4])
    null = torch.full_like(y, net.null_label)
    with torch.no_grad():
        cond, uncond = net(x, t, y), net(x, t, null)
        assert torch.allclose(guided_eps(net, y, net.null_label, 0.0)(x, t), uncond, atol=1e-6)
        assert torch.allclose(guided_eps(net, y, net.null_label, 1.0)(x, t), cond, atol=1e-6)
        assert torch.allclose(guided_eps(net, y, net.null_label, 3.0)(x, t), uncond + 3 * (cond - uncond), atol=1e-5)


def test_unet_shapes_and_size():
    net = TinyUNet(UNetConfig())
    out = net(torch.zeros(3, 1, 28, 28), torch.tensor([0, 5, 199]), torch.tensor([0, 9, 10]))
    assert out.shape == (3, 1, 28, 28)
    assert net.num_params() * 2 < 5_000_000  # float16 checkpoint under 5 MB


def test_toy_data_sets():
    gen = torch.Generator().manual_seed(0)
    for name in ("moons", "swiss_roll", "ring"):
        pts = toy_data(name, 500, gen)
        assert pts.shape == (500, 2)
        assert 0.3 < float(pts.std()) < 2.0
    ring = toy_data("ring", 1000, torch.Generator().manual_seed(1))
    assert float(ring.norm(dim=1).mean()) == pytest.approx(1.5, abs=0.02)


def test_train_toy_tiny_learns_and_logs_rows():
    cfg = ToyConfig(dataset="ring", steps=300, diffusion_steps=20, hidden=32, batch=128, samples=200, log_every=50)
    seen = []
    res = train_toy(cfg, on_row=seen.append)
    assert [r["step"] for r in res.rows] == [50, 100, 150, 200, 250, 300]
    assert seen == res.rows
    assert res.rows[-1]["loss_smooth"] < res.rows[0]["loss_smooth"]
    assert len(res.samples) == 200 and res.strip[-1]["t"] == -1
    assert res.status == "finished" and res.trained_steps == 300


def test_train_toy_stop_keeps_rows():
    cfg = ToyConfig(steps=100, diffusion_steps=10, hidden=16, batch=32, log_every=10)
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] >= 25

    with pytest.raises(Cancelled) as info:
        train_toy(cfg, should_stop=stop)
    assert [r["step"] for r in info.value.partial] == [10, 20]


@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({"dataset": "spiral"}, "input.unknown_choice"),
        ({"schedule": "quadratic"}, "input.unknown_choice"),
        ({"steps": 0}, "mmgen.bad_number"),
        ({"lr": float("nan")}, "mmgen.bad_number"),
        ({"diffusion_steps": 5000}, "mmgen.bad_number"),
    ],
)
def test_toy_config_refusals(kwargs, code):
    with pytest.raises(GenerationError) as info:
        train_toy(ToyConfig(**kwargs))
    assert info.value.code == code


def test_checkpoint_roundtrip_and_guidance_refusal(tmp_path):
    torch.manual_seed(0)
    cfg = UNetConfig(channels=8, emb_dim=16, diffusion_steps=10)
    net = TinyUNet(cfg).eval()
    train = {"schedule": "cosine"}
    path = save_checkpoint(
        FashionRun(train, [{"step": 1, "loss": 1.0}], 0.1, 1, "finished", net.num_params(), net), tmp_path / "u.pt"
    )
    loaded = load_fashion_unet(path)
    x = torch.randn(1, 1, 28, 28)
    t, y = torch.tensor([4]), torch.tensor([2])
    with torch.no_grad():
        assert torch.allclose(loaded.model(x, t, y), net(x, t, y), atol=5e-2)  # float16 weights
    out = generate(loaded, [0, 3], guidance=2.0, seed=0, keep=3)
    assert len(out["images"]) == 2 and len(out["images"][0]) == 28
    assert [s["t"] for s in out["strip"]] == [9, 4, 0, -1]
    with pytest.raises(GenerationError) as info:
        generate(loaded, [0], guidance=11.0)
    assert info.value.code == "mmgen.bad_number"
    with pytest.raises(GenerationError) as info:
        generate(loaded, [10])
    assert info.value.code == "mmgen.bad_number"
    with pytest.raises(GenerationError) as info:
        load_fashion_unet(tmp_path / "missing.pt")
    assert info.value.code == "mmgen.no_checkpoint"


def test_shipped_diffusion_assets():
    from engine.core.precomputed import load_precomputed
    from engine.multimodal.fashion_ddpm import checkpoint_path

    path = checkpoint_path()
    if not path.is_file():
        pytest.skip("no shipped UNet yet (python -m engine diffusion --dataset fashion --save-precomputed)")
    assert path.stat().st_size <= 5_000_000
    pre = load_precomputed("ch14_diffusion")
    assert pre is not None
    assert {"strip", "guidance", "rows"} <= set(pre.data)
    toy = load_precomputed("ch14_diffusion_toy")
    assert toy is not None and set(toy.data["compare"]["runs"]) == {"linear", "cosine"}


def test_fashion_images_at_14_are_2x2_means():
    import numpy as np

    from engine.multimodal.fashion_ddpm import to_model

    img = np.arange(28 * 28, dtype=np.uint8).reshape(1, 28, 28)
    small = to_model(img, 14)
    assert small.shape == (1, 1, 14, 14)
    block = img[0, :2, :2].astype(np.float64) / 127.5 - 1.0
    assert float(small[0, 0, 0, 0]) == pytest.approx(block.mean(), abs=1e-6)
    assert to_model(img).shape == (1, 1, 28, 28)
