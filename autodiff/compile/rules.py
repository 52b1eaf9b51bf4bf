"""Compiled backward: trace a function once, write its forward and backward pass out as Python.

`compile(f)` runs `f` on Values once, reads the graph it built and emits straight-line Python
source: one local variable per node, the forward pass with each primitive's float forward, then
the backward pass with each primitive's derivative rule written inline, node by node in exactly
the order `backward()` visits them. Later calls run that code on plain floats. The one idea to
understand: the code is the backward pass itself, written out, so it gives the very numbers
`backward()` gives (same rules, same order of additions), and reading it shows what backprop does.

    >>> from autodiff import compile
    >>> step = compile(lambda a, b: a * b + a)
    >>> step(2.0, -3.0)                  # the value, and (d/da, d/db)
    (-4.0, (-2.0, 2.0))

Python decisions made during tracing are handled as TorchDynamo does: every comparison of a
Value (`if x > 0:`) is recorded as a guard, checked in the generated code; a call for which one
comes out differently is traced again (or served by the trace that matches). Branches inside
derivative rules (relu, abs) stay branches in the generated code. What a trace cannot see is a
number read out of a Value: `float(v)`, `v.detach()` and `no_grad()` during tracing are refused;
`v.data` cannot be noticed, so the first reuse of each trace is checked against eager execution.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import itertools
import keyword
import linecache
import math
import operator
import random
import re
import struct
import sys
import textwrap
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from numbers import Real
from typing import Any

from autodiff import value as _value_module
from autodiff.engine import topological_order
from autodiff.modes import enable_grad, is_anomaly_enabled, is_grad_enabled, no_grad
from autodiff.ops import PRIMITIVES
from autodiff.value import Value

__all__ = ["compile", "CompiledFunction", "CompileError", "Trace", "MAX_NODES"]

#: Default largest number of operations one trace may have. CPython compiles straight-line code
#: at roughly 15 us and 3 KB of memory per line, and a traced operation becomes about three lines
#: (its forward line and one share per input), so 100,000 operations take ~5 s and ~1 GB to
#: compile once. Bigger graphs (a whole dataset in one loss) compile better per sample or batch.
MAX_NODES = 100_000
#: How many traces (argument structures x guard outcomes) one compiled function keeps.
MAX_TRACES = 32

_SERIAL = itertools.count(1)


class CompileError(RuntimeError):
    """The function cannot be compiled faithfully (the message says why and what to do)."""


# ---- tracing: the comparison hook and the profile hook --------------------------------------

# The trace being recorded in this thread / task (None when not tracing).
_TRACE: ContextVar[_Recorder | None] = ContextVar("autodiff_compile_trace", default=None)
_hook_lock = threading.Lock()
_hook_users = 0
_hook_previous = None


def _on_compare(value, op, other, outcome) -> None:
    """The comparison hook while any thread traces: records into *this* context's trace only."""
    recorder = _TRACE.get()
    if recorder is not None:
        recorder.guards.append((value, op, other, outcome))
    previous = _hook_previous
    if previous is not None:
        previous(value, op, other, outcome)


def _install_hook() -> None:
    global _hook_users, _hook_previous
    with _hook_lock:
        if _hook_users == 0:
            _hook_previous = _value_module.compare_hook
            _value_module.compare_hook = _on_compare
        _hook_users += 1


def _uninstall_hook() -> bool:
    """Remove the hook when the last tracer is done; False if someone replaced it meanwhile."""
    global _hook_users, _hook_previous
    with _hook_lock:
        intact = _value_module.compare_hook is _on_compare
        _hook_users -= 1
        if _hook_users == 0 and intact:
            _value_module.compare_hook = _hook_previous
            _hook_previous = None
        return intact


def _code(func) -> Any:
    return getattr(func, "__code__", None)


# Python-level calls the profile hook watches for while tracing (per thread, via sys.setprofile).
_INIT_CODE = _code(Value.__init__)
_NO_GRAD_CODE = _code(getattr(no_grad, "__enter__", None))
_READS = {c: what for c, what in (
    (_code(getattr(Value, "__float__", None)), "float(v) read a traced Value"),
    (_code(getattr(Value, "detach", None)), "v.detach() froze a traced Value"),
    (_NO_GRAD_CODE, "no_grad() was entered"))
    if c is not None}


class _Recorder:
    """What one tracing run saw: comparisons, leaves made during it, numbers read out."""

    def __init__(self) -> None:
        self.guards: list[tuple] = []
        self.made: set[int] = set()  # ids of Values constructed while tracing (constants)
        self.reads: list[str] = []
        self.profiled = False

    def profile(self, frame, event, arg) -> None:
        if event != "call":
            return
        code = frame.f_code
        if code is _INIT_CODE:
            self.made.add(id(frame.f_locals.get("self")))
        elif code in _READS:
            if code is _NO_GRAD_CODE and not isinstance(frame.f_locals.get("self"), no_grad):
                return  # the same __enter__ may serve other switches (enable_grad)
            caller = frame.f_back
            where = f" ({caller.f_code.co_filename}:{caller.f_lineno})" if caller else ""
            self.reads.append(_READS[code] + where)


# ---- arguments: nested lists of numbers, flattened ------------------------------------------


def _flatten(arg, path: str, flat: list, name: str):
    """The structure of `arg` (hashable) and its numbers appended to `flat`, checked.

    A number is 0; a list or tuple of numbers only is (is_tuple, count), the common case, taken
    in one step; any other list or tuple is (is_tuple, (structure of each item, ...)).
    """
    kind = type(arg)
    if kind is float:
        flat.append(arg)
        return 0
    if kind is list or kind is tuple:
        types = set(map(type, arg))
        if types == _FLOATS or types <= _PLAIN_NUMBERS and all(
                -_BIG < x < _BIG for x in arg if type(x) is int):
            flat.extend(arg if types == _FLOATS else map(float, arg))
            return (kind is tuple, len(arg))
        parts = tuple(_flatten(a, f"{path}[{i}]", flat, name) for i, a in enumerate(arg))
        if all(p == 0 for p in parts):  # numbers of other types (NumPy's): the same structure
            return (kind is tuple, len(parts))
        return (kind is tuple, parts)
    if isinstance(arg, Value):
        raise TypeError(f"compiled {name}: argument {path} is a Value; a compiled step runs on "
                        f"numbers: pass {path}.data, or call the function itself to build a graph")
    if isinstance(arg, (list, tuple)):  # subclasses: taken as the plain list or tuple
        return _flatten(tuple(arg) if isinstance(arg, tuple) else list(arg), path, flat, name)
    if isinstance(arg, bool) or not isinstance(arg, Real):
        raise TypeError(f"compiled {name}: argument {path} must be a number or a (nested) list "
                        f"or tuple of numbers, got {type(arg).__name__}: {arg!r}"
                        + (" (flags and other data go in static_argnums)"
                           if isinstance(arg, (bool, str)) else ""))
    try:
        flat.append(float(arg))
    except OverflowError:
        raise OverflowError(f"compiled {name}: argument {path} is too large for a float, got "
                            f"{_value_module._size(arg)}") from None
    return 0


def _static_key(arg):
    """A static argument as a cache key that tells apart what == does not: -0.0 from 0.0 (which
    give different numbers), True from 1 inside a tuple, and NaN from nothing (NaN != NaN would
    miss the cache every time)."""
    kind = type(arg)
    if kind is float:
        return (float, struct.pack("<d", arg))
    if kind is tuple or kind is list:
        return (kind, tuple(_static_key(a) for a in arg))
    return (kind, arg)  # True == 1 == 1.0: the type tells them apart


_BIG = 2**1023  # ints at least this large in size may not fit a float: each is checked
_FLOATS = {float}
_PLAIN_NUMBERS = {float, int}


