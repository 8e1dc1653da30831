"""engine.text2sql.finetune: the loss is on the SQL only, LoRA SFT runs and stops cleanly, prompts are schema-linked,
generation and scoring use the real Chinook database and the real chat model."""

from __future__ import annotations

import pytest
import torch

from engine.core.textinput import InputError
from engine.text2sql.finetune import (
    FinetuneSettings,
    accuracy,
    as_dataset,
    generate_sql,
    generate_sqls,
    linked_ddl,
    load_tuned,
    score,
    tables_in,
    train_lora,
)

DDL = (
    "CREATE TABLE Artist (\n  ArtistId INTEGER PRIMARY KEY,\n  Name NVARCHAR(120)\n);\n\n"
    "CREATE TABLE Album (\n  AlbumId INTEGER PRIMARY KEY,\n  Title NVARCHAR(160) NOT NULL,\n"
    "  ArtistId INTEGER NOT NULL\n);"
)
PAIRS = [
    (DDL, "아티스트는 몇 명인가요?", "SELECT count(*) FROM Artist"),
    (DDL, "앨범 제목을 모두 보여주세요.", "SELECT Title FROM Album"),
    (DDL, "아티스트 이름을 가나다순으로 보여주세요.", "SELECT Name FROM Artist ORDER BY Name"),
    (
        DDL,
        "앨범이 가장 많은 아티스트의 이름은?",
        "SELECT T1.Name FROM Artist AS T1 JOIN Album AS T2 ON "
        "T1.ArtistId = T2.ArtistId GROUP BY T1.ArtistId ORDER BY count(*) DESC LIMIT 1",
    ),
]


@pytest.fixture(scope="module")
def chat_tokenizer():
    from engine.models.loading import load_tokenizer

    return load_tokenizer("chat")


@pytest.fixture(scope="module")
def db():
    from engine.text2sql.databases import chinook

    return chinook()


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
            max_position_embeddings=1024,
        )
    )


def trained_text(trainer, tokenizer, i: int) -> str:
    """The tokens of example i that carry a loss (label != -100), decoded."""
    collated = trainer.data_collator([trainer.train_dataset[i]])
    labels = collated["labels"][0]
    return tokenizer.decode(labels[labels != -100])


@pytest.mark.parametrize("chat", [True, False])
def test_only_the_sql_is_trained(chat_tokenizer, tmp_path, chat):
    """Chat format: the assistant turn (SQL + end of turn); plain format: the SQL + EOS. Never the DDL/question."""
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        output_dir=str(tmp_path),
        max_steps=1,
        report_to="none",
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        max_length=None,
        completion_only_loss=True,
    )
    trainer = SFTTrainer(
        model=tiny_llama(len(chat_tokenizer)),
        args=args,
        train_dataset=as_dataset(PAIRS, chat),
        processing_class=chat_tokenizer,
    )
    for i, (_, question, sql) in enumerate(PAIRS):
        text = trained_text(trainer, chat_tokenizer, i)
        assert text.strip().startswith(sql) and text.strip().endswith("<|im_end|>")  # it learns to stop, too
        assert question not in text and "CREATE TABLE" not in text and "### SQL" not in text
        full = chat_tokenizer.decode(trainer.train_dataset[i]["input_ids"])
        assert ("<|im_start|>user" in full) == chat and question in full and "### DDL:" in full


def test_lora_sft_runs_reports_each_step_and_stops_on_request(chat_tokenizer):
    rows = []
    res = train_lora(
        PAIRS,
        FinetuneSettings(steps=2, batch=2, max_length=256),
        on_row=rows.append,
        model=tiny_llama(len(chat_tokenizer)),
        tokenizer=chat_tokenizer,
    )
    assert res.log.status == "finished" and len(res.losses) == 2 and rows == res.log.rows
    assert all(r["loss"] > 0 and "token_accuracy" in r for r in rows)
    assert 0 < res.trainable < res.total / 10 and res.chat and res.examples == 4
    stopped = train_lora(
        PAIRS,
        FinetuneSettings(steps=5, batch=2, max_length=256),
        should_stop=lambda: True,
        model=tiny_llama(len(chat_tokenizer)),
        tokenizer=chat_tokenizer,
    )
    assert stopped.log.status == "cancelled" and len(stopped.losses) == 1  # the finished step is kept


