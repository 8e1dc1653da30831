"""Chapter 4: making a model follow instructions and preferences.

- `sft`     supervised fine-tuning on instruction pairs (chat template, loss mask, TRL SFTTrainer + LoRA)
- `reward`  a reward model trained on preference pairs (TRL RewardTrainer) and best-of-n sampling with it
- `toy`     a tiny policy over a 20-word vocabulary, a proxy reward that can be gamed and a held-out judge
- `ppo`     PPO written out (TRL 1.16 has no PPO trainer); its clipped loss is tested equal to TRL's GRPO loss
- `dpo`     the DPO loss (tested equal to TRL's DPOTrainer) and a DPO run; TRL DPOTrainer + LoRA on `chat`
- `runs`    PPO vs DPO side by side, reward hacking without the KL penalty, the β sweep
"""