def _rebuild(structure, values: Sequence, pos: int = 0):
    """Nested lists/tuples of the given shape filled from `values[pos:]`; returns (it, pos)."""
    if structure == 0:
        return values[pos], pos + 1
    is_tuple, parts = structure
    if type(parts) is int:
        items = values[pos:pos + parts]
        return (tuple(items) if is_tuple else list(items)), pos + parts
    items = []
    for part in parts:
        item, pos = _rebuild(part, values, pos)
        items.append(item)
    return (tuple(items) if is_tuple else items), pos


def _paths(structure, path: str) -> list[str]:
    if structure == 0:
        return [path]
    if type(structure[1]) is int:
        return [f"{path}[{i}]" for i in range(structure[1])]
    return [p for i, s in enumerate(structure[1]) for p in _paths(s, f"{path}[{i}]")]


# ---- how each primitive is written: templates made from the op table ------------------------

_BINARY = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/"}
_PURE_NODES = (ast.Expression, ast.Name, ast.Load, ast.Constant, ast.BinOp, ast.UnaryOp,
               ast.Compare, ast.IfExp, ast.BoolOp, ast.Add, ast.Sub, ast.Mult, ast.USub,
               ast.UAdd, ast.Not, ast.Gt, ast.GtE, ast.Lt, ast.LtE, ast.Eq, ast.NotEq, ast.And,
               ast.Or, ast.Tuple)


def _is_pure(source: str) -> bool:
    """True when evaluating `source` on floats cannot raise (only + - *, comparisons, if-else)."""
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        return False
    return all(isinstance(node, _PURE_NODES) for node in ast.walk(tree))


class _Template:
    """One primitive's rule for a given number of inputs, as text with {placeholders}.

    `assigns` are the rule's own local lines, `shares` one expression per input; the
    placeholders are {g}, {out}, {x0}, {x1}, ... and {t_NAME} for the rule's locals. A rule with
    branches is a `block` of lines instead, which sets {s0}, {s1}, ... (then the shares).
    `call` is set instead when the rule is called rather than written out.
    """

    def __init__(self, assigns=(), shares=(), call: str = "", how: str = "inline"):
        self.assigns = list(assigns)
        self.shares = list(shares)
        self.call = call
        self.how = how
        self.block: list[str] | None = None
        self.block_pure = False
        self.pure_assigns = [_is_pure(_blank(e)) for _, e in self.assigns]
        self.pure_shares = [_is_pure(_blank(e)) for e in self.shares]


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _blank(text: str) -> str:
    return _PLACEHOLDER.sub(lambda m: "_" + m.group(1), text)


