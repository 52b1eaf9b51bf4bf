"""Emit: one trace written out as Python, the forward pass with its guards, then the backward.

The forward pass has one line per operation, each primitive's float forward, and each guard
(a comparison the trace saw, or a forward that raised) placed right after the values it looks
at, so a call that would take another path stops before computing anything that path would not.
The backward pass is the engine's own walk (`autodiff.engine.walk`) with a step that writes
instead of computing: each node's rule, written inline from its template, then one line per
share, a gradient starting as its first share and later shares added with `+`, in the order
`backward()` adds them. So the code gives `backward()`'s numbers bit for bit.

Leaves become names: the arguments, parameters (read at every call), constants the function
made (written as numbers) and Values from outside the function (read at every call, with their
history, as `backward()` would use them).
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable

from autodiff.compile.arguments import Namer
from autodiff.compile.errors import CompileError
from autodiff.compile.rules import (
    PLACEHOLDER,
    Globals,
    doc,
    fill,
    forward_template,
    rule_template,
    seq,
    show,
)
from autodiff.compile.trace import raises
from autodiff.engine import topological_order, walk
from autodiff.modes import Compared, Raised, TraceRecord
from autodiff.value import Value

#: Default largest number of operations one trace may have. CPython compiles straight-line code
#: at roughly 15 us and 3 KB of memory per line, and a traced operation becomes about three lines
#: (its forward line and one share per input), so 100,000 operations take ~5 s and ~1 GB to
#: compile once. Bigger graphs (a whole dataset in one loss) compile better per sample or batch.
MAX_NODES = 100_000


class Trace:
    """One traced path through the function: its guards, its generated source and code."""

    def __init__(self, source: str, function: Callable, live: list[Value], param_index: list[int],
                 guards: list[str], operations: int, backward_line: int = 0):
        self.source = source
        self.function = function
        self.live = live  # leaves read from outside at every call: used params first
        self.param_index = param_index  # position in `params` of each used parameter
        self.guards = guards  # the recorded decisions (comparisons, caught errors), as text
        self.operations = operations
        self.backward_line = backward_line  # the source's first line of the backward pass
        self.checked = False

    def raised_in_backward(self, error: BaseException) -> bool:
        """Did `error` come from this trace's backward pass? Then every guard held and the
        forward ran the traced path: running the function would raise it too."""
        code = self.function.__code__
        line = None
        tb = error.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code is code:
                line = tb.tb_lineno
            tb = tb.tb_next
        return line is not None and line >= self.backward_line



def _number(x: float, glob: Globals) -> str:
    if math.isfinite(x):
        return repr(x) if math.copysign(1.0, x) > 0 else f"({x!r})"  # (-2.0) ** 2: parenthesised
    return glob.bind(x, "inf" if x > 0 else "minus_inf" if x < 0 else "nan")


def _bound(other, glob: Globals) -> str:
    """The number a Value was compared with, written so the guard compares as the trace did.

    A float compared with an int or a Fraction compares exactly (0.3333333333333333 < 1/3);
    float(other) would round (and overflow for 10**400), and the guard would answer wrongly.
    """
    if type(other) is float:
        return _number(other, glob)
    if type(other) is int:
        return repr(other)
    return glob.bind(other, "bound")


class _Guard:
    """A decision the trace saw, as a node of the graph: its parents are the guard before it
    and the Values it looks at, so the engine's topological order places it right after them."""

    __slots__ = ("parents", "event")

    def __init__(self, event, before) -> None:
        self.event = event
        looks_at = (event.value, event.other) if isinstance(event, Compared) else event.inputs
        self.parents = tuple([before] if before is not None else []) + tuple(
            v for v in looks_at if isinstance(v, Value))


def forward_order(root: Value, events: list) -> list:
    """The forward pass: every Value and guard, each guard right after what it looks at."""
    guard = None
    for event in events:
        guard = _Guard(event, guard)
    if guard is None:
        return topological_order(root)
    end = _Guard.__new__(_Guard)  # the end of the pass: after the last guard, the output
    end.parents = (guard, root)
    return topological_order(end)[:-1]


