"""engine.training.memory.accounting: storages counted once (views, tied weights), parameters are not activations."""

from __future__ import annotations

import torch

from engine.training.memory.accounting import (
    ActivationMeter,
    CudaMeter,
    StorageCounter,
    gradient_bytes,
    optimizer_state_bytes,
    weight_bytes,
)


def test_views_share_one_storage():
    x = torch.zeros(10, 20)
    counter = StorageCounter()
    for t in (x, x.view(200), x.t(), x[2:5]):
        counter.add(t)
    assert counter.bytes == 10 * 20 * 4 and counter.tensors == 1


def test_tied_weights_counted_once():
    emb = torch.nn.Embedding(100, 8)
    head = torch.nn.Linear(8, 100, bias=False)
    head.weight = emb.weight
    model = torch.nn.ModuleDict({"emb": emb, "head": head})
    assert weight_bytes(model) == 100 * 8 * 4


def test_activation_meter_excludes_parameters_and_dedups():
    lin = torch.nn.Linear(16, 32, bias=False)
    x = torch.randn(4, 16, requires_grad=True)
    with ActivationMeter(lin) as meter:
        y = lin(x)  # saves x (and the weight, which is a parameter)
        z = (y * y).sum()  # saves y twice: one storage
    assert meter.bytes == x.numel() * 4 + y.numel() * 4
    z.backward()


def test_grads_and_adamw_states():
    lin = torch.nn.Linear(16, 32)
    opt = torch.optim.AdamW(lin.parameters())
    lin(torch.randn(3, 16)).sum().backward()
    n = 16 * 32 + 32
    assert gradient_bytes(lin) == n * 4
    opt.step()
    assert optimizer_state_bytes(opt) == 2 * n * 4 + 2 * 4  # exp_avg, exp_avg_sq, one fp32 step per tensor


def test_cuda_meter_is_inert_on_cpu():
    meter = CudaMeter(torch.device("cpu"))
    assert not meter.available and meter.allocated() is None and meter.peak() is None
    meter.reset()
