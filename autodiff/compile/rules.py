"""How each primitive is written in generated code: its forward and its rule, as text.

`autodiff.compile` writes a trace out as Python, and each operation becomes a line made from a
template of its primitive: the forward as an operator (`x0 * x1`) or a call, and the derivative
rule written out from the rule's own source (names renamed, small helpers such as `_zero(g)`
written in place), or, for a branch-free rule of any arity, from running it on placeholders.
The one idea: a template is used only when it computes exactly what the rule computes, which is
tried on random numbers against the rule itself; otherwise the generated code calls the rule.
Templates depend only on the op table's entry and the arity, so they are made once and cached.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import math
import operator
import random
import re
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

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


class Template:
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


PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _blank(text: str) -> str:
    return PLACEHOLDER.sub(lambda m: "_" + m.group(1), text)


class Globals:
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


def _rule_from_source(vjp: Callable, arity: int, glob: Globals, prim_name: str):
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
        return Template(assign_texts, shares, how="inline")

    # The block form: if statements and several returns.
    texts: list[str] = []
    lines = _block(body, "", arity, convert, texts)
    if lines is None or not _always_returns(body):
        return None
    template = Template(shares=[f"{{s{i}}}" for i in range(arity)], how="inline")
    template.block = lines
    template.block_pure = all(_is_pure(_blank(t)) for t in texts)
    return template


def _rule_from_comprehension(func: ast.FunctionDef, vjp: Callable, arity: int, glob: Globals,
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
    return Template((), shares, how="inline")


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
            lines.append(f"{indent}{seq(targets.split(', '))} = {seq(shares)}")
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
    code = getattr(vjp, "__code__", None)
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
    return Template((), texts, how="inline")


def _balanced(text: str) -> bool:
    """True when the outer parentheses of `text` enclose all of it."""
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and i < len(text) - 1:
            return False
    return True


def _make_rule_template(prim, arity: int, glob: Globals) -> Template:
    """How `prim`'s rule with `arity` inputs is written: inline if that is exactly the rule
    (checked on random numbers against the rule itself), else a call of the rule."""
    for make in (lambda: _rule_from_source(prim.vjp, arity, glob, prim.name),
                 lambda: _rule_by_symbols(prim.vjp, arity)):
        template = make()
        if template is not None and _agrees(prim, arity, template, glob):
            return template
    name = glob.bind(prim.vjp, f"{prim.name}_rule")
    return Template(call=name, how="called")


def _sample_inputs(rng: random.Random, arity: int) -> list[float]:
    kind = rng.random()
    if kind < 0.4:
        return [rng.uniform(0.1, 3.0) for _ in range(arity)]
    if kind < 0.8:
        return [rng.uniform(-3.0, 3.0) for _ in range(arity)]
    return [rng.choice((0.0, -1.0, 1.0, 2.0, 1e16, -1e16, 0.5)) for _ in range(arity)]


def _agrees(prim, arity: int, template: Template, glob: Globals) -> bool:
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
        if len(got) != len(want) or not all(same(a, b) for a, b in zip(got, want)):
            return False
        tried += 1
        if tried >= 12:
            break
    return tried > 0


def fill(template: str, names: Mapping[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: names[m.group(1)], template)


def _unfill(template: str) -> str:
    return PLACEHOLDER.sub(lambda m: m.group(1), template)


def same(a, b) -> bool:
    """Bit-for-bit equality of two floats (NaN equals NaN; 0.0 and -0.0 differ)."""
    if a != a or b != b:
        return a != a and b != b
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def _make_forward_template(prim, arity: int, glob: Globals) -> str:
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


def _forward_agrees(prim, arity: int, text: str, glob: Globals) -> bool:
    params = [f"x{i}" for i in range(arity)]
    source = f"def _check({', '.join(params)}):\n    return {_unfill(text)}"
    namespace = dict(glob.namespace)
    exec(builtins.compile(source, "<check>", "exec"), namespace)
    rng = random.Random(arity + 7)
    for _ in range(8):
        xs = _sample_inputs(rng, arity)
        if not same(namespace["_check"](*xs), prim.forward(*xs)):
            return False
    return True


def seq(items: list[str], brackets: bool = False) -> str:
    """`a, b` (or `(a, b)`); one item is `(a,)`, none `()`."""
    if len(items) == 1:
        return f"({items[0]},)"
    text = ", ".join(items)
    return f"({text})" if brackets or not items else text


def show(prim, args: list[str]) -> str:
    """How a comment writes the operation: `a * b`, `-a`, `1/a`, `tanh(a)`."""
    symbol = prim.symbol
    if len(args) == 2 and symbol and symbol.isascii() and not symbol.isalpha() and symbol != "1/x":
        return f"{args[0]} {symbol} {args[1]}"
    if len(args) == 1 and symbol == "neg":
        return f"-{args[0]}"
    if len(args) == 1 and symbol == "1/x":
        return f"1/{args[0]}"
    return f"{prim.name}({', '.join(args)})"


def doc(prim) -> str:
    doc = (prim.vjp.__doc__ or "").strip().splitlines()
    return doc[0].strip() if doc else ""


# Templates depend only on the op table entry and the arity: cache them per primitive object,
# rule and forward (so a changed table entry gets new templates).
_TEMPLATES: dict = {}


def _cached(kind: str, prim, arity: int, glob: Globals, make):
    key = (kind, prim.name, id(prim), id(prim.vjp), id(prim.forward), arity)
    entry = _TEMPLATES.get(key)
    if entry is None:
        scratch = Globals()
        # The entry holds the primitive, its rule and forward: their ids cannot be reused.
        entry = (make(prim, arity, scratch), scratch.namespace, (prim, prim.vjp, prim.forward))
        _TEMPLATES[key] = entry
    template, namespace, _alive = entry
    # Bind the template's objects into this trace's namespace under the same names.
    for name, obj in namespace.items():
        if name != "__builtins__":
            if glob.namespace.get(name, obj) is not obj:
                raise RuntimeError(f"compile: internal name clash for {name}")
            glob.namespace[name] = obj
            glob._by_id[id(obj)] = name
    return template


def rule_template(prim, arity, glob):
    return _cached("rule", prim, arity, glob, _make_rule_template)


def forward_template(prim, arity, glob):
    return _cached("forward", prim, arity, glob, _make_forward_template)

