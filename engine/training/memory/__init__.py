"""Where training memory goes (chapter 5): weights, gradients, optimizer states and activations.

- `accounting`: exact byte counts of the tensors a real training step holds (measured).
- `estimate`: the same four numbers from the model's shape alone (formulas).
- `zero`: per-GPU memory under ZeRO stages 1-3 (Rajbhandari et al. 2020).
- `profile`: estimate and measurement side by side for full / LoRA / QLoRA training, with the refusals.
"""