class _Globals:
    """Objects the generated code refers to, each bound once under a readable name."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"__builtins__": builtins}
        self._by_id: dict[int, str] = {}

    def bind(self, obj, hint: str) -> str:
        name = self._by_id.get(id(obj))
        if name is not None:
            return name
        base = "_" + re.sub(r"\W", "_", hint).strip("_")
        name, k = base, 2
        while name in self.namespace:
            name, k = f"{base}_{k}", k + 1
        self.namespace[name] = obj
        self._by_id[id(obj)] = name
        return name


def _rule_from_source(vjp: Callable, arity: int, glob: _Globals, prim_name: str):
    """The rule's own text as a template: params renamed, locals kept, globals bound.

    A rule that is a few assignments and one `return` becomes expressions, one per share; a
    rule with `if` statements (several returns) becomes a block of lines that sets one
    variable per share. Small private helpers of the rule's module (`_zero(g)`) are written
    in place, and `type(v) is float`, always true in the generated code, is folded away. A rule
    of any number of inputs is written out when it is one `return tuple([... for x in xs])`.
    """
    try:
        source = textwrap.dedent(inspect.getsource(vjp))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    func = next((n for n in tree.body if isinstance(n, ast.FunctionDef)), None)
    if func is None or func.name != vjp.__name__:
        return None
    args = func.args
    if args.kwarg or args.kwonlyargs or args.defaults or args.posonlyargs:
        return None
    if args.vararg:
        return _rule_from_comprehension(func, vjp, arity, glob, prim_name)
    params = [a.arg for a in args.args]
    if len(params) != arity + 2:
        return None
    rename = {params[0]: "{g}", params[1]: "{out}"}
    rename.update({p: f"{{x{i}}}" for i, p in enumerate(params[2:])})
    body = list(func.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    local = {t.id for n in ast.walk(func) if isinstance(n, ast.Assign)
             for t in n.targets if isinstance(t, ast.Name)}
    if local & set(rename) or not body:
        return None
    try:
        outside = _outside(vjp)
    except (TypeError, ValueError):
        return None
    convert = _Converter(rename, local, outside, glob, prim_name, vjp)

    # The simple form: assignments, then one return of a tuple.
    if all(isinstance(s, ast.Assign) and len(s.targets) == 1
           and isinstance(s.targets[0], ast.Name) for s in body[:-1]) \
            and isinstance(body[-1], ast.Return) and isinstance(body[-1].value, ast.Tuple) \
            and len(body[-1].value.elts) == arity:
        assign_texts = []
        for stmt in body[:-1]:
            text = convert(stmt.value)
            if text is None:
                return None
            assign_texts.append((f"{{t_{stmt.targets[0].id}}}", text))
        shares = [convert(e) for e in body[-1].value.elts]
        if any(s is None for s in shares):
            return None
        return _Template(assign_texts, shares, how="inline")

    # The block form: if statements and several returns.
    texts: list[str] = []
    lines = _block(body, "", arity, convert, texts)
    if lines is None or not _always_returns(body):
        return None
    template = _Template(shares=[f"{{s{i}}}" for i in range(arity)], how="inline")
    template.block = lines
    template.block_pure = all(_is_pure(_blank(t)) for t in texts)
    return template


def _rule_from_comprehension(func: ast.FunctionDef, vjp: Callable, arity: int, glob: _Globals,
                             prim_name: str):
    """A rule of any number of inputs written `return tuple([share(x) for x in xs])`
    (logsumexp's `g * exp(x - out)`): the share's expression written out once per input."""
    params = [a.arg for a in func.args.args]
    rest = func.args.vararg.arg
    body = [s for s in func.body if not (isinstance(s, ast.Expr)
                                         and isinstance(s.value, ast.Constant))]
    if len(params) != 2 or len(body) != 1 or not isinstance(body[0], ast.Return):
        return None
    call = body[0].value
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
            and call.func.id == "tuple" and len(call.args) == 1 and not call.keywords
            and isinstance(call.args[0], (ast.ListComp, ast.GeneratorExp))):
        return None
    comp = call.args[0]
    if len(comp.generators) != 1:
        return None
    loop = comp.generators[0]
    if loop.ifs or loop.is_async or not isinstance(loop.target, ast.Name) \
            or not isinstance(loop.iter, ast.Name) or loop.iter.id != rest \
            or loop.target.id in params:
        return None
    try:
        outside = _outside(vjp)
    except (TypeError, ValueError):
        return None
    if outside.get("tuple", builtins.tuple) is not builtins.tuple:
        return None
    # The comprehension's names are its own code's (before Python 3.12): look them up as it would.
    module = getattr(vjp, "__globals__", {})
    own = {*params, loop.target.id}
    for node in ast.walk(comp.elt):
        if isinstance(node, ast.Name) and node.id == rest:
            return None  # the share of one input needs all of them: not one expression each
        if isinstance(node, ast.Name) and node.id not in outside and node.id not in own:
            if node.id in module:
                outside[node.id] = module[node.id]
            elif hasattr(builtins, node.id):
                outside[node.id] = getattr(builtins, node.id)
    shares = []
    for i in range(arity):  # `rest` itself is no name the converter knows: a use of it fails
        rename = {params[0]: "{g}", params[1]: "{out}", loop.target.id: f"{{x{i}}}"}
        text = _Converter(rename, set(), outside, glob, prim_name, vjp)(comp.elt)
        if text is None:
            return None
        shares.append(text)
    return _Template((), shares, how="inline")


def _always_returns(stmts: list) -> bool:
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, ast.Return):
        return True
    if isinstance(last, ast.If):
        return _always_returns(last.body) and _always_returns(last.orelse)
    return any(isinstance(s, ast.Return) for s in stmts) and False


def _has_return(stmts: list) -> bool:
    return any(isinstance(n, ast.Return) for s in stmts for n in ast.walk(s))


def _block(stmts: list, indent: str, arity: int, convert, texts: list) -> list[str] | None:
    """Lines for a rule body: each `return a, b` becomes `{s0}, {s1} = a, b`; an `if` whose
    branch returns takes the statements after it as its `else`."""
    lines: list[str] = []
    for i, stmt in enumerate(stmts):
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
                and isinstance(stmt.targets[0], ast.Name):
            text = convert(stmt.value)
            if text is None:
                return None
            texts.append(text)
            lines.append(f"{indent}{{t_{stmt.targets[0].id}}} = {text}")
        elif isinstance(stmt, ast.Return):
            value = stmt.value
            if not isinstance(value, ast.Tuple) or len(value.elts) != arity:
                return None
            shares = [convert(e) for e in value.elts]
            if any(s is None for s in shares):
                return None
            texts.extend(shares)
            targets = ", ".join(f"{{s{k}}}" for k in range(arity))
            lines.append(f"{indent}{_seq(targets.split(', '))} = {_seq(shares)}")
            return lines  # anything after a return is never run
        elif isinstance(stmt, ast.If):
            test = convert(stmt.test)
            if test is None:
                return None
            texts.append(test)
            if _always_returns(stmt.body):
                inner = _block(stmt.body, indent + "    ", arity, convert, texts)
                rest = _block(list(stmt.orelse) + stmts[i + 1:], indent + "    ", arity,
                              convert, texts)
                if inner is None or rest is None:
                    return None
                return lines + [f"{indent}if {test}:"] + inner + [f"{indent}else:"] + rest
            if _has_return(stmt.body) or _has_return(stmt.orelse):
                return None
            inner = _block(stmt.body, indent + "    ", arity, convert, texts)
            other = _block(stmt.orelse, indent + "    ", arity, convert, texts) \
                if stmt.orelse else []
            if inner is None or other is None:
                return None
            lines += [f"{indent}if {test}:"] + inner
            if other:
                lines += [f"{indent}else:"] + other
        else:
            return None
    return lines


def _outside(func) -> dict:
    closure = inspect.getclosurevars(func)
    return {**closure.builtins, **closure.globals, **closure.nonlocals}


class _Converter:
    """One rule expression as template text: names renamed, helpers written in place."""

    allowed = (ast.Name, ast.expr_context, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Compare,
               ast.IfExp, ast.BoolOp, ast.Call, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)

    def __init__(self, rename, local, outside, glob, prim_name, vjp):
        self.rename, self.local, self.outside = rename, local, outside
        self.glob, self.prim_name = glob, prim_name
        self.module = getattr(vjp, "__module__", None)
        rule_globals = getattr(vjp, "__globals__", {})
        self.builtin_type = rule_globals.get("type", builtins.type) is builtins.type \
            and rule_globals.get("float", builtins.float) is builtins.float

    def __call__(self, expr: ast.expr) -> str | None:
        expr = self._inline(_copy(expr), self.outside, 0)
        if expr is None:
            return None
        expr = self._fold(expr)
        if any(isinstance(n, ast.Name) and n.id == "_inlined_" for n in ast.walk(expr)):
            return None  # a helper that calls itself
        for node in ast.walk(expr):
            if not isinstance(node, self.allowed):
                return None
            if isinstance(node, ast.Call) and (node.keywords or not isinstance(node.func,
                                                                               ast.Name)):
                return None
            if isinstance(node, ast.Constant) and not (
                    type(node.value) in (int, float, bool) and math.isfinite(node.value)):
                return None
        for node in ast.walk(expr):
            if isinstance(node, ast.Name):
                if node.id in self.rename:
                    node.id = self.rename[node.id]
                elif node.id in self.local:
                    node.id = f"{{t_{node.id}}}"
                elif node.id.startswith("{"):
                    pass  # already a placeholder
                elif node.id in self.outside:
                    node.id = self.glob.bind(self.outside[node.id],
                                             f"{self.prim_name}_{node.id}")
                else:
                    return None
        return ast.unparse(expr)

    def _inline(self, expr: ast.AST, outside: dict, depth: int) -> ast.AST | None:
        """Write calls of small private helpers (`_zero(g)`, `_at(x, 0)`) in place."""
        if depth > 3:
            return expr
        count = 0
        for node in ast.walk(expr):
            count += 1
            if count > 500:
                return None
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            name = node.func.id
            helper = outside.get(name) if name not in self.rename and name not in self.local \
                else None
            if not (inspect.isfunction(helper) and helper.__name__.startswith("_")
                    and helper.__module__ == self.module and not node.keywords
                    and all(isinstance(a, (ast.Name, ast.Constant)) for a in node.args)):
                continue
            replacement = self._helper_body(helper, node.args)
            if replacement is None:
                continue
            if self._rename_outside(replacement, helper) is None:
                continue
            node.func = ast.Name("_inlined_", ast.Load())  # replaced just below
            node.args = [replacement]
        expr = _Unwrap().visit(expr)
        return expr

    def _helper_body(self, helper, call_args: list) -> ast.AST | None:
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(helper)))
        except (OSError, TypeError, SyntaxError):
            return None
        func = tree.body[0] if tree.body and isinstance(tree.body[0], ast.FunctionDef) else None
        if func is None:
            return None
        a = func.args
        if a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.posonlyargs \
                or len(a.args) != len(call_args):
            return None
        body = [s for s in func.body if not (isinstance(s, ast.Expr)
                                             and isinstance(s.value, ast.Constant))]
        if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
            return None
        mapping = {p.arg: arg for p, arg in zip(a.args, call_args)}
        result = _copy(body[0].value)

        class Substitute(ast.NodeTransformer):
            def visit_Name(self, n):
                return _copy(mapping[n.id]) if n.id in mapping else n

        return Substitute().visit(result)

    def _rename_outside(self, expr: ast.AST, helper) -> ast.AST | None:
        """Names the helper takes from its module become names known to the converter."""
        try:
            theirs = _outside(helper)
        except (TypeError, ValueError):
            return None
        for node in ast.walk(expr):
            if isinstance(node, ast.Name) and node.id in theirs and node.id not in self.rename \
                    and node.id not in self.local:
                if self.outside.get(node.id, theirs[node.id]) is not theirs[node.id]:
                    return None
                self.outside[node.id] = theirs[node.id]
        return expr

    def _fold(self, expr: ast.AST) -> ast.AST:
        """`type(v) is float` is always true in the generated code: fold it and its branch."""
        convert = self

        class Fold(ast.NodeTransformer):
            def visit_Compare(self, node):
                self.generic_visit(node)
                if (convert.builtin_type and len(node.ops) == 1
                        and isinstance(node.ops[0], (ast.Is, ast.IsNot))
                        and isinstance(node.left, ast.Call)
                        and isinstance(node.left.func, ast.Name) and node.left.func.id == "type"
                        and len(node.left.args) == 1 and isinstance(node.left.args[0], ast.Name)
                        and (node.left.args[0].id in convert.rename
                             or node.left.args[0].id in convert.local)
                        and isinstance(node.comparators[0], ast.Name)
                        and node.comparators[0].id == "float"):
                    return ast.Constant(isinstance(node.ops[0], ast.Is))
                return node

            def visit_IfExp(self, node):
                self.generic_visit(node)
                if isinstance(node.test, ast.Constant):
                    return node.body if node.test.value else node.orelse
                return node

        return Fold().visit(expr)


class _Unwrap(ast.NodeTransformer):
    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "_inlined_":
            return node.args[0]
        return node


def _copy(node: ast.AST) -> ast.AST:
    return ast.parse(ast.unparse(node), mode="eval").body


class _Sym:
    """A placeholder number: arithmetic on it writes the expression instead of computing it."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __bool__(self):  # a branch on a symbol: this rule must be written from its source
        raise TypeError("branch on a symbolic value")

    def _bin(self, other, op, flip=False):
        if isinstance(other, _Sym):
            o = other.text
        elif type(other) in (int, float) and math.isfinite(other):
            o = repr(other)
        else:
            return NotImplemented
        a, b = (o, self.text) if flip else (self.text, o)
        return _Sym(f"({a} {op} {b})")

    def __add__(self, o): return self._bin(o, "+")  # noqa: E704
    def __radd__(self, o): return self._bin(o, "+", True)  # noqa: E704
    def __sub__(self, o): return self._bin(o, "-")  # noqa: E704
    def __rsub__(self, o): return self._bin(o, "-", True)  # noqa: E704
    def __mul__(self, o): return self._bin(o, "*")  # noqa: E704
    def __rmul__(self, o): return self._bin(o, "*", True)  # noqa: E704
    def __truediv__(self, o): return self._bin(o, "/")  # noqa: E704
    def __rtruediv__(self, o): return self._bin(o, "/", True)  # noqa: E704
    def __pow__(self, o): return self._bin(o, "**")  # noqa: E704
    def __rpow__(self, o): return self._bin(o, "**", True)  # noqa: E704
    def __neg__(self): return _Sym(f"(-{self.text})")  # noqa: E704
    def __pos__(self): return _Sym(f"(+{self.text})")  # noqa: E704


def _names(code) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _names(const)
    return names


def _rule_by_symbols(vjp: Callable, arity: int):
    """Run the rule on placeholders: works for branch-free rules of any arity (sum, dot)."""
    code = _code(vjp)
    if code is None or {"sum", "fsum", "math", "reduce"} & _names(code):
        return None  # builtin summation may be compensated: not the same as a chain of +
    try:
        shares = vjp(_Sym("{g}"), _Sym("{out}"), *[_Sym(f"{{x{i}}}") for i in range(arity)])
        shares = tuple(shares)
    except Exception:  # noqa: BLE001 - any failure means: call the rule instead
        return None
    if len(shares) != arity:
        return None
    texts = []
    for s in shares:
        if isinstance(s, _Sym):
            texts.append(s.text[1:-1] if s.text.startswith("(") and _balanced(s.text) else s.text)
        elif type(s) in (int, float) and math.isfinite(s):
            texts.append(repr(s))
        else:
            return None
    return _Template((), texts, how="inline")


def _balanced(text: str) -> bool:
    """True when the outer parentheses of `text` enclose all of it."""
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and i < len(text) - 1:
            return False
    return True


def _rule_template(prim, arity: int, glob: _Globals) -> _Template:
    """How `prim`'s rule with `arity` inputs is written: inline if that is exactly the rule
    (checked on random numbers against the rule itself), else a call of the rule."""
    for make in (lambda: _rule_from_source(prim.vjp, arity, glob, prim.name),
                 lambda: _rule_by_symbols(prim.vjp, arity)):
        template = make()
        if template is not None and _agrees(prim, arity, template, glob):
            return template
    name = glob.bind(prim.vjp, f"{prim.name}_rule")
    return _Template(call=name, how="called")


def _sample_inputs(rng: random.Random, arity: int) -> list[float]:
    kind = rng.random()
    if kind < 0.4:
        return [rng.uniform(0.1, 3.0) for _ in range(arity)]
    if kind < 0.8:
        return [rng.uniform(-3.0, 3.0) for _ in range(arity)]
    return [rng.choice((0.0, -1.0, 1.0, 2.0, 1e16, -1e16, 0.5)) for _ in range(arity)]


def _agrees(prim, arity: int, template: _Template, glob: _Globals) -> bool:
    """Does the template compute exactly what the rule computes? Tried on random inputs."""
    params = ["g", "out"] + [f"x{i}" for i in range(arity)]
    lines = [f"def _check({', '.join(params)}):"]
    for line in template.block or ():
        lines.append(f"    {_unfill(line)}")
    for target, expr in template.assigns:
        lines.append(f"    {_unfill(target)} = {_unfill(expr)}")
    lines.append(f"    return ({''.join(_unfill(s) + ', ' for s in template.shares)})")
    namespace = dict(glob.namespace)
    try:
        exec(builtins.compile("\n".join(lines), "<check>", "exec"), namespace)
    except SyntaxError:
        return False
    check = namespace["_check"]
    rng = random.Random(arity)
    tried = 0
    for _ in range(60):
        xs = _sample_inputs(rng, arity)
        g = rng.choice((1.0, -0.5, 2.0, rng.uniform(-2, 2)))
        try:
            out = prim.forward(*xs)
            want = tuple(prim.vjp(g, out, *xs))
        except Exception:  # noqa: BLE001 - outside the domain: try other numbers
            continue
        try:
            got = check(g, out, *xs)
        except Exception:  # noqa: BLE001
            return False
        if len(got) != len(want) or not all(_same(a, b) for a, b in zip(got, want)):
            return False
        tried += 1
        if tried >= 12:
            break
    return tried > 0


def _fill(template: str, names: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: names[m.group(1)], template)


def _unfill(template: str) -> str:
    return _PLACEHOLDER.sub(lambda m: m.group(1), template)


def _same(a, b) -> bool:
    """Bit-for-bit equality of two floats (NaN equals NaN; 0.0 and -0.0 differ)."""
    if a != a or b != b:
        return a != a and b != b
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def _forward_template(prim, arity: int, glob: _Globals) -> str:
    """The forward of `prim` on `arity` inputs as text: an operator, a sum, or a call."""
    forward = prim.forward
    args = [f"{{x{i}}}" for i in range(arity)]
    if arity == 2 and forward in _BINARY:
        return f"{args[0]} {_BINARY[forward]} {args[1]}"
    if arity == 1 and forward is operator.neg:
        return f"-{args[0]}"
    total = glob.bind(builtins.sum, "sum")
    candidates = []
    if prim.name == "sum":
        candidates.append(f"{total}(({', '.join(args)},), 0.0)")
    if prim.name == "dot" and arity % 2 == 0 and arity:
        n = arity // 2
        products = [f"{args[i]} * {args[n + i]}" for i in range(n)]
        candidates.append(f"{total}(({', '.join(products)},), 0.0)")
    for text in candidates:
        if _forward_agrees(prim, arity, text, glob):
            return text
    return f"{glob.bind(forward, prim.name)}({', '.join(args)})"


def _forward_agrees(prim, arity: int, text: str, glob: _Globals) -> bool:
    params = [f"x{i}" for i in range(arity)]
    source = f"def _check({', '.join(params)}):\n    return {_unfill(text)}"
    namespace = dict(glob.namespace)
    exec(builtins.compile(source, "<check>", "exec"), namespace)
    rng = random.Random(arity + 7)
    for _ in range(8):
        xs = _sample_inputs(rng, arity)
        if not _same(namespace["_check"](*xs), prim.forward(*xs)):
            return False
    return True


def _seq(items: list[str], brackets: bool = False) -> str:
    """`a, b` (or `(a, b)`); one item is `(a,)`, none `()`."""
    if len(items) == 1:
        return f"({items[0]},)"
    text = ", ".join(items)
    return f"({text})" if brackets or not items else text


def _show(prim, args: list[str]) -> str:
    """How a comment writes the operation: `a * b`, `-a`, `1/a`, `tanh(a)`."""
    symbol = prim.symbol
    if len(args) == 2 and symbol and symbol.isascii() and not symbol.isalpha() and symbol != "1/x":
        return f"{args[0]} {symbol} {args[1]}"
    if len(args) == 1 and symbol == "neg":
        return f"-{args[0]}"
    if len(args) == 1 and symbol == "1/x":
        return f"1/{args[0]}"
    return f"{prim.name}({', '.join(args)})"


def _doc(prim) -> str:
    doc = (prim.vjp.__doc__ or "").strip().splitlines()
    return doc[0].strip() if doc else ""


# ---- from a recorded graph to source --------------------------------------------------------


class Trace:
    """One traced path through the function: its guards, its generated source and code."""

    def __init__(self, source: str, function: Callable, live: list[Value], param_index: list[int],
                 guards: list[str], operations: int):
        self.source = source
        self.function = function
        self.live = live  # leaves read from outside at every call: used params first
        self.param_index = param_index  # position in `params` of each used parameter
        self.guards = guards  # the recorded comparisons, as text
        self.operations = operations
        self.checked = False


_IDENT = re.compile(r"[^0-9a-zA-Z_]+")


class _Namer:
    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, wish: Any, fallback: str) -> str:
        if wish and not isinstance(wish, str):  # .label is a plain attribute: anything goes
            wish = str(wish)
        name = _IDENT.sub("_", wish).strip("_") if wish else ""
        if not name or name[0].isdigit() or keyword.iskeyword(name) or name.startswith("g_"):
            name = fallback if not name else f"v_{name}"
        base, k = name, 2
        while name in self.used:
            name, k = f"{base}_{k}", k + 1
        self.used.add(name)
        return name


