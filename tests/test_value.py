"""Value: construction, operators with numbers on either side, comparisons, identity, errors."""

import math

import numpy as np
import pytest

import autodiff
from autodiff import Value


@pytest.mark.parametrize("data", [3, 3.0, np.float64(3.0), np.float32(3.0), np.int64(3)])
def test_accepts_numbers_and_stores_floats(data):
    v = Value(data)
    assert type(v.data) is float and v.data == float(data)
    assert v.grad == 0.0 and v.label == "" and v.parents == () and v.op == ""


@pytest.mark.parametrize("data", ["3", None, [1], (1.0,), {"x": 1}, 1 + 2j, True, np.bool_(True)])
def test_rejects_non_numbers_naming_the_type(data):
    with pytest.raises(TypeError, match=type(data).__name__):
        Value(data)


def test_fields():
    a = Value(2.0, label="a")
    b = Value(3.0, label="b")
    c = a * b
    assert (c.data, c.op, c.parents, c.label) == (6.0, "mul", (a, b), "")
    assert a.is_leaf and not c.is_leaf
    assert repr(a) == "Value(data=2.0, grad=0.0, label='a')"
    with autodiff.no_grad():  # reading the number on purpose (while recording, float() warns)
        assert float(c) == 6.0


def test_has_slots_and_no_dict():
    assert not hasattr(Value(1.0), "__dict__")
    with pytest.raises(AttributeError):
        Value(1.0).anything = 1


@pytest.mark.parametrize(
    "build, expected",
    [
        (lambda v: v + 2, 5.0),
        (lambda v: 2 + v, 5.0),
        (lambda v: v - 2, 1.0),
        (lambda v: 2 - v, -1.0),
        (lambda v: v * 2, 6.0),
        (lambda v: 2 * v, 6.0),
        (lambda v: v / 2, 1.5),
        (lambda v: 6 / v, 2.0),
        (lambda v: v**2, 9.0),
        (lambda v: 2**v, 8.0),
        (lambda v: v ** Value(2.0), 9.0),
        (lambda v: -v, -3.0),
        (lambda v: +v, 3.0),
        (lambda v: abs(-v), 3.0),
        (lambda v: np.float64(2.0) * v, 6.0),
        (lambda v: v * np.float64(2.0), 6.0),
        (lambda v: np.int64(2) + v, 5.0),
    ],
)
def test_operators_with_numbers_on_either_side(build, expected):
    out = build(Value(3.0))
    assert isinstance(out, Value)
    assert out.data == expected


def test_operator_gradients():
    a, b = Value(3.0), Value(2.0)
    out = a**b + 2**a - a / b + b / 4
    out.backward()
    assert a.grad == pytest.approx(2 * 3.0 + 8 * math.log(2) - 1 / 2.0)
    assert b.grad == pytest.approx(9 * math.log(3) + 3 / 4 + 1 / 4)


@pytest.mark.parametrize("other", ["x", None, [1.0], object()])
def test_arithmetic_with_non_numbers_is_a_type_error(other):
    v = Value(1.0)
    for op in (
        lambda: v + other,
        lambda: other + v,
        lambda: v * other,
        lambda: v - other,
        lambda: v / other,
        lambda: v**other,
        lambda: other * v,
    ):
        with pytest.raises(TypeError):
            op()


def test_comparisons_compare_data_and_return_bools():
    a, b = Value(1.0), Value(2.0)
    assert (a < b) is True and (a <= b) is True and (a > b) is False and (a >= b) is False
    assert (a < 1.5) is True and (2 > a) is True and (b >= 2) is True
    assert max([a, b]) is b and sorted([b, a]) == [a, b]
    with pytest.raises(TypeError):
        a < "x"  # noqa: B015


def test_identity_hashing():
    a, b = Value(1.0), Value(1.0)
    assert a != b and a == a
    assert len({a, b, a}) == 2
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b"


@pytest.mark.parametrize(
    "action, error, message",
    [
        (lambda: Value(-2.0).log(), ValueError, r"log\(\) needs a positive input, got -2.0"),
        (lambda: Value(0.0).log(), ValueError, r"log\(\) needs a positive input, got 0.0"),
        (lambda: autodiff.log(-2), ValueError, r"log\(\) needs a positive input, got -2.0"),
        (lambda: Value(-4.0).sqrt(), ValueError, r"sqrt\(\) needs a non-negative input, got -4.0"),
        (lambda: Value(0.0) ** -1, ZeroDivisionError, r"pow\(\) of zero to a negative power"),
        (lambda: 0 ** Value(-2.0), ZeroDivisionError, r"pow\(\).*0.* \*\* -2.0"),
        (lambda: Value(-8.0) ** 0.5, ValueError, r"pow\(\) of a negative base.*-8.0 \*\* 0.5"),
        (lambda: Value(1.0) / 0, ZeroDivisionError, r"division by zero: 1.0 / 0"),
        (lambda: 1.0 / Value(0.0), ZeroDivisionError, r"division by zero: 1.0 / 0.0"),
        (lambda: Value(1000.0).exp(), OverflowError, r"exp\(\) overflows a float for input 1000.0"),
        (lambda: autodiff.tanh("x"), TypeError, r"tanh\(\) needs a number or a Value, got str"),
    ],
)
def test_bad_input_raises_a_clear_error(action, error, message):
    with pytest.raises(error, match=message):
        action()


def test_error_leaves_graph_intact():
    a = Value(-2.0)
    b = a * 3
    with pytest.raises(ValueError):
        b.log()
    b.backward()
    assert a.grad == 3.0


def test_nan_and_inf_follow_ieee():
    assert (Value(10.0) ** 400).data == math.inf  # as torch, and as 1e200 * 1e200
    assert (Value(-10.0) ** 401).data == -math.inf and (Value(-10.0) ** 400).data == math.inf
    assert math.isnan((Value(math.nan) * 2).data)
    assert (Value(math.inf) + 1).data == math.inf
    assert Value(math.inf).exp().data == math.inf
    assert Value(-math.inf).exp().data == 0.0
    assert Value(math.inf).tanh().data == 1.0
    assert Value(-math.inf).sigmoid().data == 0.0
    assert math.isnan(Value(math.nan).log().data)
    assert Value(math.inf).log().data == math.inf
    v = Value(math.nan)
    (v * 2).backward()
    assert v.grad == 2.0
