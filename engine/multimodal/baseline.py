"""The yardstick beside CLIP: logistic regression on raw pixels, trained on the same seen-class images (book 14.2
compares zero-shot CLIP with a linear probe). It can only ever answer a class it was trained on, so a held-out
class scores 0 by construction — the thing zero-shot transfer is supposed to beat."""

from __future__ import annotations

import time

import numpy as np

from engine.multimodal.data import ImageSet

__all__ = ["logreg_baseline"]


def logreg_baseline(train: ImageSet, test: ImageSet, held: list[int], n_train: int = 10_000, seed: int = 0) -> dict:
    """Accuracy on the whole test set, on its seen classes and on its held-out ones; trained on `n_train` images of
    the seen classes (a sample: lbfgs on all 48,000 takes minutes on 2 cores, and 10,000 is within ~1 point)."""
    from sklearn.linear_model import LogisticRegression

    seen = np.flatnonzero(~np.isin(train.labels, held))
    rng = np.random.default_rng(seed)
    pick = rng.choice(seen, size=min(n_train, len(seen)), replace=False)
    x = train.images[pick].reshape(len(pick), -1).astype(np.float32) / 255.0  # (n, 784)
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    t0 = time.perf_counter()
    clf = LogisticRegression(max_iter=200, C=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(x, train.labels[pick])
    seconds = time.perf_counter() - t0
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    pred = clf.predict(test.images.reshape(len(test), -1).astype(np.float32) / 255.0)
    right = pred == test.labels
    is_held = np.isin(test.labels, held)
    return {
        "accuracy": float(right.mean()),
        "seen_accuracy": float(right[~is_held].mean()) if (~is_held).any() else None,
        "heldout_accuracy": float(right[is_held].mean()) if is_held.any() else None,
        "n_train": len(pick),
        "converged": converged,  # lbfgs within 200 iterations (else: the accuracy after 200)
        "seconds": seconds,
    }
