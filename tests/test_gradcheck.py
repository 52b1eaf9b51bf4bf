"""gradcheck: passes on correct functions, names input, order and numbers on wrong ones."""

import pytest

from autodiff import GradcheckError, Value, gradcheck, ops
from autodiff.ops import Primitive


def test_passes_on_correct_functions():
    assert gradcheck(lambda x, y: (x * y + y.exp()).tanh(), 0.4, -0.3)
    assert gradcheck(lambda x: x.sin() * x.cos(), 1.1, order=1)


def test_catches_a_function_that_cuts_the_graph():
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda x: x * x.data, 1.5)
    message = str(info.value)
    assert "order-1" in message and "x0" in message
    assert "analytic 1.5" in message and "numeric 2.99" in message


def test_names_the_labelled_input():
    with pytest.raises(GradcheckError, match=r"d f / d w"):
        gradcheck(lambda x, w: x * w * w.data, Value(1.0, label="x"), Value(2.0, label="w"))


def test_catches_a_rule_that_is_only_wrong_at_second_order():
    # A sine whose rule uses a constant cosine (cos of the *number*): first derivatives are right,
    # but the rule cannot be differentiated again.
    def frozen_rule(g, out, x):
        """d/dx sin x = cos x, computed on the number only"""
        return (g * ops.cos(x.data if isinstance(x, Value) else x),)

    broken = Primitive("broken_sin", ops.PRIMITIVES["sin"].forward, frozen_rule)
    f = lambda x: ops.apply(broken, x)  # noqa: E731
    assert gradcheck(f, 0.7, order=1)
    with pytest.raises(GradcheckError, match=r"order-2 derivative d2 f / d x0 d x0"):
        gradcheck(f, 0.7, order=2)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="order 1 or 2"):
        gradcheck(lambda x: x, 1.0, order=3)
    with pytest.raises(ValueError, match="at least one input"):
        gradcheck(lambda: Value(1.0))
