"""The capstone end to end on a tiny random Llama (with SmolLM2's real tokenizer, so llama.cpp's converter knows it):
LoRA SFT, merge, llama.cpp's convert_hf_to_gguf.py, llama_model_quantize, llama.cpp answers, the FastAPI app and the
CLI contract. Behaviour only: a random model's answers are gibberish, its files and steps are not."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from engine.capstone import read_qa_csv
from engine.capstone.gguf_export import ToolMissing, converter_script, extract_converter, locked_sdist_hash
from engine.capstone.sft import SftConfig, encode_pair, merge_and_save, train_lora
from engine.core.assets import ROOT


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from engine.models.loading import load_tokenizer

    tok = load_tokenizer("chat")
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    path = tmp_path_factory.mktemp("tiny-chat")
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_labels_mask_the_prompt():
    from engine.models.loading import load_tokenizer

    tok = load_tokenizer("chat")
    pair = read_qa_csv("sample").train[0]
    ids, labels = encode_pair(tok, pair)
    assert len(ids) == len(labels)
    answer_part = [t for t in labels if t != -100]
    first = labels.index(answer_part[0])
    assert all(t == -100 for t in labels[:first])  # the system prompt and question carry no loss
    assert tok.decode(answer_part).startswith(pair.answer)
    assert ids[first:] == answer_part


def test_lora_trains_and_merges(tiny_base, tmp_path):
    import torch

    qa = read_qa_csv("sample")
    model, tok, res = train_lora(tiny_base, qa.train[:16], SftConfig(epochs=2, batch_size=8, lr=5e-3))
    assert res.steps == res.planned_steps == 4 and len(res.losses) == 4
    assert res.losses[-1] < res.losses[0]  # the adapters learn
    assert 0 < res.trainable < res.total
    ids = torch.tensor([encode_pair(tok, qa.train[0])[0]])
    with torch.no_grad():
        adapted = model(input_ids=ids).logits
    out = merge_and_save(model, tok, tmp_path / "merged", dtype="float32")
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    with torch.no_grad():
        again = merged(input_ids=ids).logits
    assert torch.allclose(adapted, again, atol=1e-4)  # merging changes nothing the model computes


def test_cli_end_to_end(tiny_base, tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "engine",
        "capstone",
        "--csv",
        "sample",
        "--out",
        str(out),
        "--base",
        str(tiny_base),
        "--epochs",
        "1",
        "--max-steps",
        "2",
        "--max-heldout",
        "3",
        "--json",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    steps = [x["step"] for x in lines[:-1]]
    assert steps == ["read_csv", "baseline", "before", "train", "merge", "convert", "quantize", "after", "serve"]
    assert all(x["ok"] and x["seconds"] >= 0 for x in lines[:-1])
    final = lines[-1]
    for key in ("gguf_bytes", "fp32_bytes", "heldout_before", "heldout_after", "api_url"):
        assert key in final
    assert final["gguf_bytes"] == (out / "model.gguf").stat().st_size < final["f16_bytes"]
    assert final["api_url"].startswith("http://127.0.0.1:")
    for name in ("train.csv", "heldout.csv", "answers.csv", "adapter.zip", "summary.json", "model-f16.gguf"):
        assert (out / name).is_file(), name
    with open(out / "answers.csv", encoding="utf-8-sig") as f:
        assert len(f.read().splitlines()) == 4  # header + 3 held-out questions


def test_cli_bad_csv_is_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\x01binary")
    done = subprocess.run(
        [sys.executable, "-m", "engine", "capstone", "--csv", str(bad), "--out", str(tmp_path / "o"), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:") and "binary" in done.stderr
    assert "Traceback" not in done.stderr


def test_locked_hash_and_converter_installed():
    digest = locked_sdist_hash()
    assert digest and len(digest) == 64
    assert converter_script().name == "convert_hf_to_gguf.py"  # make install put it there


def test_extract_takes_only_the_converter(tmp_path):
    src = tmp_path / "src" / "llama_cpp_python-9.9.9" / "vendor" / "llama.cpp"
    (src / "conversion").mkdir(parents=True)
    (src / "convert_hf_to_gguf.py").write_text("print('hi')")
    (src / "conversion" / "__init__.py").write_text("")
    (src / "ggml.c").write_text("int main;")
    sdist = tmp_path / "x.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(tmp_path / "src" / "llama_cpp_python-9.9.9", arcname="llama_cpp_python-9.9.9")
    target = extract_converter(sdist, tmp_path / "out")
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == [
        "conversion",
        "conversion/__init__.py",
        "convert_hf_to_gguf.py",
    ]
    empty = tmp_path / "empty.tar.gz"
    with tarfile.open(empty, "w:gz") as tar:
        tar.add(src / "ggml.c", arcname="llama_cpp_python-9.9.9/vendor/llama.cpp/ggml.c")
    with pytest.raises(ToolMissing):
        extract_converter(empty, tmp_path / "out2")
    shutil.rmtree(tmp_path / "src")


def test_answer_loss_equals_the_models_loss(tiny_base):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engine.capstone.sft import answer_loss, batches

    tok = AutoTokenizer.from_pretrained(tiny_base)
    model = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
    batch = batches(tok, read_qa_csv("sample").train[:8], SftConfig(batch_size=8))[0]
    with torch.no_grad():
        assert answer_loss(model, batch).item() == pytest.approx(model(**batch).loss.item(), rel=1e-5)


@pytest.mark.slow  # ~25 s: a second pipeline run, the page's way
def test_page_run_keeps_only_the_4bit_file(tiny_base, tmp_path):
    from engine.capstone.pipeline import CapstoneConfig, Step, run_capstone

    cfg = CapstoneConfig(
        base=tiny_base, sft=SftConfig(epochs=1, max_steps=1), max_heldout=2, serve=False, keep_intermediate=False
    )
    items = list(run_capstone("sample", tmp_path, cfg))
    assert [i.step for i in items if isinstance(i, Step)][-1] == "after"
    assert items[-1]["api_url"] is None and items[-1]["f16_bytes"] > items[-1]["gguf_bytes"] > 0
    assert (tmp_path / "model.gguf").is_file()
    assert not (tmp_path / "merged").exists() and not (tmp_path / "model-f16.gguf").exists()
