"""The data checks every factorization command makes (mfcli.validation), and Dataset helpers."""

from __future__ import annotations

import numpy as np
import pytest

from mfcli.dataset import Dataset, cube_to_matrix, image_to_pixels, matrix_to_cube, pixels_to_image
from mfcli.errors import DataError, ParameterError
from mfcli.validation import (
    as_float_matrix,
    check_factorization_input,
    check_rank,
    check_ranks,
    clip_negative,
    count_nonfinite,
    require_finite,
    require_nonempty,
    require_nonnegative,
)


def test_count_nonfinite():
    assert count_nonfinite(np.array([[1.0, np.nan], [np.inf, -np.inf]])) == 3
    assert count_nonfinite(np.array([[1, 2]])) == 0
    assert count_nonfinite(np.ones((2, 2), np.float32)) == 0


def test_require_finite_says_how_many_and_what_to_do():
    with pytest.raises(DataError) as error:
        require_finite(np.array([[np.nan, np.inf, 1.0]]), "the data of x.csv")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("the data of x.csv contain 2 non-finite values (1 NaN, 1 Inf)")
    assert "mfcli complete" in message
    require_finite(np.ones((2, 2)))


def test_require_nonnegative_hints_at_clip_negative():
    with pytest.raises(DataError, match=r"have 2 negative values \(minimum -3\) but nmf needs nonnegative "
                                        r"data; use --clip-negative"):
        require_nonnegative(np.array([[1.0, -3.0, -1.0]]), "nmf")
    require_nonnegative(np.zeros((2, 2)), "nmf")


def test_require_nonempty():
    with pytest.raises(DataError, match=r"are empty \(shape \(0, 3\)\)"):
        require_nonempty(np.ones((0, 3)))


def test_clip_negative_copies_and_counts():
    X = np.array([[1.0, -2.0], [-0.5, 3.0]], dtype=np.float32)
    clipped, count = clip_negative(X)
    assert count == 2 and clipped.dtype == np.float32
    np.testing.assert_array_equal(clipped, [[1, 0], [0, 3]])
    assert X[0, 1] == -2  # the input is left alone
    same, none = clip_negative(np.ones((2, 2)))
    assert none == 0


@pytest.mark.parametrize("values,options,error", [
    (np.ones((0, 2)), {}, "empty"),
    (np.array([[np.nan, 1.0]]), {}, "non-finite"),
    (np.array([[np.nan, -1.0]]), {"clip_negative": True}, "non-finite"),  # NaN is checked first
    (np.array([[-1.0, 1.0]]), {}, "negative values"),
])
def test_check_factorization_input_refuses(values, options, error):
    with pytest.raises(DataError, match=error):
        check_factorization_input(values, "nmf", **options)


def test_check_factorization_input_accepts():
    X, clipped = check_factorization_input(np.array([[-1.0, 1.0]]), "nmf", clip_negative=True)
    assert clipped == 1 and X.min() == 0
    X, clipped = check_factorization_input(np.array([[-1.0, 1.0]]), "svd", nonnegative=False)
    assert clipped == 0 and X.min() == -1


def test_as_float_matrix_and_ranks():
    assert as_float_matrix(np.ones((2, 2), np.int32)).dtype == np.float64
    assert as_float_matrix(np.ones((2, 2), np.float32)).dtype == np.float32
    assert as_float_matrix(np.ones((2, 2)), "float32").dtype == np.float32
    with pytest.raises(DataError, match="2-D"):
        as_float_matrix(np.ones(3))
    with pytest.raises(ParameterError, match="float32 or float64"):
        as_float_matrix(np.ones((2, 2)), "int8")
    assert check_rank(3, (5, 4)) == 3
    with pytest.raises(ParameterError, match="larger than min"):
        check_rank(5, (5, 4))
    assert check_ranks([4, 3, 3], (10, 10)) == [4, 3, 3]
    with pytest.raises(ParameterError, match="non-increasing"):
        check_ranks([2, 3], (10, 10))


def test_pixel_order_helpers_are_inverse_and_differ():
    images = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    for order in ("F", "C"):
        np.testing.assert_array_equal(pixels_to_image(image_to_pixels(images, order), (3, 4), order), images)
    assert not np.array_equal(image_to_pixels(images, "F"), image_to_pixels(images, "C"))
    cube = np.moveaxis(images, 0, 2)
    np.testing.assert_array_equal(matrix_to_cube(cube_to_matrix(cube, "F"), (3, 4), "F"), cube)
    with pytest.raises(DataError, match="cannot show 12 pixels as a 5x5 image"):
        pixels_to_image(np.ones((2, 12)), (5, 5), "C")
    with pytest.raises(ParameterError):
        image_to_pixels(images, "X")


def test_dataset_without_image_shape_says_how_to_give_one():
    dataset = Dataset(X=np.ones((2, 6)), source="x.csv")
    with pytest.raises(DataError, match="--image-shape"):
        dataset.to_image(dataset.X)
    assert dataset.describe()["shape"] == [2, 6]


@pytest.mark.parametrize("order", ["C", "F"])
def test_count_nonfinite_counts_block_by_block_and_survives_an_overflowing_sum(monkeypatch, order):
    import mfcli.validation as validation

    rng = np.random.default_rng(3)
    X = np.asarray(rng.random((30, 41)), order=order)
    X.flat[::5] = np.nan
    X.flat[2::11] = np.inf
    X.flat[3::13] = -np.inf
    expected = int(X.size - np.count_nonzero(np.isfinite(X)))
    monkeypatch.setattr(validation, "COUNT_BLOCK", 37)  # many blocks
    assert count_nonfinite(X) == expected
    assert count_nonfinite(np.full((4, 5), 1e308)) == 0  # its sum overflows; no entry is Inf
    assert count_nonfinite(np.zeros((0, 3))) == 0
