"""Expressions several test files build: one definition each, so they cannot drift apart."""

from autodiff import Value


def micrograd_readme_expression(a, b):
    """micrograd's README expression of the Values `a` and `b`: its output `g`."""
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    return g


def micrograd_readme_example() -> tuple[Value, Value, Value]:
    """micrograd's README expression: returns (a, b, g); g.data is 24.7041 before backward."""
    a, b = Value(-4.0, label="a"), Value(2.0, label="b")
    return a, b, micrograd_readme_expression(a, b)
