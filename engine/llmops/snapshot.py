"""The shipped picture of 13.1–13.2 (assets/precomputed/ch13_runs.json): what a fresh page shows before a learner
has run anything. Real runs, made here in a throw-away MLflow store: chapter 4's toy DPO at four β (the tracked demo
of the page, `demo.tracked_toy_dpo`), their curves and parameters read back through the same readers the page uses,
the run the toy's judge (its stand-in for human preference, `judge_mean`) likes best registered and promoted to
`champion`, the runner-up registered as `challenger`. Not the lowest DPO loss: −log σ(β·margin) is on a different
scale for each β, so losses of a β sweep do not rank its runs.

    python -m engine runs-precompute            # ~1 min on 2 cores; --save-precomputed writes the shipped file
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.core.progress import ProgressFn, null_progress
from engine.llmops import registry, tracking
from engine.llmops.demo import tracked_toy_dpo

BETAS = (0.03, 0.1, 0.3, 1.0)
STEPS = 30
MODEL = "ch04-toy-dpo"
METRIC = "judge_mean"  # higher is better
CURVE_KEYS = ("judge_mean", "loss", "reward_mean", "kl")
WHO = "llmlab maintainers (runs-precompute)"


def runs_snapshot(
    betas: Sequence[float] = BETAS, steps: int = STEPS, seed: int = 0, progress: ProgressFn = null_progress
) -> dict[str, Any]:
    """Train, track, read back, register and promote in a temporary store; the page's shapes (runs as
    `RunSummary.as_dict`, curves as `Curve`, the params table, the registry view) as one dict."""
    old = os.environ.get("LLMLAB_TRACKING_URI")
    with tempfile.TemporaryDirectory(prefix="llmlab-runs-") as tmp:
        os.environ["LLMLAB_TRACKING_URI"] = f"sqlite:///{(Path(tmp) / 'mlflow.db').as_posix()}"
        tracking.reset()
        try:
            outcomes: list = []
            for i, beta in enumerate(betas):
                progress(i / len(betas), f"toy DPO β={beta}")
                tracked_toy_dpo(beta, steps, seed=seed, on_done=outcomes.append)
            ids = [o.run_id for o in outcomes if o.run_id]
            runs = [r.as_dict() for r in tracking.list_runs(limit=200)]
            curves = [dataclasses.asdict(c) for c in tracking.metric_curves(ids, list(CURVE_KEYS))]
            table = tracking.params_table(ids, METRIC)
            params = {"metric": table.metric, "varying": table.varying, "constant": table.constant, "rows": table.rows}
            # the registry: the judge's favourite is the champion, the runner-up the challenger
            final = {r["run_id"]: r["metrics"].get(METRIC) for r in runs if r["run_id"] in ids}
            ranked = sorted(((v, k) for k, v in final.items() if v is not None), reverse=True)
            reasons = {
                "champion": "highest judge score of the β sweep ({value:.3f} at β={beta})",
                "challenger": "runner-up of the β sweep ({value:.3f} at β={beta}), kept to compare with the champion",
            }
            for alias, (value, run_id) in zip(("champion", "challenger"), ranked, strict=False):
                beta = next(r["params"].get("beta") for r in runs if r["run_id"] == run_id)
                v = registry.register_model(MODEL, run_id, "policy", f"toy DPO, β={beta}, {steps} steps, seed {seed}")
                registry.promote(MODEL, v.version, alias, WHO, reasons[alias].format(value=value, beta=beta))
            view = {
                "name": MODEL,
                "versions": [v.as_dict() for v in registry.model_versions(MODEL)],
                "promotions": [p.as_dict() for p in registry.promotions(MODEL)],
            }
            progress(1.0, "done")
        finally:
            if old is None:
                os.environ.pop("LLMLAB_TRACKING_URI", None)
            else:
                os.environ["LLMLAB_TRACKING_URI"] = old
            tracking.reset()
    for r in runs:  # the temporary store's paths mean nothing on another machine
        r.pop("artifact_uri", None)
    for v in view["versions"]:
        v["source"] = "runs:/{}/policy".format(v.get("run_id", ""))
    return {"runs": runs, "curves": curves, "params": params, "registry": view, "betas": list(betas), "steps": steps}


__all__ = ["BETAS", "runs_snapshot"]
