"""engine.ssm.mamba: our Mamba equals transformers' MambaModel / MambaForCausalLM (same random weights, seed 0),
forward and the gradients of every parameter, in float64 and float32; both scans; step() generation with a
constant-size state; loading weights; typed errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.models import ModelUnavailable
from engine.ssm.check import TINY, hf_path
from engine.ssm.errors import SSMError
from engine.ssm.mamba import (
    PRETRAINED,
    MambaLM,
    MambaSpec,
    from_transformers,
    load_pretrained,
    map_state_dict,
    to_transformers,
)

transformers = pytest.importorskip("transformers")


def _hf(dtype):
    from transformers import MambaForCausalLM

    torch.manual_seed(0)
    return MambaForCausalLM(MambaSpec(**TINY).to_hf_config()).to(dtype).eval()


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 64, (2, 20), generator=g), torch.randint(0, 64, (2, 20), generator=g)


def _forward_and_grads(hf, ours, ids, targets, scan):
    def loss(logits):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    hf.zero_grad()
    ours.zero_grad()
    h_hf = hf.backbone(ids, use_cache=False).last_hidden_state
    loss(hf.lm_head(h_hf)).backward()
    h = ours.backbone(ids, scan=scan)
    loss(ours.lm_head(h)).backward()
    ref = {k: p.grad for k, p in hf.named_parameters()}
    got = {k: p.grad for k, p in ours.named_parameters()}
    assert set(ref) == set(got) and all(g is not None for g in got.values())
    fwd = float((h - h_hf).detach().abs().max())
    grad = max(float((got[k] - ref[k]).abs().max()) for k in ref)
    scale = max(float(ref[k].abs().max()) for k in ref)
    return fwd, grad, scale


@pytest.mark.parametrize("scan", ["parallel", "sequential"])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_equals_transformers_forward_and_gradients(batch, scan, dtype, tol):
    hf = _hf(dtype)
    ours = from_transformers(hf, hf_casts=dtype == torch.float64)  # float64: copy transformers' float32 casts
    fwd, grad, scale = _forward_and_grads(hf, ours, *batch, scan)
    assert fwd <= tol and grad <= tol
    assert scale > 1e-3  # the gradients are not trivially zero


def test_pure_float64_differs_only_by_transformers_float32_casts(batch):
    hf = _hf(torch.float64)
    pure = from_transformers(hf)  # float64 everywhere
    with torch.no_grad():
        diff = float((pure.backbone(batch[0]) - hf.backbone(batch[0], use_cache=False).last_hidden_state).abs().max())
    assert 0 < diff < 1e-5  # the size of a float32 rounding, not a bug


def test_lm_logits_equal_mamba_for_causal_lm(batch):
    hf = _hf(torch.float32)
    ours = from_transformers(hf)
    with torch.no_grad():
        assert float((ours(batch[0]) - hf(batch[0], use_cache=False).logits).abs().max()) <= 1e-4


def test_transformers_runs_its_pure_pytorch_path():
    path = hf_path()
    assert path["torch_fallback"] and not path["mamba_ssm_installed"]
    assert path["scan_branch"] == "sequential loop"


def test_step_equals_forward_and_state_is_constant():
    torch.manual_seed(0)
    model = MambaLM(MambaSpec(**TINY)).double().eval()
    ids = torch.randint(0, 64, (3, 15), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = model(ids)
        logits, state = model.prefill(ids[:, :2])  # a prompt shorter than the conv kernel
        assert torch.allclose(logits, full[:, :2], atol=1e-12)
        sizes = {state.nbytes()}
        outs = [logits]
        for t in range(2, 15):
            lt, state = model.step(ids[:, t], state)
            outs.append(lt.unsqueeze(1))
            sizes.add(state.nbytes())
        stepped = torch.cat(outs, 1)
        fresh = model.init_state(3)
        first, _ = model.step(ids[:, 0], fresh)
    assert float((stepped - full).abs().max()) <= 1e-10
    assert float((first - full[:, 0]).abs().max()) <= 1e-10
    s = model.spec  # per layer: conv (B, d_inner, d_conv-1) + ssm (B, d_inner, d_state), float64
    assert sizes == {s.n_layer * 3 * s.d_inner * ((s.d_conv - 1) + s.d_state) * 8}


def test_generate_is_greedy_and_deterministic():
    torch.manual_seed(0)
    model = MambaLM(MambaSpec(vocab_size=32, d_model=16, n_layer=1, d_state=4)).eval()
    ids = torch.tensor([[1, 2, 3]])
    out = model.generate(ids, max_new_tokens=5)
    assert out.shape == (1, 8) and torch.equal(out[:, :3], ids)
    with torch.no_grad():  # each new token is the argmax of the full forward on the sequence so far
        for t in range(3, 8):
            assert int(model(out[:, :t])[0, -1].argmax()) == int(out[0, t])


def test_round_trip_and_other_key_names():
    torch.manual_seed(0)
    model = MambaLM(MambaSpec(vocab_size=50, d_model=16, n_layer=2, d_state=4, pad_vocab_size_multiple=8))
    assert model.backbone.embeddings.weight.shape[0] == 56  # padded rows
    ids = torch.randint(0, 50, (1, 9))
    with torch.no_grad():
        assert model(ids).shape == (1, 9, 50)  # logits over the real vocabulary
        hf = to_transformers(model)
        assert torch.allclose(hf(ids, use_cache=False).logits[..., :50], model(ids), atol=1e-5)
    # mamba_ssm / mamba-minimal name the embedding `embedding` and may omit the tied head
    sd = {k.replace("embeddings.", "embedding."): v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    assert "backbone.embeddings.weight" in map_state_dict(sd)
    other = MambaLM(model.spec)
    other.load_state_dict(sd)
    assert other.lm_head.weight is other.backbone.embeddings.weight
    with torch.no_grad():
        assert torch.equal(other(ids), model(ids))


def test_from_a_bare_mamba_model():
    from transformers import MambaModel

    torch.manual_seed(0)
    hf = MambaModel(MambaSpec(**TINY).to_hf_config()).eval()
    ours = from_transformers(hf)
    ids = torch.randint(0, 64, (2, 9))
    with torch.no_grad():
        assert float((ours.backbone(ids) - hf(ids, use_cache=False).last_hidden_state).abs().max()) <= 1e-4


def test_load_pretrained_from_a_local_folder(tmp_path):
    hf = _hf(torch.float32)
    hf.save_pretrained(tmp_path / "tiny-mamba")
    model = load_pretrained(str(tmp_path / "tiny-mamba"))
    ids = torch.randint(0, 64, (1, 7))
    with torch.no_grad():
        assert float((model(ids) - hf(ids, use_cache=False).logits).abs().max()) <= 1e-5


def test_load_pretrained_offline_is_a_typed_error_with_the_hub_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))  # nothing cached
    assert PRETRAINED == "state-spaces/mamba-130m-hf"
    with pytest.raises(ModelUnavailable) as e:
        load_pretrained(PRETRAINED, local_files_only=True)
    assert e.value.code == "ssm.pretrained_unavailable" and e.value.fmt["name"] == PRETRAINED
    cause = e.value.__cause__
    assert cause is not None and e.value.fmt["detail"] == f"{type(cause).__name__}: {cause}"
    with pytest.raises(ModelUnavailable):
        load_pretrained(str(tmp_path / "no-such-folder"))


def test_bad_inputs_are_typed_errors():
    torch.manual_seed(0)
    model = MambaLM(MambaSpec(vocab_size=16, d_model=8, n_layer=1, d_state=2))
    for ids, code in (
        (torch.tensor([[1, 16]]), "ssm.bad_token"),
        (torch.tensor([[-1, 2]]), "ssm.bad_token"),
        (torch.tensor([1, 2]), "ssm.bad_shape"),
        (torch.zeros(1, 10**4, dtype=torch.long), "ssm.length_too_long"),
    ):
        with pytest.raises(SSMError) as e:
            model(ids)
        assert e.value.code == code
    with pytest.raises(SSMError) as e:
        model(torch.tensor([[1, 2]]), scan="fast")
    assert e.value.code == "input.unknown_choice"
    with pytest.raises(SSMError) as e:
        model.step(torch.tensor([[1]]), model.init_state(1))
    assert e.value.code == "ssm.bad_shape"
    for kwargs in ({"d_model": 0}, {"n_layer": 10**6}, {"d_state": 1.5}, {"dt_rank": 0}):
        with pytest.raises(SSMError) as e:
            MambaSpec(vocab_size=16, **kwargs)
        assert e.value.code == "ssm.bad_dimension"
    with pytest.raises(SSMError) as e:
        MambaSpec(vocab_size=16, layer_norm_eps=float("nan"))
    assert e.value.code == "ssm.not_finite"
    with torch.no_grad():  # NaN weights (a diverged training run) reach the scan as NaN inputs: a typed error
        model.backbone.layers[0].mixer.in_proj.weight.fill_(float("nan"))
    with pytest.raises(SSMError) as e:
        model(torch.tensor([[1, 2]]))
    assert e.value.code == "ssm.not_finite"
