"""engine.alignment.reward: preference data validation, the reward model (TRL RewardTrainer) and best-of-n."""

from __future__ import annotations

import json

import pytest
import torch

from engine.alignment.reward import (
    PreferenceError,
    RMSettings,
    best_of_n,
    load_preferences,
    parse_preferences,
    preferences_text,
    score_answers,
    train_reward_model,
    validate_preferences,
)


def test_shipped_preferences_are_valid_and_bilingual():
    rows = load_preferences()
    assert len(rows) == 30 and {r["lang"] for r in rows} == {"ko", "en"}
    assert all(r["chosen"] != r["rejected"] for r in rows)


def test_parse_round_trips_json_lines_and_accepts_yaml():
    rows = load_preferences()[:3]
    parsed = parse_preferences(preferences_text(rows))
    assert [(r["prompt"], r["chosen"], r["rejected"]) for r in parsed] == [
        (r["prompt"], r["chosen"], r["rejected"]) for r in rows
    ]
    yaml_text = "- {prompt: a, chosen: b, rejected: c}\n- {prompt: d, chosen: e, rejected: f}\n"
    assert len(parse_preferences(yaml_text)) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   \n  ", "empty"),
        ('{"prompt": "a", "chosen": "b", "rejected": "c"}\n{not json', "line 2"),
        ('{"prompt": "a", "chosen": "b"}\n{"prompt": "a", "chosen": "b", "rejected": "c"}', "'rejected' is missing"),
        ('{"prompt": "a", "chosen": "b", "rejected": "b"}\n{"prompt": "a", "chosen": "b", "rejected": "c"}', "same"),
        ('{"prompt": "a", "chosen": "b", "rejected": "c"}', "at least 2"),
        ("- just a string\n- another", "not an object"),
        ('{"prompt": "", "chosen": "b", "rejected": "c"}\n{"prompt": "a", "chosen": "b", "rejected": "c"}', "'prompt'"),
    ],
)
def test_malformed_preference_data_gets_a_clear_message(text, message):
    with pytest.raises(PreferenceError, match=message):
        parse_preferences(text)


def test_validate_limits():
    with pytest.raises(PreferenceError, match="list"):
        validate_preferences({"prompt": "a"})
    long = [{"prompt": "a", "chosen": "x" * 3000, "rejected": "c"}] * 2
    with pytest.raises(PreferenceError, match="longer"):
        validate_preferences(long)
    assert isinstance(PreferenceError("x"), ValueError)  # the pages' friendly_errors shows ValueErrors as messages
    json.dumps(load_preferences())  # plain data, nothing executable


def test_the_editor_text_lists_the_learners_language_first():
    rows = load_preferences()
    for lang in ("ko", "en"):
        parsed = parse_preferences(preferences_text(rows, lang))
        langs = [next(r["lang"] for r in rows if r["prompt"] == p["prompt"]) for p in parsed]
        assert langs == [lang] * 15 + [other for other in ("ko", "en") if other != lang] * 15
    assert preferences_text(rows) == preferences_text(rows, None)  # file order without a language


def _tiny_backbone():
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from engine.models.registry import resolve

    tok = AutoTokenizer.from_pretrained(str(resolve("embed").path))
    torch.manual_seed(0)
    sizes = {"hidden_size": 16, "num_hidden_layers": 6, "num_attention_heads": 2, "intermediate_size": 32}
    return BertForSequenceClassification(BertConfig(vocab_size=tok.vocab_size, num_labels=1, **sizes)), tok


def test_the_held_out_pairs_do_not_depend_on_the_order_of_the_text():
    pairs = load_preferences()[:10]
    settings = RMSettings(epochs=1, batch=4, max_length=48)
    a = train_reward_model(pairs, settings, backbone=_tiny_backbone())
    b = train_reward_model(pairs[::-1], settings, backbone=_tiny_backbone())
    assert [p["prompt"] for p in a.test_pairs] == [p["prompt"] for p in b.test_pairs]
    assert [r["loss"] for r in a.log.train_rows()] == [r["loss"] for r in b.log.train_rows()]


def test_reward_trainer_on_a_tiny_encoder():
    """The RewardTrainer path end to end, on a tiny randomly initialised BERT (the real backbone is slow-tested)."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from engine.models.registry import resolve

    tok = AutoTokenizer.from_pretrained(str(resolve("embed").path))
    torch.manual_seed(0)
    model = BertForSequenceClassification(
        BertConfig(
            vocab_size=tok.vocab_size,
            hidden_size=16,
            num_hidden_layers=6,
            num_attention_heads=2,
            intermediate_size=32,
            num_labels=1,
        )
    )
    res = train_reward_model(
        load_preferences()[:10], RMSettings(epochs=1, batch=4, max_length=48), backbone=(model, tok)
    )
    assert res.log.status == "finished" and len(res.log.train_rows()) == 2  # 8 training pairs / 4
    assert 0.0 <= res.train_accuracy <= 1.0 and len(res.test_pairs) == 2
    scores = score_answers(res.model, res.tokenizer, "What is 2+2?", ["4", "five"])
    assert len(scores) == 2 and all(isinstance(s, float) for s in scores)


@pytest.mark.slow
def test_reward_model_and_best_of_n_with_real_models(chat_lm):
    res = train_reward_model(settings=RMSettings(epochs=3))
    losses = [r["loss"] for r in res.log.train_rows()]
    assert res.log.status == "finished" and losses[-1] < losses[0]
    assert res.train_accuracy >= 0.8
    rows = best_of_n(
        chat_lm.model,
        chat_lm.tokenizer,
        res.model,
        res.tokenizer,
        "Give me one tip for sleeping well.",
        n=3,
        max_new_tokens=24,
    )
    assert [r["rank"] for r in rows] == [1, 2, 3] and rows[0]["best"]
    assert rows[0]["reward"] >= rows[1]["reward"] >= rows[2]["reward"]