def _number(x: float, glob: _Globals) -> str:
    if math.isfinite(x):
        return repr(x) if math.copysign(1.0, x) > 0 else f"({x!r})"  # (-2.0) ** 2: parenthesised
    return glob.bind(x, "inf" if x > 0 else "minus_inf" if x < 0 else "nan")


def _bound(other, glob: _Globals) -> str:
    """The number a Value was compared with, written so the guard compares as the trace did.

    A float compared with an int or a Fraction compares exactly (0.3333333333333333 < 1/3);
    float(other) would round (and overflow for 10**400), and the guard would answer wrongly.
    """
    if type(other) is float:
        return _number(other, glob)
    if type(other) is int:
        return repr(other)
    return glob.bind(other, "bound")


def _generate(name: str, root: Value, guards: list, inputs: dict[int, tuple[int, str]],
              params: dict[int, tuple[int, str]], made: set[int] | None,
              max_nodes: int | None) -> dict:
    """Write the source of one trace: the forward pass with its guards, then the backward pass.

    `inputs` and `params` map id(leaf) -> (position, name). Returns the source, the namespace
    it runs in, its function's name, the outside Values it reads and the guards as text.
    """
    glob = _Globals()
    namer = _Namer()
    for _pos, nm in inputs.values():
        namer.used.add(nm)
    order = topological_order(root)  # the backward pass walks this, reversed
    index = {node: i for i, node in enumerate(order)}

    # Forward order: each guard right after the values it compares, then the rest of the graph,
    # so a call that takes another path stops before computing anything that path would not.
    forward: list = []  # Values, and ("guard", k) markers
    placed: set[int] = set()

    def place(target: Value) -> None:
        stack = [(target, False)]
        while stack:
            node, ready = stack.pop()
            if id(node) in placed:
                continue
            if ready:
                placed.add(id(node))
                forward.append(node)
                continue
            stack.append((node, True))
            stack.extend((p, False) for p in reversed(node.parents) if id(p) not in placed)

    for k, (value, _op, other, _outcome) in enumerate(guards):
        place(value)
        if isinstance(other, Value):
            place(other)
        forward.append(("guard", k))
    place(root)
    operations = sum(1 for n in forward if isinstance(n, Value) and n.parents)
    if max_nodes is not None and operations > max_nodes:
        raise CompileError(
            f"compile({name}): the traced graph has {operations:,} operations, more than "
            f"max_nodes={max_nodes:,}. CPython compiles straight-line code at about 15 us and "
            f"3 KB of memory per line, about three lines per operation, so this would take "
            f"~{operations * 45e-6:.0f} s and ~{operations * 9e-6:.1f} GB once. Compile a "
            f"per-sample (or per-batch) function instead, or pass a larger max_nodes.")

    # Leaves: arguments, parameters, constants made by the function, Values from outside.
    names: dict[int, str] = {}
    live: list[Value] = []
    param_index: list[int] = []
    live_names: list[str] = []
    captured: list[Value] = []
    for node in forward:
        if not isinstance(node, Value) or node.parents:
            continue
        key = id(node)
        if key in inputs:
            names[key] = inputs[key][1]
        elif key in params:
            names[key] = namer(params[key][1], f"p{params[key][0]}")
            live.append(node)
            param_index.append(params[key][0])
            live_names.append(names[key])
        elif made is not None and key in made:
            names[key] = _number(node.data, glob)  # a constant the function made: a literal
        else:  # a Value from outside the function (say, a weight): read at every call
            captured.append(node)
    for node in captured:
        names[id(node)] = namer(node.label, f"n{index[node]}" if node in index else "c")
        live.append(node)
        live_names.append(names[id(node)])

    function_name = namer(name, "traced")
    lines = [f"def {function_name}(_inputs, _live, _param_grads):",
             f"    # {len(order)} Values, {operations} operation{'s' * (operations != 1)}; "
             "g_v holds d(output)/dv"]
    if inputs:
        arg_names = [nm for _pos, nm in sorted(inputs.values())]
        lines.append(f"    {_seq(arg_names)} = _inputs")
    if live_names:
        lines.append(f"    {_seq(live_names)} = _live  # read from outside at every call")
    lines.append("    # forward: each primitive's float forward")
    guard_texts = []
    for node in forward:
        if isinstance(node, tuple):
            value, op, other, outcome = guards[node[1]]
            a = names[id(value)]
            b = names[id(other)] if isinstance(other, Value) else _bound(other, glob)
            test = f"{a} {op} {b}"
            guard_texts.append(f"{test} is {outcome}")
            cond = f"not ({test})" if outcome else test
            lines.append(f"    if {cond}:  # guard: {outcome} when traced")
            lines.append("        return None")
            continue
        if not node.parents:
            continue
        prim = PRIMITIVES[node.op]
        parents = node.parents
        wish = node.label or (f"n{index[node]}" if node in index else "")
        nm = namer(wish, f"m{len(names)}")
        text = _fill(_forward_template_cached(prim, len(parents), glob),
                     {f"x{i}": names[id(p)] for i, p in enumerate(parents)})
        names[id(node)] = nm
        lines.append(f"    {nm} = {text}  # {prim.name}")

    # Backward: reversed topological order; each node's shares go to its parents in argument
    # order; a gradient starts as its first share, later shares are added with +.
    def receives(node: Value) -> bool:  # does this Value get a gradient variable?
        return bool(node.parents) or id(node) in inputs or id(node) in params

    statements: list[tuple[str, set[str], str, bool]] = []  # (targets, uses, text, pure)
    has_grad: set[int] = set()
    root_name = names[id(root)]
    each_share = _LEAVES_ADD_EACH_SHARE  # how backward() adds onto a leaf's earlier .grad
    if id(root) in params and each_share:
        statements.append((f"g_{root_name}", {f"g_{root_name}"},
                           f"g_{root_name} = g_{root_name} + 1.0", True))
    elif receives(root):
        statements.append((f"g_{root_name}", set(), f"g_{root_name} = 1.0", True))
    has_grad.add(id(root))
    temp = 0
    for node in reversed(order):
        parents = node.parents
        if not parents:
            continue
        prim = PRIMITIVES[node.op]
        out = names[id(node)]
        g = f"g_{out}"
        arity = len(parents)
        template = _rule_template_cached(prim, arity, glob)
        parent_names = {f"x{i}": names[id(p)] for i, p in enumerate(parents)}
        shown = _show(prim, [names[id(p)] for p in parents])
        if len(shown) > 60:
            shown = shown[:57] + "..."
        how = "  (rule called)" if template.call else ""
        statements.append(("", set(), f"# {out} = {shown}   {prim.name}: {_doc(prim)}{how}",
                           False))
        fill = {"g": g, "out": out, **parent_names}
        if template.call:
            temp += 1
            shares = [f"_s{temp}_{i}" for i in range(arity)]
            args = ", ".join([g, out] + [names[id(p)] for p in parents])
            statements.append((" ".join(shares), {g, out} | set(parent_names.values()),
                               f"{_seq(shares)} = {template.call}({args})", False))
            share_exprs = [(s, True) for s in shares]
        elif template.block is not None:
            temp += 1
            for i in range(arity):
                fill[f"s{i}"] = f"_s{temp}_{i}"
            for name in sorted({m for line in template.block
                                for m in _PLACEHOLDER.findall(line) if m.startswith("t_")}):
                fill[name] = f"_r{temp}_{name[2:]}"
            text = "\n".join(_fill(line, fill) for line in template.block)
            targets = " ".join(v for k, v in fill.items() if k[0] in "st" and k != "g")
            statements.append((targets, _uses(text), text, template.block_pure))
            share_exprs = [(f"_s{temp}_{i}", True) for i in range(arity)]
        else:
            for target, _expr in template.assigns:
                temp += 1
                fill[target[1:-1]] = f"_r{temp}_{target[3:-1]}"
            for (target, expr), pure in zip(template.assigns, template.pure_assigns):
                t, text = _fill(target, fill), _fill(expr, fill)
                statements.append((t, _uses(text), f"{t} = {text}", pure))
            share_exprs = [(_fill(s, fill), p)
                           for s, p in zip(template.shares, template.pure_shares)]
        for parent, (expr, pure) in zip(parents, share_exprs):
            pid = id(parent)
            if not receives(parent):  # a constant or an outside Value: no gradient wanted
                statements.append(("", _uses(expr), f"_ = {expr}  # for a constant; kept as it "
                                   "could raise", pure))
                continue
            target = f"g_{names[pid]}"
            if pid in has_grad or (pid in params and each_share):
                statements.append((target, _uses(expr) | {target},
                                   f"{target} = {target} + {_operand(expr)}", pure))
            else:
                has_grad.add(pid)
                statements.append((target, _uses(expr), f"{target} = {expr}", pure))

    # What is returned: the value, the arguments' gradients, the parameters' new .grad.
    arg_grads = []
    for key, (_pos, nm) in sorted(inputs.items(), key=lambda kv: kv[1][0]):
        # backward() adds onto a zeroed .grad, 0.0 + ..., which turns a -0.0 into 0.0
        arg_grads.append(f"0.0 + g_{nm}" if key in has_grad else "0.0")
    if each_share:  # each share was added onto the .grad the call started from
        param_grads = [f"g_{names[id(node)]}" for node in live[:len(param_index)]]
    else:  # the shares are summed first, then added to the .grad the call started from
        param_grads = [f"_start_{names[id(node)]} + g_{names[id(node)]}" if id(node) in has_grad
                       else f"_start_{names[id(node)]}" for node in live[:len(param_index)]]

    # Drop what nothing returned needs, unless it could raise (as the rule would in backward()).
    needed = set().union(*[_uses(t) for t in arg_grads + param_grads])
    kept = []
    for targets, uses, text, pure in reversed(statements):
        if text.startswith("#"):
            kept.append(text)
        elif not pure or any(t in needed for t in targets.split()):
            kept.append(text)
            needed |= uses
    kept.reverse()
    lines.append("    # backward: each primitive's rule, nodes in reverse topological order")
    if param_grads:
        starts = [(f"g_{names[id(n)]}" if each_share else f"_start_{names[id(n)]}")
                  for n in live[:len(param_index)]]
        lines.append(f"    {_seq(starts)} = _param_grads  # .grad before this call")
    for i, text in enumerate(kept):
        if text.startswith("#") and (i + 1 == len(kept) or kept[i + 1].startswith("#")):
            continue  # nothing of this node's backward is needed
        lines.extend("    " + line for line in text.split("\n"))
    if any(a.startswith("0.0 +") for a in arg_grads):
        lines.append("    # 0.0 + g: backward() adds onto a zeroed .grad (turning -0.0 into 0.0)")
    lines.append(f"    return {root_name}, {_seq(arg_grads, True)}, {_seq(param_grads, True)}")
    return {"source": "\n".join(lines) + "\n", "namespace": glob.namespace,
            "function": function_name, "live": live, "param_index": param_index,
            "guards": guard_texts, "operations": operations}


