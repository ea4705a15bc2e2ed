"""The input checks at the library's boundary."""

import numpy as np
import pytest

from l0bayes.validation import checks_Xy


@checks_Xy(min_samples=3)
def _column_means(X, y, scale=1.0):
    """Column means of X times ``scale``."""
    return scale * X.mean(axis=0), y


def test_checks_xy_checks_the_public_call_and_not_the_checked_body():
    X = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    means, y = _column_means(X, [1, 0, 1], scale=2.0)
    np.testing.assert_array_equal(means, [6.0, 8.0])
    assert y.dtype == np.float64  # the body received check_Xy's arrays
    with pytest.raises(ValueError, match="at least 3"):
        _column_means(X[:2], [1, 0])
    with pytest.raises(ValueError):
        _column_means([[np.nan, 1.0]] * 3, [1, 0, 1])
    raw = np.array([[np.nan, 1.0]] * 2)  # the body alone trusts its caller
    assert np.isnan(_column_means.checked(raw, None)[0][0])
    assert _column_means.__name__ == "_column_means"
    assert _column_means.__doc__ == "Column means of X times ``scale``."
