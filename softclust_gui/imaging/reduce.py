"""Prepare features for clustering: L2-normalise each row, then PCA to a few dimensions."""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_MAX_DIMS = 128


def l2_normalise(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero); float32."""
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def reduce_features(
    features: np.ndarray,
    max_dims: int | None = DEFAULT_MAX_DIMS,
    *,
    whiten: bool = False,
    random_state: int = 0,
    return_model: bool = False,
):
    """L2-normalise each row, then reduce with PCA to at most ``max_dims`` dimensions.

    Parameters
    ----------
    features : array of shape (n, d)
        One row per image, finite values.
    max_dims : int or None
        Upper bound on the output width; the output has ``min(max_dims, n, d)`` columns.
        None keeps all ``d`` columns and only normalises.
    whiten : bool
        Scale the components to unit variance (``PCA(whiten=True)``).
    random_state : int
        Seed of the randomised SVD used for large inputs.
    return_model : bool
        Also return the fitted ``PCA`` (None when no PCA ran), to project new images the
        same way: ``pca.transform(l2_normalise(new))``.

    Returns
    -------
    reduced : ndarray of float32, shape (n, k)
    pca : PCA or None
        Only with ``return_model=True``.

    Raises
    ------
    ValueError
        For a non-2-D input, an empty one, non-finite values or ``max_dims < 1``.
    """
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(
            "features must be a non-empty 2-D array (n_images, dim); "
            f"got shape {features.shape}."
        )
    if max_dims is not None and max_dims < 1:
        raise ValueError(f"max_dims must be at least 1 or None; got {max_dims}.")
    if not np.all(np.isfinite(features)):
        bad = int(np.count_nonzero(~np.isfinite(features).all(axis=1)))
        raise ValueError(
            f"features hold NaN or infinite values in {bad} of {len(features)} rows."
        )
    normed = l2_normalise(features)
    n, d = normed.shape
    k = d if max_dims is None else min(max_dims, n, d)
    pca = None
    # PCA needs variance to share out: one image, or identical ones, stay as they are.
    if k < d and n > 1 and bool(np.ptp(normed, axis=0).any()):
        from sklearn.decomposition import PCA  # imported here: it takes most of a second

        pca = PCA(n_components=k, whiten=whiten, random_state=random_state)
        normed = pca.fit_transform(normed).astype(np.float32)
        logger.debug(
            "PCA %d -> %d dims keeps %.1f%% of the variance",
            d,
            k,
            100 * float(pca.explained_variance_ratio_.sum()),
        )
    return (normed, pca) if return_model else normed