_TIGHT = (ast.Name, ast.Constant, ast.Call, ast.Attribute, ast.Subscript, ast.UnaryOp)


def _operand(expr: str) -> str:
    """`expr` as the right operand of `+`: in parentheses unless it binds tighter than `+`
    (a share `a + b` or `x if c else y` added to a gradient must stay one term)."""
    try:
        node = ast.parse(expr, mode="eval").body
    except SyntaxError:
        return f"({expr})"
    if isinstance(node, _TIGHT) or (isinstance(node, ast.BinOp) and isinstance(
            node.op, (ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.MatMult))):
        return expr
    return f"({expr})"


_NAME_RE = re.compile(r"(?<![\w.])([A-Za-z_]\w*)")


def _uses(text: str) -> set[str]:
    return set(_NAME_RE.findall(text))


def _leaves_add_each_share() -> bool:
    """Does backward() add each share onto a leaf's earlier .grad, or their sum?

    The two differ in the last bit once a leaf already holds a gradient, and a compiled step
    with `params` must do what backward() does. Asked once, of backward() itself: a leaf holding
    1e16 gets two shares of 1.0; added one by one each rounds away (ties to even), their sum 2.0
    does not.
    """
    w = Value(1.0)
    w.grad = 1e16
    (w * 1.0 + w * 1.0).backward()
    return w.grad == 1e16


