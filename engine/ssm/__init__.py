"""Chapter 16: state space models and Mamba. In reading order:

- `s4`: a continuous SSM (A, B, C, D), its discretization (zero-order hold, bilinear), the recurrent view and the
  convolution view (kernel K = (CB̄, CĀB̄, ...), direct and via FFT), equal to each other.
- `hippo`: the HiPPO-LegS matrix and the state as a memory of the past (reconstruct the signal with Legendre
  polynomials).
- `selective_scan`: selection — input-dependent Δ, B, C; the scan as a loop and as a parallel associative scan;
  why a time-invariant convolution cannot do selective copying.
- `mamba`: Mamba from scratch (MambaSpec, MambaBlock, ResidualBlock, Mamba, MambaLM with `step()`), equal to
  transformers' MambaForCausalLM.
- `book165`: the book's section 16.5 code (mamba-minimal) with its four defects, and the fixed version.
- `check`: all the equalities in one report (`python -m engine ssm-check --json`).
"""

# The face: what pages and other areas use, and where it lives (imported on first use).
from engine.core.faces import lazy_face

# ssm-core
_LAZY: dict[str, str] = {
    "SSMError": "errors",
    # S4
    "ContinuousSSM": "s4",
    "DiscreteSSM": "s4",
    "discretize": "s4",
    "ssm_kernel": "s4",
    "causal_conv": "s4",
    "causal_conv_fft": "s4",
    "scan_recurrent": "s4",
    "random_ssm": "s4",
    "cnn_vs_rnn": "s4",
    # HiPPO
    "make_hippo": "hippo",
    "hippo_legs": "hippo",
    "hippo_memory": "hippo",
    "HippoMemory": "hippo",
    "legendre": "hippo",
    # selection
    # (the dispatcher `selective_scan` shares its module's name, so it is not in the face: import it from
    # engine.ssm.selective_scan)
    "selective_scan_parallel": "selective_scan",
    "selective_scan_sequential": "selective_scan",
    "scan_combine": "selective_scan",
    "selective_copy_demo": "selective_scan",
    "SelectiveCopyDemo": "selective_scan",
    # Mamba
    "PRETRAINED": "mamba",
    "MambaSpec": "mamba",
    "MambaBlock": "mamba",
    "ResidualBlock": "mamba",
    "Mamba": "mamba",
    "MambaLM": "mamba",
    "MambaState": "mamba",
    "RMSNorm": "mamba",
    "from_transformers": "mamba",
    "to_transformers": "mamba",
    "load_pretrained": "mamba",
    "map_state_dict": "mamba",
    # the book's code and the checks
    "BOOK_CODE": "book165",
    "FIXED_CODE": "book165",
    "FIXED_CODE_TORCH": "book165",
    "DEFECTS": "book165",
    "BookRun": "book165",
    "DefectRun": "book165",
    "run_book_code": "book165",
    "SSMCheck": "check",
    "ssm_check": "check",
    "hf_path": "check",
    "mamba_vs_transformers": "check",
    "s4_check": "check",
    "scan_check": "check",
}
__all__ = sorted(_LAZY)

# ssm-train: add your names below this line (e.g. `_LAZY.update({...})` and `__all__ = sorted(_LAZY)`).
# ssm-train
_LAZY.update(
    {
        # synthetic tasks (selective copying, induction heads)
        "TASKS": "tasks",
        "TaskSpec": "tasks",
        "TaskBatch": "tasks",
        "make_batch": "tasks",
        "answer_loss": "tasks",
        "answer_accuracy": "tasks",
        # the same-size Transformer
        "TransformerSpec": "transformer",
        "TinyTransformer": "transformer",
        "matched_spec": "transformer",
        # training Mamba vs Transformer, and the 16.1 benchmark
        "TrainConfig": "train",
        "TrainResult": "train",
        "train_one": "train",
        "compare": "train",
        "BenchConfig": "bench",
        "BenchReport": "bench",
        "run_bench": "bench",
    }
)
__all__ = sorted(_LAZY)

__getattr__ = lazy_face(__name__, globals(), _LAZY)