@pytest.mark.parametrize(
    ("settings", "pairs", "code"),
    [
        (FinetuneSettings(steps=0), PAIRS, "text2sql.finetune.bad_steps"),
        (FinetuneSettings(role="gpt-4"), PAIRS, "text2sql.finetune.bad_role"),
        (FinetuneSettings(lr=float("nan")), PAIRS, "text2sql.finetune.bad_lr"),
        (FinetuneSettings(max_length=8), PAIRS, "text2sql.finetune.bad_max_length"),
        (FinetuneSettings(), [], "text2sql.finetune.no_pairs"),
        (FinetuneSettings(), [(DDL, "질문", " ")], "text2sql.finetune.bad_pair"),
    ],
)
def test_bad_settings_and_pairs_have_codes(settings, pairs, code):
    with pytest.raises(InputError) as info:
        train_lora(pairs, settings)
    assert info.value.code == code


def test_linked_ddl_shows_the_gold_tables_and_two_distractors(db):
    sql = "SELECT T1.Name FROM Artist AS T1 JOIN Album AS T2 ON T1.ArtistId = T2.ArtistId WHERE T2.Title = 'Track'"
    assert tables_in(sql, list(db.tables)) == ["Album", "Artist"]  # a literal that names a table does not count
    ddl = linked_ddl(db, sql)
    shown = [t for t in db.tables if f"CREATE TABLE {t} (" in ddl]
    assert {"Album", "Artist"} <= set(shown) and len(shown) == 4
    assert ddl == linked_ddl(db, sql)  # the same prompt every time for the same question
    assert linked_ddl(db, sql, distractors=0) == db.table_ddl(["Album", "Artist"])


def test_score_uses_execution_match_on_the_real_database(db):
    items = [
        ("a", "고객은 몇 명?", "SELECT count(*) FROM Customer", ""),
        ("b", "장르 이름", "SELECT Name FROM Genre ORDER BY Name", ""),
        ("c", "장르 이름", "SELECT Name FROM Genre ORDER BY Name", ""),
        ("d", "없는 열", "SELECT Name FROM Genre", ""),
    ]
    rows = score(
        db,
        items,
        [
            "SELECT COUNT(CustomerId) FROM Customer",
            "SELECT Name FROM Genre ORDER BY Name",
            "SELECT Name FROM Genre ORDER BY Name DESC",  # same rows, wrong order: the gold is ordered
            "SELECT GenreName FROM Genre",
        ],
    )
    assert [r.ex for r in rows] == [True, True, False, False]
    assert rows[3].error == "text2sql.exec.sql_error" and "GenreName" in rows[3].detail
    assert accuracy(rows) == 0.5


def test_generation_is_greedy_and_batched_like_one_by_one(chat_lm, db):
    """The real chat model: batched (left-padded) generation gives what one-at-a-time generation gives."""
    ddl = db.table_ddl(["Genre"])
    questions = ["How many genres are there?", "장르 이름을 모두 보여주세요."]
    one = [generate_sql(chat_lm.model, chat_lm.tokenizer, ddl, q, max_new_tokens=24) for q in questions]
    batched = generate_sqls(chat_lm.model, chat_lm.tokenizer, [(ddl, q) for q in questions], max_new_tokens=24)
    assert all(isinstance(s, str) for s in one) and one[0] == batched[0]  # the longest prompt has no padding


@pytest.mark.slow
def test_lora_on_the_real_chat_model_learns_and_round_trips(tmp_path):
    res = train_lora(
        PAIRS * 2, FinetuneSettings(steps=6, batch=2, lr=2e-3, max_length=256), save_dir=tmp_path / "adapter"
    )
    assert res.log.status == "finished" and min(res.losses[-2:]) < res.losses[0]
    assert res.trainable / res.total < 0.02
    size = (tmp_path / "adapter" / "adapter_model.safetensors").stat().st_size
    assert size < 5_000_000  # fp16 adapter: small enough to ship
    before = generate_sql(res.model, res.tokenizer, DDL, PAIRS[1][1], max_new_tokens=24)
    model, tokenizer = load_tuned("chat", tmp_path / "adapter")
    assert generate_sql(model, tokenizer, DDL, PAIRS[1][1], max_new_tokens=24) == before


def test_the_shipped_adapter_loads_and_answers_in_sql(db):
    """The adapter shipped for the page (assets/text2sql/adapters/chat/) turns the chat model into one that answers
    with an SQL statement (untuned, it answered none of the 60 test questions with SQL)."""
    from engine.text2sql.finetune import shipped_adapter

    if shipped_adapter("chat") is None:
        pytest.skip("no adapter shipped for chat")
    model, tokenizer = load_tuned("chat")
    sql = generate_sql(model, tokenizer, db.table_ddl(["Genre", "Track"]), "장르는 모두 몇 개인가요?", 48)
    assert sql.upper().startswith("SELECT") and " FROM " in sql.upper()
    with pytest.raises(InputError) as info:
        load_tuned("base-ko")
    assert info.value.code == "text2sql.finetune.no_adapter"
