"""engine.alignment.sft: the chat template and loss mask match TRL's SFTTrainer; SFT with LoRA runs."""

from __future__ import annotations

import pytest
import torch

from engine.alignment.report import template_view
from engine.alignment.sft import (
    SFTSettings,
    as_conversations,
    chat_template_view,
    load_instructions,
    train_sft,
    whole_characters,
)
from engine.models.loading import load_tokenizer


@pytest.fixture(scope="module")
def chat_tokenizer():
    return load_tokenizer("chat")


def tiny_llama(vocab: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=vocab,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=256,
        )
    )


def test_instructions_asset_is_bilingual():
    rows = load_instructions()
    assert len(rows) == 40
    assert {r["lang"] for r in rows} == {"ko", "en"} and sum(r["lang"] == "ko" for r in rows) == 20


def test_template_view_marks_only_the_answer(chat_tokenizer):
    text, tokens = chat_template_view(chat_tokenizer, "대한민국의 수도는?", "서울입니다.")
    assert "<|im_start|>user" in text and "<|im_start|>assistant" in text
    trained = [t for t in tokens if t.trained]
    prompt = [t for t in tokens if not t.trained]
    assert prompt and trained and all(not a.trained for a in tokens[: len(prompt)])  # prompt first, then answer
    answer = chat_tokenizer.decode([t.token_id for t in trained])
    assert "서울입니다." in answer and "<|im_end|>" in answer  # the end-of-turn token is learned too
    assert "대한민국" not in answer
    with pytest.raises(ValueError):
        chat_template_view(chat_tokenizer, " ", "x")


def test_template_view_groups_byte_pieces_into_korean_characters(chat_tokenizer):
    view = template_view(chat_tokenizer, "대한민국의 수도는?", "서울입니다.")
    texts = [g.text for g in view.groups]
    assert all("\ufffd" not in x for x in texts)
    assert {"대", "한", "민", "국", "서", "울"} <= {x.strip() for x in texts}  # each syllable whole, not 2-3 `�`
    assert [i for g in view.groups for i in g.ids] == [x.token_id for x in view.tokens]  # every token once, in order
    assert sum(len(g.ids) for g in view.groups if g.trained) == view.trained
    seoul = next(g for g in view.groups if g.text.strip() == "서")
    assert seoul.trained and seoul.hex.endswith("EC 84 9C") and len(seoul.ids) > 1  # its raw UTF-8 bytes
    assert next(g for g in view.groups if g.text == "<|im_start|>").hex == ""  # a whole token has no byte column


def test_an_answer_cut_inside_a_character_ends_with_an_ellipsis():
    assert whole_characters("서울입\ufffd") == "서울입…"
    assert whole_characters("서울입니다.") == "서울입니다."


def test_template_view_matches_trl_sft_labels(chat_tokenizer, tmp_path):
    """Our picture of the loss mask is exactly the labels TRL's SFTTrainer trains on."""
    from trl import SFTConfig, SFTTrainer

    rows = load_instructions()[::8]  # 5 pairs, Korean and English
    args = SFTConfig(
        output_dir=str(tmp_path),
        max_steps=1,
        report_to="none",
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        max_length=None,
    )
    trainer = SFTTrainer(
        model=tiny_llama(len(chat_tokenizer)),
        args=args,
        train_dataset=as_conversations(rows),
        processing_class=chat_tokenizer,
    )
    for row, example in zip(rows, trainer.train_dataset, strict=True):
        _, tokens = chat_template_view(chat_tokenizer, row["instruction"], row["response"])
        assert [t.token_id for t in tokens] == list(example["input_ids"])
        assert [t.token_id if t.trained else -100 for t in tokens] == list(example["labels"])


def test_sft_with_lora_on_a_tiny_model(chat_tokenizer):
    rows_seen = []
    res = train_sft(
        tiny_llama(len(chat_tokenizer)),
        chat_tokenizer,
        load_instructions()[:6],
        SFTSettings(steps=2, batch=2, max_length=64),
        probe=("Hi",),
        on_row=rows_seen.append,
    )
    assert res.log.status == "finished" and [r["step"] for r in res.log.train_rows()] == [1, 2]
    assert rows_seen == res.log.rows
    assert 0 < res.trainable_params < res.total_params / 10  # LoRA: a small share of the weights
    assert set(res.before) == set(res.after) == {"Hi"}


def test_sft_refuses_bad_settings(chat_tokenizer):
    with pytest.raises(ValueError, match="steps"):
        train_sft(tiny_llama(len(chat_tokenizer)), chat_tokenizer, settings=SFTSettings(steps=0))
    with pytest.raises(ValueError, match="no instruction pairs"):
        train_sft(tiny_llama(len(chat_tokenizer)), chat_tokenizer, rows=[], settings=SFTSettings(steps=1))


@pytest.mark.slow
def test_sft_lora_on_the_real_chat_model_lowers_the_loss():
    from engine.alignment.sft import train_sft_chat

    res = train_sft_chat(
        SFTSettings(steps=6, batch=2, lr=2e-3, max_length=64),
        rows=load_instructions()[:4],
        probe=("What is the capital of France?",),
    )
    losses = [r["loss"] for r in res.log.train_rows()]
    assert res.log.status == "finished" and len(losses) == 6
    assert min(losses[-2:]) < losses[0]
    assert res.trainable_params / res.total_params < 0.01
