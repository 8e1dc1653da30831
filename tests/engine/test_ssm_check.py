"""engine.ssm.check and `python -m engine ssm-check`: the chapter's equalities in one JSON report."""

from __future__ import annotations

import argparse
import json

import pytest

from engine.commands import ssm as ssm_command
from engine.ssm.check import ssm_check

KEYS = (
    "conv_vs_recurrent_max_diff",
    "parallel_vs_sequential_max_diff",
    "vs_transformers_max_diff",
    "grad_vs_transformers_max_diff",
)


def _cli(argv: list[str]) -> int:
    """`python -m engine <argv>` with only this command registered (the full parser imports every chapter)."""
    parser = argparse.ArgumentParser(prog="python -m engine")
    ssm_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_float32_json(capsys):
    assert _cli(["ssm-check", "--dtype", "float32", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dtype"] == "float32" and report["tolerance"] == 1e-4 and report["passed"]
    for key in KEYS:
        assert 0 <= report[key] <= 1e-4, key
    assert report["details"]["mamba"]["hf_path"]["torch_fallback"]
    assert {d["defect"] for d in report["book_code"]["defects"]} == {1, 2, 3, 4}


def test_both_dtypes_float64_at_top():
    report = ssm_check()
    assert report["dtype"] == "float64" and report["passed"]
    for key in KEYS:
        assert report[key] <= 1e-10, key
        assert report["float32"][key] <= 1e-4, key
    mamba = report["details"]["mamba"]
    assert mamba["step_vs_forward_max_diff"] <= 1e-10 and mamba["model_parallel_vs_sequential_max_diff"] <= 1e-10
    assert 0 < mamba["pure_float64_vs_transformers_max_diff"] < 1e-5
    assert report["book_code"]["fixed_lm_vs_ours_max_diff"] <= 1e-10
    json.dumps(report)  # plain JSON


def test_unknown_dtype_is_a_typed_error():
    from engine.core import UserError

    with pytest.raises(UserError) as e:
        ssm_check("float16")
    assert e.value.code == "input.unknown_choice"


def test_cli_text_summary(capsys):
    assert _cli(["ssm-check", "--dtype", "float64"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("float64 (tolerance 1e-10): passed") and "defect 3" in out


def test_cli_is_discovered():
    """`python -m engine` registers every public module of engine.commands: ssm is one of them."""
    import pkgutil

    import engine.commands

    assert "ssm" in {m.name for m in pkgutil.iter_modules(engine.commands.__path__)}


def test_package_face_names_resolve():
    import engine.ssm

    mine = {"errors", "s4", "hippo", "selective_scan", "mamba", "book165", "check"}
    names = [n for n, where in engine.ssm._LAZY.items() if where.partition(":")[0] in mine]
    assert len(names) > 40
    for name in names:
        assert getattr(engine.ssm, name) is not None, name


def test_shipped_report():
    from engine.core.precomputed import load_precomputed

    shipped = load_precomputed("ch16_check")
    assert shipped is not None and shipped.command == "python -m engine ssm-check --save-precomputed"
    data = shipped.data
    assert data["passed"] and data["dtype"] == "float64" and data["float32"]["dtype"] == "float32"
    for key in KEYS:
        assert data[key] <= 1e-10 and data["float32"][key] <= 1e-4, key