_LEAVES_ADD_EACH_SHARE = _leaves_add_each_share()


# Templates depend only on the op table entry and the arity: cache them per primitive object,
# rule and forward (so a changed table entry gets new templates).
_TEMPLATES: dict = {}


def _cached(kind: str, prim, arity: int, glob: _Globals, make):
    key = (kind, prim.name, id(prim), id(prim.vjp), id(prim.forward), arity)
    entry = _TEMPLATES.get(key)
    if entry is None:
        scratch = _Globals()
        entry = (make(prim, arity, scratch), scratch.namespace)
        _TEMPLATES[key] = entry
    template, namespace = entry
    # Bind the template's objects into this trace's namespace under the same names.
    for name, obj in namespace.items():
        if name != "__builtins__":
            if glob.namespace.get(name, obj) is not obj:
                raise CompileError(f"internal name clash for {name}")
            glob.namespace[name] = obj
            glob._by_id[id(obj)] = name
    return template


def _rule_template_cached(prim, arity, glob):
    return _cached("rule", prim, arity, glob, _rule_template)


def _forward_template_cached(prim, arity, glob):
    return _cached("forward", prim, arity, glob, _forward_template)


# ---- the compiled function -------------------------------------------------------------------


class CompiledFunction:
    """`f` compiled: call it with numbers, get `(value, grads)`; see `autodiff.compile`."""

    def __init__(self, func: Callable, params=None, static_argnums: Sequence[int] = (),
                 max_nodes: int | None = MAX_NODES, max_traces: int = MAX_TRACES,
                 check: str = "first") -> None:
        if not callable(func):
            raise TypeError(f"compile() needs a function, got {type(func).__name__}: {func!r}")
        if check not in ("first", "always", "never"):
            raise ValueError(f"compile(check=...) must be 'first', 'always' or 'never', "
                             f"got {check!r}")
        self.func = func
        self.name = getattr(func, "__name__", type(func).__name__)
        if self.name == "<lambda>":
            self.name = "f"
        try:
            self._signature = inspect.signature(func)
        except (TypeError, ValueError):
            self._signature = None
        self.static_argnums = self._static_positions(static_argnums)
        if max_nodes is not None and (type(max_nodes) is not int or max_nodes < 1):
            raise ValueError(f"compile(max_nodes=...) must be a positive int or None, got "
                             f"{max_nodes!r}")
        if type(max_traces) is not int or max_traces < 1:
            raise ValueError(f"compile(max_traces=...) must be a positive int, got "
                             f"{max_traces!r}")
        self.max_nodes = max_nodes
        self.max_traces = max_traces
        self.check = check
        self.params, self.param_names = _params(params)
        self._param_ids = {id(p): (i, n) for i, (p, n) in
                           enumerate(zip(self.params, self.param_names))}
        self._traces: OrderedDict = OrderedDict()  # key -> list of Traces
        self._lock = threading.Lock()  # the cache is shared by every thread calling the step
        self._accepted: set[int] = set()  # numbers of arguments the signature accepts
        self._last: Trace | None = None
        self.trace_count = 0

    def _static_positions(self, static_argnums) -> tuple[int, ...]:
        """static_argnums checked: ints >= 0 that name an argument the function takes."""
        if isinstance(static_argnums, (str, bytes)) or not isinstance(static_argnums, Iterable):
            raise TypeError(f"compile(static_argnums=...) must be a sequence of argument "
                            f"positions, got {static_argnums!r}")
        positions = tuple(static_argnums)
        takes = None  # how many positional arguments the function takes (None: any number)
        if self._signature is not None:
            plist = list(self._signature.parameters.values())
            if not any(p.kind == p.VAR_POSITIONAL for p in plist):
                takes = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in plist)
        for i in positions:
            if type(i) is not int or i < 0:
                raise ValueError(f"compile(static_argnums=...): each position must be an int "
                                 f">= 0, got {i!r} in {static_argnums!r}")
            if takes is not None and i >= takes:
                raise ValueError(f"compile(static_argnums=...): position {i} is past the "
                                 f"{takes} arguments {self.name} takes")
        return tuple(sorted(set(positions)))

    # -- public face --

    @property
    def source(self) -> str:
        """The generated Python of the trace used last (trace it by calling the step once)."""
        if self._last is None:
            raise RuntimeError(f"compiled {self.name} has not been traced yet: call it once "
                               "with example arguments, then read .source")
        return self._last.source

    @property
    def traces(self) -> list[Trace]:
        """Every trace kept, oldest first."""
        with self._lock:
            return [t for traces in self._traces.values() for t in traces]

    def __repr__(self) -> str:
        return f"<compiled {self.name}: {len(self.traces)} trace(s)>"

    def __call__(self, *args, **kwargs):
        """`(value, grads)`; with `params`, also adds their gradients into `.grad`."""
        if kwargs:
            raise TypeError(f"compiled {self.name} takes positional arguments only, got "
                            f"{', '.join(kwargs)}")
        value, grads, param_grads = self._evaluate(args, None)
        for p, g in zip(self.params, param_grads):
            p.grad = g
        return value, grads

    def evaluate(self, *args) -> tuple[float, tuple, list[float]]:
        """`(value, grads, param_grads)` without touching any `.grad`: `param_grads` holds
        d value / d p for each of `params`, in their order (0.0 for one the trace does not use).
        """
        return self._evaluate(args, [0.0] * len(self.params))

    def _evaluate(self, args: tuple, start: list[float] | None):
        """Run (tracing first when needed). `start`: the params' gradients to add onto (None:
        their current .grad). Returns the value, the args' gradients and the params' totals."""
        if len(args) not in self._accepted:  # a number of arguments not seen yet
            self._check_arity(args)
            self._accepted.add(len(args))
        flat: list[float] = []
        structure = []
        for i, arg in enumerate(args):
            if i in self.static_argnums:
                try:
                    hash(arg)
                except TypeError:
                    raise TypeError(f"compiled {self.name}: static argument {i} must be "
                                    f"hashable (it selects the trace), got {arg!r}") from None
                structure.append(("static", type(arg), _static_key(arg)))
            else:
                kind = type(arg)
                if kind is float:  # the common case, without a path name
                    flat.append(arg)
                    structure.append(0)
                else:
                    structure.append(_flatten(arg, self._arg_name(i), flat, self.name))
        key = tuple(structure)
        if start is None:
            start = [p.grad for p in self.params]
        if is_anomaly_enabled():
            # Anomaly mode checks every operation and share as it runs: run eagerly, so its
            # reports come as they would without compile.
            value, arg_grads, param_grads = self._eager(args, key, start)
            return value, self._structured(key, arg_grads), param_grads
        for trace in list(self._traces.get(key, ())):
            result = self._run(trace, flat, start)
            if result is not None:
                with self._lock:
                    if key in self._traces:
                        self._traces.move_to_end(key)
                wanted = self.check == "always" or not trace.checked and self.check == "first"
                if wanted:
                    self._verify(trace, args, key, result, start)
                    trace.checked = True
                return self._finish(trace, key, result, start)
        trace = self._trace(args, key)
        result = self._run(trace, flat, start)
        if result is None:
            raise CompileError(f"compiled {self.name}: a fresh trace rejects its own arguments "
                               "(a comparison gave different answers on the same numbers)")
        if self.check == "always":
            self._verify(trace, args, key, result, start)
        return self._finish(trace, key, result, start)

    # -- the parts --

    def _arg_name(self, i: int) -> str:
        if self._signature is not None:
            plist = list(self._signature.parameters.values())
            if i < len(plist) and plist[i].kind in (plist[i].POSITIONAL_ONLY,
                                                    plist[i].POSITIONAL_OR_KEYWORD):
                return plist[i].name
            var = [p for p in plist if p.kind == p.VAR_POSITIONAL]
            if var:
                return f"{var[0].name}_{i}"
        return f"arg{i}"

    def _check_arity(self, args: tuple) -> None:
        if self._signature is None:
            return
        try:
            self._signature.bind(*args)
        except TypeError as error:
            shown = ", ".join(self._signature.parameters)
            raise TypeError(f"compiled {self.name}({shown}): {error} "
                            f"(got {len(args)} argument{'s' * (len(args) != 1)})") from None

    def _run(self, trace: Trace, flat: list[float], start: list[float]):
        live = [v.data for v in trace.live]
        return trace.function(flat, live, [start[i] for i in trace.param_index])

    def _finish(self, trace: Trace, key, result, start: list[float]):
        self._last = trace
        value, arg_grads, used_param_grads = result
        param_grads = list(start)
        for i, g in zip(trace.param_index, used_param_grads):
            param_grads[i] = g
        return value, self._structured(key, arg_grads), param_grads

    @staticmethod
    def _structured(key, arg_grads: Sequence[float]) -> tuple:
        """The flat gradients in the structure of the arguments (None for a static one)."""
        grads = []
        pos = 0
        for part in key:
            if isinstance(part, tuple) and part and part[0] == "static":
                grads.append(None)
            else:
                grad, pos = _rebuild(part, arg_grads, pos)
                grads.append(grad)
        return tuple(grads)

    def _leaves(self, args: tuple, key) -> tuple[list, dict]:
        """The arguments as Values (labelled by argument name) and {id: (position, name)}."""
        namer = _Namer()
        inputs: dict[int, tuple[int, str]] = {}
        call_args = []
        count = 0
        for i, (arg, part) in enumerate(zip(args, key)):
            if isinstance(part, tuple) and part and part[0] == "static":
                call_args.append(arg)
                continue
            flat: list[float] = []
            _flatten(arg, "", flat, self.name)
            paths = _paths(part, self._arg_name(i))
            leaves = []
            for path, x in zip(paths, flat):
                leaf = Value(x, label=path)
                inputs[id(leaf)] = (count, namer(path, f"a{count}"))
                count += 1
                leaves.append(leaf)
            call_args.append(_rebuild(part, leaves)[0])
        return call_args, inputs

    def _trace(self, args: tuple, key) -> Trace:
        if not is_grad_enabled():
            with enable_grad():  # a trace records the graph, whatever the caller's mode
                return self._trace(args, key)
        call_args, inputs = self._leaves(args, key)
        keep = [call_args]  # the input Values stay alive while their ids are in use
        recorder = _Recorder()
        previous_profile = sys.getprofile()
        token = _TRACE.set(recorder)
        _install_hook()
        try:
            if previous_profile is None:
                recorder.profiled = True
                sys.setprofile(recorder.profile)
            try:
                out = self.func(*call_args)
            finally:
                if recorder.profiled:
                    sys.setprofile(None)
        finally:
            intact = _uninstall_hook()
            _TRACE.reset(token)
        if not intact:
            raise CompileError(f"compiled {self.name}: autodiff.value.compare_hook was replaced "
                               "while tracing, so comparisons may have been missed")
        if recorder.reads:
            raise CompileError(
                f"compiled {self.name}: while tracing, {recorder.reads[0]}. A trace records "
                "operations on Values; a number taken out of one would be frozen into the "
                "generated code and be wrong on the next call. Compute with autodiff operations "
                "(autodiff.exp(v), not math.exp(v)), and print or log numbers outside the "
                "compiled function.")
        if not isinstance(out, Value):
            raise TypeError(f"compile({self.name}): the function must return a Value (the "
                            f"output to differentiate), got {type(out).__name__}: {out!r}")
        made = recorder.made if recorder.profiled else None
        generated = _generate(self.name, out, recorder.guards, inputs, self._param_ids, made,
                              self.max_nodes)
        namespace = generated["namespace"]
        # A file name of its own, known to linecache, so tracebacks show the generated line.
        filename = f"<compiled {self.name} #{next(_SERIAL)}>"
        source = generated["source"]
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        code = builtins.compile(source, filename, "exec")
        exec(code, namespace)
        trace = Trace(generated["source"], namespace[generated["function"]], generated["live"],
                      generated["param_index"], generated["guards"], generated["operations"])
        weakref.finalize(trace, linecache.cache.pop, filename, None)  # the lines go with it
        del keep
        with self._lock:
            self._traces.setdefault(key, []).append(trace)
            self._traces.move_to_end(key)
            self.trace_count += 1
            while sum(len(t) for t in self._traces.values()) > self.max_traces:
                oldest_key = next(iter(self._traces))
                self._traces[oldest_key].pop(0)
                if not self._traces[oldest_key]:
                    del self._traces[oldest_key]
        return trace

    def _eager(self, args: tuple, key, start: list[float]) -> tuple[float, list, list]:
        """Run the function on Values and backward(): the value, the arguments' gradients
        (flat) and every parameter's gradient added onto `start`; no outside .grad changes."""
        if not is_grad_enabled():  # eager execution needs its graph, even inside no_grad()
            with enable_grad():
                return self._eager(args, key, start)
        call_args, inputs = self._leaves(args, key)
        root = self.func(*call_args)
        if not isinstance(root, Value):
            raise TypeError(f"compile({self.name}): the function must return a Value, got "
                            f"{type(root).__name__}")
        order = topological_order(root)
        # backward() writes .grad everywhere; Values from outside must not notice the check.
        outside = [n for n in order if id(n) not in inputs] + self.params
        saved = [n.grad for n in outside]
        try:
            for p, g in zip(self.params, start):  # backward() adds onto where we start
                p.grad = g
            root.backward()
            param_grads = [p.grad for p in self.params]
        finally:
            for n, g in zip(outside, saved):
                n.grad = g
        arg_grads = [0.0] * len(inputs)
        for leaf in _walk(call_args):
            arg_grads[inputs[id(leaf)][0]] = leaf.grad
        return root.data, arg_grads, param_grads

    def _verify(self, trace: Trace, args: tuple, key, result, start: list[float]) -> None:
        """Run the function eagerly and compare every number, bit for bit."""
        value, arg_grads, param_grads = result
        eager_value, eager_args, eager_params = self._eager(args, key, start)
        problems = []
        if not _same(value, eager_value):
            problems.append(f"value {value!r} instead of {eager_value!r}")
        for k, (a, b) in enumerate(zip(arg_grads, eager_args)):
            if not _same(a, b):
                problems.append(f"gradient {k} {a!r} instead of {b!r}")
                break
        for i, a in zip(trace.param_index, param_grads):
            if not _same(a, eager_params[i]):
                problems.append(f"gradient of parameter {self.param_names[i]} {a!r} instead "
                                f"of {eager_params[i]!r}")
                break
        if problems:
            raise CompileError(
                f"compiled {self.name}: reusing a trace gave {problems[0]} where running the "
                "function gives the other number. The function depends on its inputs in a way "
                "the trace cannot see: it reads v.data (or a number derived from it), draws "
                "random numbers, or branches on something other than a Value comparison. "
                "Compare Values directly (`if x > 0`), keep randomness outside, or do not "
                "compile this function.")


