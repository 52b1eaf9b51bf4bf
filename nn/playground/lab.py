"""The expression lab: a Python expression over a few named Values, its graph, its backward pass.

A student types `(a*b + b**3).tanh()` with `a = 2, b = -3` and sees the computation graph drawn
with every Value's data and grad, the backward pass as chain-rule lines (`explain`), and a link to
the step-through page (`to_html`): the same code as `autodiff.viz`, on the server or in the
browser. The one idea to understand: the expression is never run as Python. It is parsed, and
only numbers, the given names, + - * / **, unary minus and the functions of `FUNCTIONS` (as
`tanh(x)` or `x.tanh()`) are built into Values, so a served lab runs nothing a visitor could
smuggle in (no attribute access, no other names, no big integers).

    >>> out, values = build("(a*b + b**3).tanh()", "a=0.5, b=-0.4")
    >>> out.backward()
    >>> [(v.label, round(v.grad, 4)) for v in values]
    [('a', -0.3734), ('b', 0.9148)]
    >>> build("__import__('os')", "a=1")
    Traceback (most recent call last):
    ...
    ValueError: expression: only relu, tanh, ... may be called, with one argument: f(x) or x.f()
"""

from __future__ import annotations

import ast
import math
from typing import Any

import autodiff
from autodiff import Value
from autodiff.viz.render import render_svg

__all__ = ["FUNCTIONS", "build", "lab", "step_through"]

#: The functions an expression may call, as `f(x)` or as the method `x.f()`.
FUNCTIONS = ("relu", "tanh", "sigmoid", "exp", "log", "sqrt", "sin", "cos", "abs", "softplus")
MAX_VALUES = 8
MAX_LENGTH = 400
#: Parts of an expression (numbers, names, operators, calls): keeps its graph small to draw.
MAX_PARTS = 150
DEFAULT = ("(a*b + b**3).tanh()", "a=0.5, b=-0.4")

_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


def parse_values(text: str) -> dict[str, float]:
    """`"a=2, b=-3"` -> {"a": 2.0, "b": -3.0}: names that are identifiers, finite numbers."""
    values: dict[str, float] = {}
    for part in [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]:
        name, eq, number = (s.strip() for s in part.partition("="))
        if not eq or not name.isidentifier() or name.startswith("_") or name in FUNCTIONS:
            raise ValueError(f"values: {part!r} is not name=number (a name such as a or w1, "
                             f"not one of the functions)")
        try:
            x = float(number)
        except ValueError:
            raise ValueError(f"values: {name} must be a number, got {number!r}") from None
        if not math.isfinite(x):
            raise ValueError(f"values: {name} must be a finite number, got {number!r}")
        if name in values:
            raise ValueError(f"values: {name} is given twice")
        values[name] = x
    if not values:
        raise ValueError("values: give at least one, such as a=2, b=-3")
    if len(values) > MAX_VALUES:
        raise ValueError(f"values: at most {MAX_VALUES}, got {len(values)}")
    return values


def build(expression: str, values_text: str) -> tuple[Value, list[Value]]:
    """The expression's output Value (labelled "f") and the named input Values, in order."""
    if len(expression) > MAX_LENGTH:
        raise ValueError(f"expression: at most {MAX_LENGTH} characters, got {len(expression)}")
    numbers = parse_values(values_text)
    leaves = {name: Value(x, label=name) for name, x in numbers.items()}
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as error:
        raise ValueError(f"expression: not a Python expression ({error.msg})") from None
    parts = sum(1 for _ in ast.walk(tree))
    if parts > MAX_PARTS:
        raise ValueError(f"expression: at most {MAX_PARTS} parts, got {parts}")
    names = ", ".join(leaves)

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return float(node.value)  # floats only: 9**9**9 overflows at once, no huge integers
        if isinstance(node, ast.Name):
            if node.id in leaves:
                return leaves[node.id]
            raise ValueError(f"expression: unknown name {node.id!r}; use the values {names} "
                             f"or the functions {', '.join(FUNCTIONS)}")
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = value(node.left), value(node.right)
            op = type(node.op)
            if op is ast.Add:
                return left + right
            if op is ast.Sub:
                return left - right
            if op is ast.Mult:
                return left * right
            if op is ast.Div:
                return left / right
            return left ** right
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = value(node.operand)
            return -inner if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.Call) and not node.keywords:
            func = node.func
            if isinstance(func, ast.Name) and func.id in FUNCTIONS and len(node.args) == 1:
                return getattr(autodiff, func.id)(_as_value(value(node.args[0])))
            if isinstance(func, ast.Attribute) and func.attr in FUNCTIONS and not node.args:
                return getattr(autodiff, func.attr)(_as_value(value(func.value)))
            raise ValueError(f"expression: only {', '.join(FUNCTIONS)} may be called, with one "
                             "argument: f(x) or x.f()")
        raise ValueError(f"expression: {ast.unparse(node)!r} is not allowed here (numbers, the "
                         "values, + - * / **, and the functions only)")

    try:
        out = value(tree.body)
    except (ArithmeticError, ValueError) as error:
        if str(error).startswith("expression:"):
            raise
        raise ValueError(f"expression: {error}") from None
    out = _as_value(out)
    if not any(out is leaf for leaf in leaves.values()):  # f = a: a keeps its own name
        out.label = "f"
    return out, list(leaves.values())


def _as_value(x: Any) -> Value:
    return x if isinstance(x, Value) else Value(float(x))


def lab(expression: str, values_text: str) -> dict[str, Any]:
    """What the lab page shows: {"svg", "explain", "data", "grads"} after f.backward()."""
    from nn.playground.session import need_dot

    out, leaves = build(expression, values_text)
    need_dot()
    out.backward()
    svg = render_svg(autodiff.to_dot(out, show=("label", "data", "grad")))
    return {"svg": svg, "explain": autodiff.explain(out, file=None, max_steps=200),
            "data": out.data, "data_repr": repr(out.data),
            "grads": [{"name": v.label, "data": v.data, "grad": v.grad} for v in leaves]}


def step_through(expression: str, values_text: str) -> str:
    """The step-through page (autodiff.to_html) of the expression's backward pass."""
    from nn.playground.session import need_dot

    out, _ = build(expression, values_text)
    need_dot()
    return autodiff.to_html(out, title=f"Backprop through f = {expression.strip()}")
