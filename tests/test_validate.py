"""Notebook parameters: typed values and papermill's text pass or stop, naming the parameter."""

import pytest

from rndlib import validate


def test_quick_must_be_a_boolean():
    assert validate.flag("quick", True) is True
    assert validate.flag("quick", False) is False
    for wrong in ["false", "True", 0, 1, None]:
        with pytest.raises(ValueError, match=r"quick must be True or False"):
            validate.flag("quick", wrong)


def test_lists_take_json_text_from_papermill():
    assert validate.positive_ints("widths", "[256, 1024]") == [256, 1024]
    assert validate.positive_ints("widths", (4, 8)) == [4, 8]
    assert validate.finites("noise_levels", "[0.01]", above=0.0) == [0.01]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1024, r"widths must be a list"),
        (1024.0, r"widths must be a list"),
        ("1024, 2048", r"widths must be a list.*got the text"),
        ("[1024", r"widths must be a list.*got the text"),
        ('{"a": 1}', r"widths must be a list"),
        ([], r"widths must not be empty"),
        ("[]", r"widths must not be empty"),
        ([4, -4], r"widths\[1\] must be an integer >= 1"),
        ([4, 8.5], r"widths\[1\] must be an integer"),
        ([4, True], r"widths\[1\] must be an integer"),
        ("[4, null]", r"widths\[1\] must be an integer"),
    ],
)
def test_bad_lists_name_the_parameter(value, message):
    with pytest.raises(ValueError, match=message):
        validate.positive_ints("widths", value)


def test_numbers_in_range_and_finite():
    assert validate.finite("x", 0.5, above=0.0, below=1.0) == 0.5
    with pytest.raises(ValueError, match=r"x must be less than 1\.0"):
        validate.finite("x", 1.0, below=1.0)
    with pytest.raises(ValueError, match=r"x must be greater than 0\.0"):
        validate.finite("x", 0.0, above=0.0)
    with pytest.raises(ValueError, match=r"x must be at least 2"):
        validate.finite("x", 1.5, at_least=2)
    for wrong in [float("nan"), float("inf"), "0.5", [0.5], True, None]:
        with pytest.raises(ValueError, match=r"x must be a finite number"):
            validate.finite("x", wrong)
    with pytest.raises(ValueError, match=r"levels\[1\] must be a finite number"):
        validate.finites("levels", [0.1, float("nan")])
    with pytest.raises(ValueError, match=r"levels\[0\] must be less than 1"):
        validate.finites("levels", "[1.5]", below=1.0)


def test_choices():
    assert validate.choice("activation", "erf", ("relu", "erf")) == "erf"
    for wrong in ["tanh", ["relu"], None]:
        with pytest.raises(ValueError, match=r"activation must be one of \['erf', 'relu'\]"):
            validate.choice("activation", wrong, ("relu", "erf"))