def _walk(structure) -> Iterable[Value]:
    if isinstance(structure, Value):
        yield structure
    elif isinstance(structure, (list, tuple)):
        for item in structure:
            yield from _walk(item)


def _params(params) -> tuple[list[Value], list[str]]:
    if params is None:
        return [], []
    if isinstance(params, Mapping):
        items = list(params.items())
    else:
        items = [(getattr(p, "label", "") or f"p{i}", p) for i, p in enumerate(params)]
    seen = set()
    values, names = [], []
    for name, p in items:
        if not isinstance(p, Value):
            raise TypeError(f"compile(params=...): parameter {name!r} must be a Value, "
                            f"got {type(p).__name__}")
        if p.parents:
            raise ValueError(f"compile(params=...): parameter {name!r} is computed from other "
                             "Values; parameters must be leaves (weights)")
        if id(p) in seen:
            continue
        seen.add(id(p))
        values.append(p)
        names.append(str(name))
    return values, names


def compile(func: Callable, *, params=None, static_argnums: Sequence[int] = (),  # noqa: A001
            max_nodes: int | None = MAX_NODES, max_traces: int = MAX_TRACES,
            check: str = "first") -> CompiledFunction:
    """Compile `func(*args) -> Value` into straight-line Python on floats.

        step = compile(loss_fn)
        value, grads = step(*args)     # floats; grads has the structure of args
        print(step.source)             # the generated forward and backward pass

    Arguments are numbers or (nested) lists/tuples of numbers; each is differentiated. The
    first call (and a call with a new structure of arguments) runs `func` on Values and writes
    the graph out as code; later calls run the code. The numbers are those of
    `func(*values).backward()`, bit for bit.

    Args:
        params: leaf Values the function uses from outside (a model's weights), as a list or a
            {name: Value} mapping. Their current `.data` is read at every call, and each call
            adds their gradients into `.grad` exactly as `backward()` would. Other outside
            Values are read at every call too, but get no gradient.
        static_argnums: positions of arguments that are not numbers to differentiate (flags,
            class labels): passed to `func` as they are, and each distinct value gets its own
            trace. Their gradient is None.
        max_nodes: the largest number of operations one trace may have (None: no limit); see
            `MAX_NODES` for why there is one.
        max_traces: how many traces to keep (the least recently used goes first).
        check: "first" runs `func` eagerly once for each trace's first reuse and insists on the
            same numbers, which catches what a trace cannot see (reads of `v.data`, random
            numbers, branches that are not Value comparisons); "always" checks every call;
            "never" trusts the trace.

    Limits: tracing watches for `float(v)`, `v.detach()` and `no_grad()` through
    `sys.setprofile`, in the tracing thread only; when a profiler already holds that hook the
    watch is skipped (the first-reuse check remains) and every leaf not made by `func` is read
    at each call instead of written as a number. Comparisons made in other threads that `func`
    starts are not recorded. Operations whose result `func` throws away are not computed again,
    and `func`'s own side effects happen only when it is traced (and checked).
    """
    return CompiledFunction(func, params=params, static_argnums=static_argnums,
                            max_nodes=max_nodes, max_traces=max_traces, check=check)
