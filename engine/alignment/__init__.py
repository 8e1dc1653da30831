"""Chapter 4: making a model follow instructions and preferences.

- `sft`     supervised fine-tuning on instruction pairs (chat template, loss mask, TRL SFTTrainer + LoRA)
- `reward`  a reward model trained on preference pairs (TRL RewardTrainer) and best-of-n sampling with it
- `toy`     a tiny policy over a 20-word vocabulary, a proxy reward that can be gamed and a held-out judge
- `ppo`     PPO written out (TRL 1.16 has no PPO trainer); its clipped loss is tested equal to TRL's GRPO loss
- `dpo`     the DPO loss (tested equal to TRL's DPOTrainer) and a DPO run; TRL DPOTrainer + LoRA on `chat`
- `runs`    PPO vs DPO side by side, reward hacking without the KL penalty, the β sweep
- `report`  the runs with the page's settings, and their results as plain records to draw
- `shipped` every section's demo run once (assets/precomputed/ch04_*.json), so no section opens empty
"""

# The face: what pages and other areas use, and where it lives (imported on first use).
from engine.core.faces import lazy_face

_LAZY = {
    "ChatDPOSettings": "dpo",
    "METHODS": "runs",
    "RMSettings": "reward",
    "SFTSettings": "sft",
    "ToyConfig": "toy",
    "best_of_n": "reward",
    "chat_template_view": "sft",
    "eval_points": "report",
    "hacking_runs": "report",
    "hacking_verdict": "report",
    "last_examples": "report",
    "load_instructions": "sft",
    "load_preferences": "reward",
    "overall_status": "report",
    "parse_preferences": "reward",
    "preferences_text": "reward",
    "race_runs": "report",
    "reward_shown": "shipped",
    "runs_shown": "shipped",
    "runs_view": "shipped",
    "ranked_answers": "report",
    "run_table": "report",
    "sft_report": "report",
    "sft_shown": "shipped",
    "sweep_runs": "report",
    "template_view": "report",
    "toy_best_of_n": "report",
    "toy_reference": "report",
    "toy_setup": "toy",
    "train_dpo_chat_fresh": "dpo",
    "train_reward_model": "reward",
    "train_sft_chat": "sft",
}
__all__ = [
    "METHODS",
    "ChatDPOSettings",
    "RMSettings",
    "SFTSettings",
    "ToyConfig",
    "best_of_n",
    "chat_template_view",
    "eval_points",
    "hacking_runs",
    "hacking_verdict",
    "last_examples",
    "load_instructions",
    "load_preferences",
    "overall_status",
    "parse_preferences",
    "preferences_text",
    "race_runs",
    "ranked_answers",
    "reward_shown",
    "run_table",
    "runs_shown",
    "runs_view",
    "sft_report",
    "sft_shown",
    "sweep_runs",
    "template_view",
    "toy_best_of_n",
    "toy_reference",
    "toy_setup",
    "train_dpo_chat_fresh",
    "train_reward_model",
    "train_sft_chat",
]
__getattr__ = lazy_face(__name__, globals(), _LAZY)
