"""L2 normalisation and PCA before clustering."""

from __future__ import annotations

import numpy as np
import pytest

from softclust_gui.imaging import l2_normalise, reduce_features


def test_reduces_to_at_most_max_dims():
    x = np.random.default_rng(0).normal(size=(300, 1280)).astype(np.float32)
    out, pca = reduce_features(x, return_model=True)
    assert out.shape == (300, 128) and out.dtype == np.float32
    np.testing.assert_allclose(out, pca.transform(l2_normalise(x)), atol=1e-4)
    assert reduce_features(x[:20], 128).shape == (20, 20)  # never more than n
    assert reduce_features(x, 16).shape == (300, 16)


def test_one_image_or_identical_ones_are_only_normalised(recwarn):
    x = np.random.default_rng(1).normal(size=(1, 300)).astype(np.float32)
    np.testing.assert_allclose(reduce_features(x, 128), l2_normalise(x))
    same = np.repeat(x, 5, axis=0)
    np.testing.assert_allclose(reduce_features(same, 2), l2_normalise(same))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_rows_are_normalised_first():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [0.0, 10.0]])
    out = reduce_features(x, None)
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0], [0.0, 1.0]])


def test_scale_of_a_row_does_not_matter():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 30))
    scaled = x * rng.uniform(0.1, 10, size=(50, 1))
    np.testing.assert_allclose(reduce_features(x, 5), reduce_features(scaled, 5), atol=1e-4)


@pytest.mark.parametrize(
    ("x", "kwargs", "match"),
    [
        (np.zeros(5), {}, r"2-D array \(n_images, dim\); got shape \(5,\)"),
        (np.zeros((0, 4)), {}, r"got shape \(0, 4\)"),
        (np.array([[1.0, np.nan], [1.0, 2.0]]), {}, "NaN or infinite values in 1 of 2 rows"),
        (np.ones((3, 3)), {"max_dims": 0}, "max_dims must be at least 1 or None; got 0"),
    ],
)
def test_bad_input(x, kwargs, match):
    with pytest.raises(ValueError, match=match):
        reduce_features(x, **kwargs)
