"""engine.ssm.book165: the book's 16.5 code with its four defects (each one's real error) and the fixed code, which
gives our MambaLM's numbers."""

from __future__ import annotations

import pytest
import torch

from engine.ssm.book165 import BOOK_CODE, DEFECTS, FIXED_CODE, FIXED_CODE_TORCH, einops_available, run_book_code


@pytest.fixture(scope="module")
def run64():
    return run_book_code(dtype=torch.float64)


def test_book_code_has_the_four_defects_and_no_imports():
    assert "import" not in BOOK_CODE
    for _, good, bad in DEFECTS.values():
        assert bad in BOOK_CODE and good in FIXED_CODE
    assert "\nreturn y\n" in BOOK_CODE  # 1: dedented
    assert "'b l d_in, b l n,\n b l d_in -> b l d_in n'" in BOOK_CODE  # 2: a pattern string broken across a line
    assert "(b, l, d_model) = u.shape" in BOOK_CODE and "(b, d_in, n)" in BOOK_CODE  # 3: d_in no longer defined
    assert "'d_state -> d_model d_state', d=d_inner" in BOOK_CODE  # 4: axis names that do not match
    compile(FIXED_CODE, "<fixed>", "exec")
    compile(FIXED_CODE_TORCH, "<fixed torch>", "exec")
    assert "einsum(" in FIXED_CODE and "rearrange(" not in FIXED_CODE_TORCH


def test_each_defect_raises_its_real_error(run64):
    assert run64.as_printed.stage == "compile" and run64.as_printed.error_type == "SyntaxError"
    by = {d.defect: d for d in run64.defects}
    assert (by[1].stage, by[1].error_type, by[1].error) == ("compile", "SyntaxError", "'return' outside function")
    assert by[2].stage == "compile" and by[2].error_type == "SyntaxError"
    assert by[2].error.startswith("unterminated string literal")
    assert (by[3].stage, by[3].error_type, by[3].error) == ("run", "NameError", "name 'd_in' is not defined")
    if einops_available():
        assert by[4].stage == "run" and by[4].error_type == "EinopsError"
    else:
        assert by[4].stage == "not run" and "einops" in by[4].note
    assert run64.einops_available == einops_available()


def test_fixed_code_equals_our_model(run64):
    assert run64.fixed_variant == ("einops" if einops_available() else "torch")
    assert run64.fixed_vs_ours_max_diff <= 1e-10
    assert run64.fixed_lm_vs_ours_max_diff <= 1e-10
    assert run64.a_log_max_diff == 0.0
    run32 = run_book_code(dtype=torch.float32)
    assert run32.fixed_vs_ours_max_diff <= 1e-4 and run32.fixed_lm_vs_ours_max_diff <= 1e-4
    d = run64.as_dict()
    assert d["dtype"] == "float64" and len(d["defects"]) == 4
