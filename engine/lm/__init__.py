"""Language models from the inside, chapters 1-2 (and the position methods of chapter 8).

- `tokenization`: four real tokenizers side by side, and what a text costs in tokens.
- `token_display`: tokens as a learner reads them (byte pieces grouped into characters, never `�`).
- `token_embeddings`, `positions`, `relative_positions`: token vectors, absolute and relative positions (RoPE, ALiBi).
- `attention`, `attention_lab`: attention from scratch, step by step (equal to torch SDPA), encoder/decoder masks.
- `attention_maps`: attention weights of a real model.
- `language_model`: next-token distributions and step-by-step generation on the packaged models.
- `scale`: the GPT scale story from published figures.
"""

# The face: what pages and other areas use, and where it lives (imported on first use).
from engine.core.faces import lazy_face

_LAZY = {
    "MASK_KINDS": "attention",
    "alibi_bias": "relative_positions",
    "alibi_slopes": "relative_positions",
    "alibi_view": "views",
    "alibi_weights_by_distance": "relative_positions",
    "appendable": "language_model",
    "attention_view": "views",
    "attention_walkthrough": "attention_lab",
    "choose_token": "language_model",
    "compare_tokenizers": "tokenization",
    "embedding_lookup": "token_embeddings",
    "flow_layer": "flow",
    "flow_pass": "flow",
    "generate_steps": "language_model",
    "group_tokens": "token_display",
    "gpt_scale": "scale",
    "learned_positions": "positions",
    "load_tokenizers": "tokenization",
    "logit_lens": "flow",
    "mask_pattern": "attention",
    "mlm_vs_clm_example": "attention",
    "model_attention": "attention_maps",
    "model_attentions": "attention_maps",
    "next_token_distribution": "language_model",
    "parallel_pairs": "views",
    "position_scaling_perplexity": "relative_positions",
    "position_view": "views",
    "readable_count": "scale",
    "relative_distance_similarity": "positions",
    "rope_angle_table": "relative_positions",
    "rope_relative_similarity": "positions",
    "rope_rotation_angles": "positions",
    "rope_unseen_pairs": "relative_positions",
    "rope_view": "views",
    "sinusoidal_positions": "positions",
    "steps_view": "language_model",
    "token_cost": "tokenization",
    "token_flow": "flow",
    "token_labels": "token_display",
}
__all__ = [
    "MASK_KINDS",
    "alibi_bias",
    "alibi_slopes",
    "alibi_view",
    "alibi_weights_by_distance",
    "appendable",
    "attention_view",
    "attention_walkthrough",
    "choose_token",
    "compare_tokenizers",
    "embedding_lookup",
    "flow_layer",
    "flow_pass",
    "generate_steps",
    "gpt_scale",
    "group_tokens",
    "learned_positions",
    "load_tokenizers",
    "logit_lens",
    "mask_pattern",
    "mlm_vs_clm_example",
    "model_attention",
    "model_attentions",
    "next_token_distribution",
    "parallel_pairs",
    "position_scaling_perplexity",
    "position_view",
    "readable_count",
    "relative_distance_similarity",
    "rope_angle_table",
    "rope_relative_similarity",
    "rope_rotation_angles",
    "rope_unseen_pairs",
    "rope_view",
    "sinusoidal_positions",
    "steps_view",
    "token_cost",
    "token_flow",
    "token_labels",
]
__getattr__ = lazy_face(__name__, globals(), _LAZY)
