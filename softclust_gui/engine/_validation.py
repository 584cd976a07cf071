"""Input checks with messages that say what was wrong and how to fix it."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_array


def check_points(X, n_clusters: int) -> np.ndarray:
    """Return X as a C-contiguous float32/float64 array of shape (n_points, n_features).

    Raises ValueError naming the problem and the sizes involved.
    """
    X = _as_float_array(X)
    if X.ndim != 2:
        hint = (
            " Reshape your data: X.reshape(-1, 1) for one feature, X.reshape(1, -1) for "
            "one point."
            if X.ndim == 1
            else ""
        )
        raise ValueError(
            f"X must be a 2-D array of shape (n_points, n_features); got a {X.ndim}-D "
            f"array of shape {X.shape}.{hint}"
        )
    n, d = X.shape
    if n == 0:
        raise ValueError(f"X is empty: shape {X.shape}; clustering needs at least one point.")
    if d == 0:
        raise ValueError(
            f"X has 0 feature(s) (shape={X.shape}) while a minimum of 1 is required."
        )
    _check_finite(X)
    if n == 1 and n_clusters > 1:
        raise ValueError(
            f"X has 1 sample (a single point); splitting it into n_clusters={n_clusters} "
            "needs at least that many points."
        )
    if n < n_clusters:
        raise ValueError(
            f"X has {n} points, fewer than n_clusters={n_clusters}; ask for at most "
            f"{n} clusters or pass more points."
        )
    if n_clusters > 1 and not np.any(X.max(axis=0) > X.min(axis=0)):
        raise ValueError(
            f"all {n} points of X are identical, so they cannot be split into "
            f"n_clusters={n_clusters}; check the features, or use n_clusters=1."
        )
    return X


def check_new_points(X, n_features: int) -> np.ndarray:
    """Checks for predict: the same rules as fit, and the fitted number of features."""
    X = _as_float_array(X)
    if X.ndim != 2:
        raise ValueError(
            f"X must be a 2-D array of shape (n_points, {n_features}); got a {X.ndim}-D "
            f"array of shape {X.shape}. Reshape your data: X.reshape(1, -1) for one point."
        )
    if X.shape[1] != n_features:
        raise ValueError(
            f"X has {X.shape[1]} features, but HypersurfaceClustering is expecting "
            f"{n_features} features as input (the number it was fitted on)."
        )
    _check_finite(X)
    return X


def _as_float_array(X) -> np.ndarray:
    try:
        return check_array(
            X,
            dtype=[np.float64, np.float32],
            order="C",
            ensure_2d=False,
            allow_nd=True,
            ensure_all_finite=False,
            ensure_min_samples=0,
            ensure_min_features=0,
        )
    except ValueError as error:
        if "convert" in str(error) or "dtype" in str(error):
            raise ValueError(
                f"X must hold numbers only (int or float); converting it failed: {error}"
            ) from error
        raise


def _check_finite(X: np.ndarray) -> None:
    finite = np.isfinite(X)
    if finite.all():
        return
    n_nan = int(np.isnan(X).sum())
    n_inf = int((~finite).sum()) - n_nan
    rows = np.flatnonzero(~finite.all(axis=1))
    shown = ", ".join(str(r) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
    raise ValueError(
        f"X contains {n_nan} NaN and {n_inf} infinite (inf) values in {len(rows)} of "
        f"{X.shape[0]} rows (rows {shown}); remove or impute them before clustering."
    )