def generate(name: str, root: Value, seen: TraceRecord, inputs: dict[int, tuple[int, str]],
             params: dict[int, tuple[int, str]], max_nodes: int | None) -> dict:
    """Write the source of one trace: the forward pass with its guards, then the backward pass.

    `inputs` and `params` map id(leaf) -> (position, name). Returns the source, the namespace
    it runs in, its function's name, the outside Values it reads and the guards as text.
    """
    glob = Globals()
    namer = Namer()
    for _pos, nm in inputs.values():
        namer.used.add(nm)
    order = topological_order(root)  # the backward pass walks this, reversed
    index = {node: i for i, node in enumerate(order)}
    forward = forward_order(root, seen.events)
    made = seen.made

    def computed(node) -> bool:  # an operation of this call, written as a line of the forward
        return bool(node.parents) and id(node) in made

    operations = sum(1 for n in forward if type(n) is not _Guard and computed(n))
    if max_nodes is not None and operations > max_nodes:
        raise CompileError(
            f"compile({name}): the traced graph has {operations:,} operations, more than "
            f"max_nodes={max_nodes:,}. CPython compiles straight-line code at about 15 us and "
            f"3 KB of memory per line, about three lines per operation, so this would take "
            f"~{operations * 45e-6:.0f} s and ~{operations * 9e-6:.1f} GB once. Compile a "
            f"per-sample (or per-batch) function instead, or pass a larger max_nodes.")

    # Leaves: arguments, parameters, constants made by the function, Values from outside (with
    # their history: eager execution uses their .data, so the code reads it, at every call).
    names: dict[int, str] = {}
    live: list[Value] = []
    param_index: list[int] = []
    live_names: list[str] = []
    captured: list[Value] = []
    for node in forward:
        if type(node) is _Guard or computed(node):
            continue
        key = id(node)
        if key in inputs:
            names[key] = inputs[key][1]
        elif key in params:
            names[key] = namer(params[key][1], f"p{params[key][0]}")
            live.append(node)
            param_index.append(params[key][0])
            live_names.append(names[key])
        elif key in made:
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
        lines.append(f"    {seq(arg_names)} = _inputs")
    if live_names:
        lines.append(f"    {seq(live_names)} = _live  # read from outside at every call")
    lines.append("    # forward: each primitive's float forward")
    guard_texts = []
    for node in forward:
        if type(node) is _Guard:
            fails, text = _guard(node.event, names, glob)
            guard_texts.append(text)
            lines.append(f"    if {fails}:  # guard: {text} when traced")
            lines.append("        return None")
            continue
        if not computed(node):
            continue
        prim = node.op  # the Primitive itself (a table entry, or one made by the user)
        parents = node.parents
        wish = node.label or (f"n{index[node]}" if node in index else "")
        nm = namer(wish, f"m{len(names)}")
        text = fill(forward_template(prim, len(parents), glob),
                    {f"x{i}": names[id(p)] for i, p in enumerate(parents)})
        names[id(node)] = nm
        lines.append(f"    {nm} = {text}  # {prim.name}")

    # Backward: the engine's walk, with a step that writes each rule out instead of running
    # it. The sum is written here: a gradient starts as its first share, later ones add with +.
    def receives(node: Value) -> bool:  # does this Value get a gradient variable?
        return bool(node.parents) or id(node) in inputs or id(node) in params

    statements: list[tuple[str, set[str], str, bool]] = []  # (targets, uses, text, pure)
    root_name = names[id(root)]
    each_share = _LEAVES_ADD_EACH_SHARE  # how backward() adds onto a leaf's earlier .grad
    if id(root) in params and each_share:
        statements.append((f"g_{root_name}", {f"g_{root_name}"},
                           f"g_{root_name} = g_{root_name} + 1.0", True))
    elif receives(root):
        statements.append((f"g_{root_name}", set(), f"g_{root_name} = 1.0", True))
    grads: dict = {root: f"g_{root_name}"}  # the gradient variable of each Value given one
    if each_share:  # a parameter's variable starts as its .grad before the call
        grads.update((node, f"g_{names[id(node)]}") for node in live[:len(param_index)])
    temp = [0]

    def step(node: Value, g: str) -> list[tuple[str, bool]]:
        """Write `node`'s rule; its shares as (expression, pure) for the sum to write."""
        prim = node.op
        out = names[id(node)]
        parents = node.parents
        arity = len(parents)
        template = rule_template(prim, arity, glob)
        parent_names = {f"x{i}": names[id(p)] for i, p in enumerate(parents)}
        shown = show(prim, [names[id(p)] for p in parents])
        if len(shown) > 60:
            shown = shown[:57] + "..."
        how = "  (rule called)" if template.call else ""
        statements.append(("", set(), f"# {out} = {shown}   {prim.name}: {doc(prim)}{how}",
                           False))
        filled = {"g": g, "out": out, **parent_names}
        if template.call:
            temp[0] += 1
            k = temp[0]
            shares = [f"_s{k}_{i}" for i in range(arity)]
            args = ", ".join([g, out] + [names[id(p)] for p in parents])
            statements.append((" ".join(shares), {g, out} | set(parent_names.values()),
                               f"{seq(shares)} = {template.call}({args})", False))
            return [(s, True) for s in shares]
        if template.block is not None:
            temp[0] += 1
            k = temp[0]
            for i in range(arity):
                filled[f"s{i}"] = f"_s{k}_{i}"
            for local in sorted({m for line in template.block
                                 for m in PLACEHOLDER.findall(line) if m.startswith("t_")}):
                filled[local] = f"_r{k}_{local[2:]}"
            text = "\n".join(fill(line, filled) for line in template.block)
            targets = " ".join(v for key, v in filled.items() if key[0] in "st" and key != "g")
            statements.append((targets, _uses(text), text, template.block_pure))
            return [(f"_s{k}_{i}", True) for i in range(arity)]
        for target, _expr in template.assigns:
            temp[0] += 1
            filled[target[1:-1]] = f"_r{temp[0]}_{target[3:-1]}"
        for (target, expr), pure in zip(template.assigns, template.pure_assigns):
            t, text = fill(target, filled), fill(expr, filled)
            statements.append((t, _uses(text), f"{t} = {text}", pure))
        return [(fill(s, filled), p) for s, p in zip(template.shares, template.pure_shares)]

    for node, _g, shares in walk(order, grads, step):
        for parent, (expr, pure) in zip(node.parents, shares):
            if not receives(parent):  # a constant or an outside Value: no gradient wanted
                statements.append(("", _uses(expr), f"_ = {expr}  # for a constant; kept as it "
                                   "could raise", pure))
                continue
            target = f"g_{names[id(parent)]}"
            if parent in grads:
                statements.append((target, _uses(expr) | {target},
                                   f"{target} = {target} + {_operand(expr)}", pure))
            else:
                grads[parent] = target
                statements.append((target, _uses(expr), f"{target} = {expr}", pure))

    # What is returned: the value, the arguments' gradients, the parameters' new .grad.
    arg_grads = []
    by_id = {id(node): node for node in grads}
    for key, (_pos, nm) in sorted(inputs.items(), key=lambda kv: kv[1][0]):
        # backward() adds onto a zeroed .grad, 0.0 + ..., which turns a -0.0 into 0.0
        arg_grads.append(f"0.0 + g_{nm}" if key in by_id else "0.0")
    if each_share:  # each share was added onto the .grad the call started from
        param_grads = [f"g_{names[id(node)]}" for node in live[:len(param_index)]]
    else:  # the shares are summed first, then added to the .grad the call started from
        param_grads = [f"_start_{names[id(node)]} + g_{names[id(node)]}" if node in grads
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
    backward_line = len(lines)  # 1-based: the line after this comment
    if param_grads:
        starts = [(f"g_{names[id(n)]}" if each_share else f"_start_{names[id(n)]}")
                  for n in live[:len(param_index)]]
        lines.append(f"    {seq(starts)} = _param_grads  # .grad before this call")
    for i, text in enumerate(kept):
        if text.startswith("#") and (i + 1 == len(kept) or kept[i + 1].startswith("#")):
            continue  # nothing of this node's backward is needed
        lines.extend("    " + line for line in text.split("\n"))
    if any(a.startswith("0.0 +") for a in arg_grads):
        lines.append("    # 0.0 + g: backward() adds onto a zeroed .grad (turning -0.0 into 0.0)")
    lines.append(f"    return {root_name}, {seq(arg_grads, True)}, {seq(param_grads, True)}")
    return {"source": "\n".join(lines) + "\n", "namespace": glob.namespace,
            "function": function_name, "live": live, "param_index": param_index,
            "guards": guard_texts, "operations": operations, "backward_line": backward_line + 1}


def _guard(event, names: dict, glob: Globals) -> tuple[str, str]:
    """A decision of the trace as (a test true off the traced path, the decision in words)."""
    if isinstance(event, Compared):
        a = names[id(event.value)]
        b = names[id(event.other)] if isinstance(event.other, Value) else _bound(event.other,
                                                                                  glob)
        test = f"{a} {event.op} {b}"
        return (f"not ({test})" if event.outcome else test), f"{test} is {event.outcome}"
    assert isinstance(event, Raised)
    prim = event.op
    args = [names[id(v)] for v in event.inputs]
    forward = glob.bind(prim.forward, prim.name)
    error = glob.bind(event.error, event.error.__name__)
    test = f"{glob.bind(raises, 'raises')}({forward}, {error}, {', '.join(args)})"
    return f"not {test}", f"{prim.name}({', '.join(args)}) raised {event.error.__name__}"


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
