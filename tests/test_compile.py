"""autodiff.compile: the generated code gives backward()'s numbers bit for bit, and eager results.

The central test builds random programs out of every primitive of the op table (found from the
table itself, so a primitive added later is covered without touching this file), runs each
program eagerly with `backward()` and compiled, and compares every number bit for bit (0.0 and
-0.0 differ, NaN equals NaN). The rest checks guards, errors, the refusal of number reads,
parameters read at every call, the source text, and thread safety of the comparison hook.
"""

from __future__ import annotations

import inspect
from fractions import Fraction
import math
import random
import sys
import threading

import pytest

import autodiff
from autodiff import Value
from autodiff import compile as compile_module_function
from autodiff.compile import CompileError, MAX_NODES
from autodiff.ops import PRIMITIVES, apply
from autodiff.primitive import Primitive


def same(a: float, b: float) -> bool:
    """Bit-for-bit equality: NaN equals NaN, 0.0 and -0.0 differ."""
    if a != a or b != b:
        return a != a and b != b
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def assert_same(got, want, what=""):
    if isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want), (what, got, want)
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{what}[{i}]")
    else:
        assert type(got) is float, (what, got)
        assert same(got, want), f"{what}: compiled {got!r}, backward() {want!r}"


def eager(fn, *args):
    """Run `fn` on fresh leaves of the same structure; backward(); (value, grads as args)."""
    leaves = []

    def lift(a):
        if isinstance(a, (list, tuple)):
            return type(a)(lift(x) for x in a)
        leaf = Value(a)
        leaves.append(leaf)
        return leaf

    values = [lift(a) for a in args]
    root = fn(*values)
    root.backward()

    def grads(v):
        if isinstance(v, (list, tuple)):
            return type(v)(grads(x) for x in v)
        return v.grad

    return root.data, tuple(grads(v) for v in values)


# ---- random programs over the whole op table --------------------------------------------------


def arities(prim) -> list[int]:
    """Input counts to try for a primitive, from its forward function's signature."""
    try:
        params = list(inspect.signature(prim.forward).parameters.values())
    except (TypeError, ValueError):
        return [1, 2, 3]
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return [4, 2, 3, 6, 1]
    return [len(params)]


def random_program(rng: random.Random, n_inputs: int = 3, steps: int = 14):
    """A program: each step applies a primitive to earlier slots or fresh constants.

    Returned as (steps, inputs, used): inputs are numbers the program is known to work on;
    each step is (primitive, [("slot", i) or ("const", c)]). The steps cycle through the whole
    op table in random order, so every primitive appears in every program of >= len(table)
    steps. A step whose forward fails on the example numbers is re-drawn.
    """
    inputs = [rng.uniform(0.3, 1.7) * rng.choice((1, -1, 1)) for _ in range(n_inputs)]
    data = list(inputs)
    prims = list(PRIMITIVES.values())
    rng.shuffle(prims)
    program, used = [], set()
    for k in range(max(steps, len(prims))):
        prim = prims[k % len(prims)]
        for _attempt in range(200):
            arity = rng.choice(arities(prim))
            args = []
            for _ in range(arity):
                if rng.random() < 0.8:
                    args.append(("slot", rng.randrange(len(data))))
                else:
                    args.append(("const", rng.choice((2.0, 0.5, -1.5, 3.0, 0.0, 1.0))))
            numbers = [data[i] if kind == "slot" else i for kind, i in args]
            try:
                out = prim.forward(*numbers)
            except (ValueError, ZeroDivisionError, OverflowError, TypeError):
                continue
            if not math.isfinite(out) or abs(out) > 1e4:
                continue
            program.append((prim, args))
            data.append(float(out))
            used.add(prim.name)
            break
    return program, inputs, used


def run_program(program, n_inputs):
    def fn(*xs):
        slots = list(xs)
        for prim, args in program:
            operands = [slots[i] if kind == "slot" else i for kind, i in args]
            if not any(isinstance(o, Value) for o in operands):
                operands[0] = Value(operands[0])
            slots.append(apply(prim, *operands))
        # Every slot reaches the output, some of them twice, so gradients add up.
        tail = slots[n_inputs:]
        return autodiff.sum(tail) + tail[-1] * tail[len(tail) // 2]

    return fn


@pytest.mark.parametrize("seed", range(25))
def test_random_programs_over_every_primitive_match_backward_bit_for_bit(seed):
    rng = random.Random(seed)
    program, inputs, used = random_program(rng)
    assert used == set(PRIMITIVES), f"primitives the generator could not use: " \
                                    f"{set(PRIMITIVES) - used}"
    fn = run_program(program, len(inputs))
    step = autodiff.compile(lambda *xs: fn(*xs), check="never")
    # The first call traces, later calls reuse the trace on other numbers: the same numbers
    # as eager execution, or the same exception (sqrt's rule at 0 divides by zero, say).
    for k in range(6):
        moved = [x + (rng.uniform(-0.05, 0.05) if k else 0.0) for x in inputs]
        try:
            want = eager(fn, *moved)
        except (ValueError, ZeroDivisionError, OverflowError) as error:
            with pytest.raises(type(error)):
                step(*moved)
            continue
        assert_same(step(*moved), want)
    assert step.trace_count == 1


class CalledRule:
    """A rule with no source to read and no code to run on placeholders: it must be called."""

    def __init__(self, vjp):
        self.vjp = vjp

    def __call__(self, *args):
        return self.vjp(*args)


# Every primitive again, under another name, with its rule only callable (kept for the module's
# life, as the op table's own entries are).
CALLED = {name: Primitive(f"called_{name}", prim.forward, CalledRule(prim.vjp), prim.symbol)
          for name, prim in PRIMITIVES.items()}


def test_rules_called_instead_of_inlined_give_the_same_numbers():
    # The fallback path: every rule called as a function (what a rule that cannot be written
    # out gets) must give the numbers of the inlined code.
    for seed in range(5):
        rng = random.Random(100 + seed)
        program, inputs, _ = random_program(rng)
        program = [(CALLED[prim.name], args) for prim, args in program]
        fn = run_program(program, len(inputs))
        step = autodiff.compile(fn, check="never")
        try:
            want = eager(fn, *inputs)
        except (ValueError, ZeroDivisionError, OverflowError) as error:
            with pytest.raises(type(error)):
                step(*inputs)
            continue
        assert_same(step(*inputs), want)
        assert "(rule called)" in step.source


def test_every_rule_of_the_table_is_written_inline():
    # Each primitive's rule is written out in the generated code (not called), for the arities
    # the random programs use; a rule that cannot be must be a deliberate, visible choice.
    for prim in PRIMITIVES.values():
        for arity in arities(prim)[:2]:
            try:
                prim.forward(*[0.5] * arity)
            except Exception:  # noqa: BLE001 - not an arity this primitive takes
                continue
            step = autodiff.compile(lambda *xs, prim=prim: apply(prim, *xs), check="never")
            step(*[0.5] * arity)
            assert "(rule called)" not in step.source, f"{prim.name} with {arity} inputs"


def _scaled_rule(g, out, *xs):
    """d/dx_i (2 x_1 + ... + 2 x_n) = 2"""
    return tuple([g * 2.0 + x * 0.0 for x in xs])


def _mean_rule(g, out, *xs):
    """d/dx_i mean(x) = 1 / n"""
    return tuple([g / len(xs) + x * 0.0 for x in xs])


SCALED = Primitive("scaled", lambda *xs: 2.0 * sum(xs), _scaled_rule)
MEAN = Primitive("mean", lambda *xs: sum(xs) / len(xs), _mean_rule)


def test_a_rule_of_any_arity_written_as_one_comprehension_is_written_out_per_input():
    # logsumexp's form, `tuple([share(x) for x in xs])`: one expression per input. A share that
    # needs all the inputs (len(xs)) is not one expression of its own input: running the rule on
    # placeholders then writes it, with len(xs) a number.
    step = autodiff.compile(lambda a, b, c: apply(SCALED, a, b, c))
    assert_same(step(1.0, 2.0, 3.0), (12.0, (2.0, 2.0, 2.0)))
    assert "(rule called)" not in step.source
    for name in ("a", "b", "c"):
        assert f"g_{name} = g_n3 * 2.0 + {name} * 0.0" in step.source, step.source
    step = autodiff.compile(lambda a, b, c: apply(MEAN, a, b, c))
    assert_same(step(1.0, 2.0, 6.0), (3.0, (1 / 3, 1 / 3, 1 / 3)))
    assert "g_a = (g_n3 / 3) + (a * 0.0)" in step.source, step.source
    step = autodiff.compile(lambda a, b: autodiff.logsumexp([a, b]))
    step(1.0, 2.0)
    assert "(rule called)" not in step.source and "b - n2" in step.source, step.source


def test_the_micrograd_readme_expression():
    from tests.examples import micrograd_readme_example, micrograd_readme_expression

    a, b, g = micrograd_readme_example()
    g.backward()
    value, (da, db) = autodiff.compile(micrograd_readme_expression)(-4.0, 2.0)
    assert (value, da, db) == (g.data, a.grad, b.grad)
    assert f"{value:.4f} {da:.4f} {db:.4f}" == "24.7041 138.8338 645.5773"


def test_a_zero_gradient_is_positive_zero_as_after_backward():
    # A share of -0.0 is added to a zeroed .grad by backward(): 0.0 + -0.0 = 0.0.
    step = autodiff.compile(lambda x: x * -0.0)
    value, (dx,) = step(2.0)
    assert math.copysign(1.0, dx) == 1.0
    assert_same((value, (dx,)), eager(lambda x: x * -0.0, 2.0))


# ---- guards -----------------------------------------------------------------------------------


def branchy(x, y):
    z = x * y
    if z > 1:                  # compared value not otherwise in the result
        out = x + y
    elif x < y:
        out = (x - y) ** 2
    else:
        out = y * 3
    for _ in range(3):
        if out >= 0.5:
            out = out * 0.5
    return out + x


def test_guards_retrace_when_comparisons_differ_and_always_equal_eager():
    rng = random.Random(3)
    step = autodiff.compile(branchy)
    for _ in range(60):
        x, y = rng.uniform(-2, 2), rng.uniform(-2, 2)
        assert_same(step(x, y), eager(branchy, x, y))
    # One trace per path taken, not one per call.
    assert 2 <= len(step.traces) < 20
    assert step.trace_count == len(step.traces)
    assert "guard" in step.source


def test_a_guard_on_a_value_outside_the_result_is_checked():
    def fn(x):
        if x * 2 > 1:  # x * 2 is compared, never used
            return x * x
        return -x

    step = autodiff.compile(fn)
    assert step(1.0) == (1.0, (2.0,))
    assert step(0.0) == (-0.0, (-1.0,))
    assert step(3.0) == (9.0, (6.0,))
    assert len(step.traces) == 2


def test_comparison_between_two_values_and_reflected_comparisons():
    def fn(a, b):
        return a * b if 0 < a <= b else a + b

    step = autodiff.compile(fn)
    for a, b in [(1.0, 2.0), (2.0, 1.0), (-1.0, 2.0), (1.5, 1.5)]:
        assert_same(step(a, b), eager(fn, a, b))


def test_rules_with_branches_are_branches_in_the_code_not_guards():
    def fn(x, y):
        return (autodiff.relu(x) + abs(y) + autodiff.maximum(x, y) + autodiff.minimum(x, y)
                + autodiff.clamp(x * y, -0.5, 0.5))

    step = autodiff.compile(fn)
    rng = random.Random(4)
    for _ in range(30):
        x, y = rng.uniform(-2, 2), rng.uniform(-2, 2)
        assert_same(step(x, y), eager(fn, x, y))
    assert len(step.traces) == 1
    assert "if" in step.source and "guard" not in step.source


def test_max_traces_keeps_the_most_recent():
    def fn(x):
        return x * 2 if x > 0 else x * 3

    step = autodiff.compile(fn, max_traces=1)
    step(1.0)
    step(-1.0)
    step(1.0)
    assert len(step.traces) == 1
    assert step.trace_count == 3


# ---- arguments and results --------------------------------------------------------------------


def test_grads_have_the_structure_of_the_arguments():
    def fn(x, pair, nested):
        return x * pair[0] + pair[1] * nested[0][1] + nested[1][0]

    step = autodiff.compile(fn)
    value, grads = step(2, (3.0, 4.0), [[5.0, 6.0], [7.0]])
    assert value == 2 * 3 + 4 * 6 + 7
    assert grads == (3.0, (2.0, 6.0), [[0.0, 4.0], [1.0]])
    assert type(grads[1]) is tuple and type(grads[2]) is list
    assert all(type(g) is float for g in (grads[0], *grads[1]))
    # Another structure is another trace.
    assert step(2, (3.0, 4.0), [[5.0, 6.0, 0.0], [7.0]])[0] == value
    assert len(step.traces) == 2


def test_static_arguments_select_the_trace_and_get_no_gradient():
    def fn(x, label):
        return x * label

    step = autodiff.compile(fn, static_argnums=(1,))
    assert step(2.0, 3) == (6.0, (3.0, None))
    assert step(2.0, -1) == (-2.0, (-1.0, None))
    assert len(step.traces) == 2
    with pytest.raises(TypeError, match="static argument 1 must be hashable"):
        step(2.0, [1])


def test_the_output_may_be_an_input_or_a_constant():
    assert autodiff.compile(lambda x, y: x)(2.0, 3.0) == (2.0, (1.0, 0.0))
    assert autodiff.compile(lambda x: Value(5.0))(2.0) == (5.0, (0.0,))


@pytest.mark.parametrize("args, message", [
    ((1.0, 2.0), r"compiled f\(x\): too many positional arguments \(got 2 arguments\)"),
    ((), r"missing a required argument: 'x'"),
    (("a",), r"argument x must be a number .* got str: 'a'"),
    (([1.0, [2.0, None]],), r"argument x\[1\]\[1\] must be a number .* got NoneType: None"),
    ((True,), r"argument x must be a number .* got bool: True"),
    ((Value(1.0),), r"argument x is a Value; a compiled step runs on numbers"),
])
def test_wrong_arguments_are_clear_errors(args, message):
    step = autodiff.compile(lambda x: x * 2)
    with pytest.raises(TypeError, match=message):
        step(*args)


def test_other_errors():
    with pytest.raises(TypeError, match="positional arguments only, got x"):
        autodiff.compile(lambda x: x)(x=1.0)
    with pytest.raises(TypeError, match=r"must return a Value .* got float: 3.0"):
        autodiff.compile(lambda x: 3.0)(1.0)
    with pytest.raises(TypeError, match="needs a function"):
        autodiff.compile(3)
    # a float returned only on a later call (a global read in a branch) is named as well, when
    # the first reuse is checked against eager execution
    returns = {"value": True}
    later = autodiff.compile(lambda x: x * 2 if returns["value"] else 3.0)
    later(1.0)
    returns["value"] = False
    with pytest.raises(TypeError, match=r"must return a Value .* got float: 3.0"):
        later(1.0)
    with pytest.raises(ValueError, match="check="):
        autodiff.compile(lambda x: x, check="sometimes")
    with pytest.raises(RuntimeError, match="not been traced yet"):
        _ = autodiff.compile(lambda x: x).source


def test_a_graph_over_the_limit_says_the_limit_and_why():
    def chain(x):
        for _ in range(60):
            x = x * 1.01
        return x

    with pytest.raises(CompileError, match=r"60 operations, more than max_nodes=50.*15 us"):
        autodiff.compile(chain, max_nodes=50)(1.0)
    assert autodiff.compile(chain, max_nodes=None)(1.0)[0] == eager(chain, 1.0)[0]
    assert MAX_NODES >= 10_000


def test_errors_inside_the_code_are_those_of_eager_execution():
    step = autodiff.compile(lambda x: autodiff.log(x) * x)
    step(2.0)
    with pytest.raises(ValueError, match=r"log\(\) needs a positive input, got -1.0"):
        step(-1.0)


def test_a_step_traces_runs_and_checks_inside_no_grad():
    step = autodiff.compile(lambda x: x * x)
    with autodiff.no_grad():
        assert step(3.0) == (9.0, (6.0,))  # traced with enable_grad()
        assert step(4.0) == (16.0, (8.0,))  # the first reuse, checked eagerly all the same
        assert step.traces[0].checked
        assert autodiff.is_grad_enabled() is False


# ---- numbers read out of Values ---------------------------------------------------------------


@pytest.mark.parametrize("fn, what", [
    (lambda x: x * float(x), r"float\(v\) read a traced Value"),
    (lambda x: Value(math.exp(x)) * x, r"float\(v\) read a traced Value"),
    (lambda x: x.detach() * x, r"detach\(\) froze a traced Value"),
])
def test_reading_a_number_while_tracing_is_refused(fn, what):
    with pytest.raises(CompileError, match=what + r" \(.*test_compile.py:\d+\)"):
        autodiff.compile(fn)(1.5)


def test_no_grad_while_tracing_is_refused():
    def fn(x):
        with autodiff.no_grad():
            y = x * 2
        return x * y

    with pytest.raises(CompileError, match=r"no_grad\(\) was entered"):
        autodiff.compile(fn)(1.5)


def test_a_data_read_is_caught_on_the_first_reuse():
    def fn(x):
        return x * Value(x.data)  # invisible to the trace: frozen at the traced number

    step = autodiff.compile(fn)
    assert step(1.0) == (1.0, (1.0,))
    with pytest.raises(CompileError, match=r"gave value 2.0 instead of 4.0.*v\.data"):
        step(2.0)
    unchecked = autodiff.compile(fn, check="never")
    unchecked(1.0)
    assert unchecked(2.0) == (2.0, (1.0,))  # what the documentation warns about
    always = autodiff.compile(lambda x: x * x, check="always")
    for x in (1.0, 2.0, 3.0):
        assert always(x) == (x * x, (2 * x,))


# ---- parameters and Values from outside -------------------------------------------------------


def test_params_are_read_at_every_call_and_accumulate_like_backward():
    rng = random.Random(5)
    w = [Value(rng.uniform(-1, 1), label=f"w{i}") for i in range(3)]
    bias = Value(0.1)

    def loss(x):
        return (autodiff.dot(w, x) + bias).tanh() * 2 + w[0] * w[0]

    step = autodiff.compile(loss, params=w)
    twins = [Value(p.data) for p in w]  # an eager copy of the same weights
    twin_bias = Value(0.1)

    def twin_loss(x):
        return (autodiff.dot(twins, x) + twin_bias).tanh() * 2 + twins[0] * twins[0]

    for p, t in zip(w, twins):
        p.grad = t.grad = 0.123  # accumulating onto an earlier gradient, as backward() does
    for _ in range(4):
        x = [rng.uniform(-1, 1) for _ in range(3)]
        value, (dx,) = step(x)
        root = twin_loss([Value(v) for v in x])
        root.backward()
        assert same(value, root.data)
        for p, t in zip(w, twins):
            assert same(p.grad, t.grad)
        for p, t in zip(w, twins):  # an update between calls is seen by the next one
            p.data -= 0.1 * p.grad
            t.data -= 0.1 * t.grad
    bias.data = 5.0  # a Value from outside without a gradient: read at every call, too
    twin_bias.data = 5.0
    assert same(step([0.5, 0.5, 0.5])[0], twin_loss([0.5, 0.5, 0.5]).data)
    assert bias.grad == 0.0


def test_params_as_a_mapping_name_the_variables():
    a, b = Value(1.0), Value(2.0)
    step = autodiff.compile(lambda x: a * x + b, params={"layers.0.w": a, "bias": b})
    assert step(3.0) == (5.0, (1.0,))
    assert (a.grad, b.grad) == (3.0, 1.0)
    assert "layers_0_w, bias = _live" in step.source
    with pytest.raises(TypeError, match="parameter 'p' must be a Value"):
        autodiff.compile(lambda x: x, params={"p": 1.0})
    with pytest.raises(ValueError, match="parameters must be leaves"):
        autodiff.compile(lambda x: x, params=[a * b])


# ---- the source -------------------------------------------------------------------------------


def test_source_uses_labels_names_ops_and_rules():
    def fn(a, b):
        c = a * b
        c.label = "c"
        return (c + a).tanh()

    step = autodiff.compile(fn)
    step(2.0, -3.0)
    src = step.source
    assert "c = a * b  # mul" in src
    assert "# c = a * b   mul: d/dx (x y) = y, d/dy (x y) = x" in src
    assert "tanh: d/dx tanh x = 1 - tanh^2 x" in src
    assert "g_a = g_a + g_c * b" in src
    compile(src, "<source>", "exec")  # it is Python


def test_source_size_is_linear_in_the_graph():
    def chain(n):
        def fn(x, y):
            for _ in range(n):
                x = (x * y + 1.0).tanh()
            return x
        return fn

    sizes = []
    for n in (50, 100, 200):
        step = autodiff.compile(chain(n))
        step(0.5, 0.9)
        sizes.append(len(step.source))
    assert 1.8 < sizes[1] / sizes[0] < 2.2 and 1.8 < sizes[2] / sizes[1] < 2.2


def test_explain_and_the_source_tell_the_same_story():
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")

    def fn(a, b):
        c = a * b
        c.label = "c"
        out = c + a
        out.label = "L"
        return out

    steps = autodiff.backward_steps(fn(a, b))
    step = autodiff.compile(fn)
    step(2.0, -3.0)
    backward_part = step.source.split("# backward")[1]
    # Each step of explain is one line of the code, in the same order.
    lines = [ln.strip() for ln in backward_part.splitlines() if ln.strip().startswith("g_")]
    assert lines[1:] == ["g_c = g_L", "g_a = g_L", "g_a = g_a + g_c * b", "g_b = g_c * a"]
    assert len(steps) == 4


# ---- tracing in threads ---------------------------------------------------------------------


def test_tracing_in_two_threads_records_each_threads_own_comparisons():
    barrier = threading.Barrier(2)
    results, errors = {}, []

    def worker(name, sign):
        def fn(x):
            barrier.wait(timeout=10)
            out = x
            for k in range(200):
                if x * sign > k / 100:
                    out = out + x
            return out

        try:
            step = autodiff.compile(fn, check="never")
            results[name] = (step(0.5 * sign), step.traces[0].guards)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n, s)) for n, s in (("a", 1), ("b", -1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for name, sign in (("a", 1), ("b", -1)):
        (value, _grads), guards = results[name]
        assert len(guards) == 200
        x = 0.5 * sign
        assert value == x + x * sum(1 for k in range(200) if x * sign > k / 100)


def test_compile_is_exported():
    assert compile_module_function is autodiff.compile
    assert "compile" in autodiff.__all__


# ---- nn.compile_loss --------------------------------------------------------------------------


def test_compiled_training_follows_eager_training_bit_for_bit():
    import nn
    from nn.data import make_moons
    from nn.losses import hinge, l2_penalty

    X, y = make_moons(20, noise=0.1, seed=2, labels="pm1")
    histories = []
    for compiled in (False, True):
        model = nn.MLP(2, [6, 6, 1], seed=2)
        opt = nn.SGD(model.parameters(), lr=0.5, momentum=0.9)
        step = nn.compile_loss(model, hinge, penalty=lambda m: l2_penalty(m, 1e-3))
        losses = []
        for _ in range(6):
            opt.zero_grad()
            if compiled:
                losses.append(step.backward(X, y))
            else:
                loss = hinge([model(x) for x in X], y) + l2_penalty(model, 1e-3)
                loss.backward()
                losses.append(loss.data)
            opt.step()
        histories.append((losses, [p.data for p in model.parameters()]))
    assert histories[0] == histories[1]
    assert len(step.compiled.traces) == 1
    assert "layers_0_neurons_0_w_0" in step.source


def test_compiled_loss_per_sample_returns_gradients_and_touches_no_grad():
    import nn
    from nn.losses import cross_entropy, mse

    model = nn.MLP(3, [5, 2], seed=4)
    step = nn.compile_loss(model, cross_entropy)
    for p in model.parameters():
        p.grad = 0.25
    x = [0.1, -0.4, 0.9]
    loss, grads = step(x, 1)
    assert all(p.grad == 0.25 for p in model.parameters())
    model.zero_grad()
    eager = cross_entropy(model(x), 1)
    eager.backward()
    assert loss == eager.data
    assert grads == [p.grad for p in model.parameters()]
    regression = nn.compile_loss(nn.MLP(2, [3, 1], seed=1), mse)
    assert regression([0.5, 0.5], 2.0)[0] == mse(regression.model([0.5, 0.5]), 2.0).data
    with pytest.raises(TypeError, match="needs an nn.Module"):
        nn.compile_loss(lambda x: x, mse)
    with pytest.raises(TypeError, match="targets must be numbers"):
        regression([0.5, 0.5], Value(2.0))


def test_evaluate_returns_parameter_gradients_without_touching_grad():
    w = Value(3.0)
    w.grad = 7.0
    step = autodiff.compile(lambda x: w * x * x, params=[w])
    value, (dx,), (dw,) = step.evaluate(2.0)
    assert (value, dx, dw, w.grad) == (12.0, 12.0, 4.0, 7.0)
    step(2.0)
    assert w.grad == 11.0


def test_demo_trains_the_same_model_compiled():
    import nn
    from nn.data import make_moons
    from nn.demo import parse_args, train
    from nn.losses import hinge
    from nn.schedules import LinearLR

    assert parse_args(["--compile"]).compile and not parse_args([]).compile
    X, labels = make_moons(16, seed=5)
    y = [2 * t - 1 for t in labels]
    runs = []
    for compiled in (False, True):
        model = nn.MLP(2, [4, 1], seed=5)
        opt = nn.SGD(model.parameters(), lr=1.0)
        sched = LinearLR(opt, start_factor=1.0, end_factor=0.1, total_iters=5)
        history = train(model, X, y, hinge, opt, sched, 5, 1e-4, progress=False,
                        compiled=compiled)
        runs.append((history, [p.data for p in model.parameters()]))
    assert runs[0] == runs[1]


def test_demo_compile_refuses_what_it_cannot_compile_with_the_reason(capsys):
    from nn.demo import main

    assert main(["--compile", "--optimizer", "lbfgs", "--steps", "1", "--no-progress"]) == 2
    assert "--compile works with the gradient-step optimizers" in capsys.readouterr().err


@pytest.mark.parametrize("loss_name", ["cross_entropy", "bce_with_logits", "binary_cross_entropy"])
def test_every_loss_compiles_and_trains_as_eagerly(loss_name):
    # The losses choose a stable formula by comparing Values (guards), never by reading .data,
    # so a compiled loss follows the eager one bit for bit while the choice changes.
    import nn
    from nn import losses

    loss_fn = getattr(losses, loss_name)
    outputs = 3 if loss_name == "cross_entropy" else 1
    X, labels = nn.data.make_blobs(24, centers=3, seed=1) if outputs == 3 else \
        nn.data.make_moons(24, noise=0.1, seed=1)
    runs = []
    for compiled in (False, True):
        model = nn.MLP(2, [5, outputs], seed=3)
        if loss_name == "binary_cross_entropy":  # probabilities in (0, 1)
            model = nn.MLP(2, [5, 1], seed=3, output_activation="sigmoid")
        opt = nn.SGD(model.parameters(), lr=2.0)
        step = nn.compile_loss(model, loss_fn, check="always")
        losses_seen = []
        for _ in range(8):
            opt.zero_grad()
            if compiled:
                losses_seen.append(step.backward(X, labels))
            else:
                preds = [model(x) for x in X]
                loss = loss_fn(preds, labels)
                loss.backward()
                losses_seen.append(loss.data)
            opt.step()
        runs.append((losses_seen, [p.data for p in model.parameters()]))
    assert runs[0] == runs[1]


def test_compiled_cross_entropy_trains_on_one_trace():
    # cross_entropy's log-sum-exp is one logsumexp node, which compares no Values: while
    # training moves which class scores highest, no guard changes, so no step traces again.
    import nn
    from nn.losses import cross_entropy

    X, labels = nn.data.make_spirals(30, classes=3, seed=0)
    model = nn.MLP(2, [8, 3], seed=1)
    opt = nn.SGD(model.parameters(), lr=1.0)
    step = nn.compile_loss(model, cross_entropy)
    top_classes = set()
    for _ in range(6):
        with autodiff.no_grad():
            scores = [[z.data for z in model(x)] for x in X]
        top_classes.add(tuple(s.index(max(s)) for s in scores))
        opt.zero_grad()
        step.backward(X, labels)
        opt.step()
    assert len(top_classes) > 1, "training never changed a predicted class: a weak test"
    assert len(step.compiled.traces) == 1 and step.compiled.trace_count == 1
    assert step.compiled.traces[0].guards == [] and "logsumexp" in step.source


def test_a_loss_that_reads_data_is_caught_not_trusted():
    # A loss that takes a number out of a Value (here a shift read from .data) freezes it in the
    # trace; the check on the first reuse notices once the weights have changed.
    import nn

    def shifted_mse(pred, target):
        return (pred - target - pred.data) ** 2

    model = nn.MLP(2, [3, 1], seed=0)
    step = nn.compile_loss(model, shifted_mse)
    step.backward([0.5, 1.0], 2.0)
    for p in model.parameters():
        p.data += 0.1
    with pytest.raises(CompileError, match="reads v.data"):
        step.backward([0.5, 1.0], 2.0)


def test_a_traceback_shows_the_generated_line():
    import traceback

    step = autodiff.compile(lambda x: autodiff.log(x) * x)
    step(2.0)
    try:
        step(-1.0)
    except ValueError as error:
        text = "".join(traceback.format_exception(error))
    assert "n1 = _log(x)  # log" in text


def test_benchmarks_quick_run_the_compiled_rows():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--engines",
                           "chainrule-nn,chainrule,chainrule-compiled,floor", "--workloads",
                           "w1,w2,w3"], cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for workload in ("W1 demo step", "W2 deep chain", "W3 wide graph"):
        table = out.split(workload)[1].split("\n\n")[0]
        assert "\nchainrule-compiled " in table, table
    costs = out.split("chainrule-compiled, one-time costs")[1].split("\n\n")[0]
    assert all(f"\n{w} " in costs for w in ("w1", "w2", "w3")), costs
    assert "agreement: every engine's losses and gradients match" in out


def test_under_a_profiler_tracing_is_unchanged():
    # Tracing is a mode of the engine, not a profile hook: a profiler running (and seeing every
    # call) changes neither the code written nor the numbers.
    import sys

    calls = []
    sys.setprofile(lambda frame, event, arg: calls.append(event))
    try:
        step = autodiff.compile(lambda x: x * 2.5 + 1.0)
        value, (dx,) = step(2.0)
    finally:
        sys.setprofile(None)
    assert (value, dx) == (6.0, 2.5)
    assert calls  # the profiler kept running during the trace
    assert "x * 2.5" in step.source  # a constant made by the function is written in
    assert step(3.0) == (8.5, (2.5,))


def test_under_anomaly_mode_a_step_runs_eagerly_so_reports_come_as_usual():
    step = autodiff.compile(lambda x, y: (x * y).log())
    assert step(2.0, 3.0)[0] == math.log(6.0)
    with autodiff.detect_anomaly():
        assert_same(step(2.0, 3.0), eager(lambda x, y: (x * y).log(), 2.0, 3.0))
        nan_step = autodiff.compile(lambda x: x * math.nan)
        with pytest.raises(autodiff.AnomalyError):
            nan_step(1.0)


def test_a_dropped_trace_takes_its_lines_out_of_linecache():
    import gc
    import linecache

    before = set(linecache.cache)
    step = autodiff.compile(lambda x: x * 3.0)
    step(1.0)
    names = [n for n in linecache.cache if n not in before and n.startswith("<compiled f #")]
    assert names
    del step
    gc.collect()  # a trace's namespace and function refer to each other
    assert not [n for n in linecache.cache if n in names]


EDGES = [0.0, -0.0, 1.0, -1.0, math.inf, -math.inf, math.nan, 1e-300, -1e-300, 709.0, 710.0,
         1e300]


@pytest.mark.parametrize("seed", range(12))
def test_edge_values_through_a_trace_give_eager_numbers_or_its_exception(seed):
    # NaN, infinities, signed zeros, tiny and huge numbers through every primitive: the rules'
    # edge cases (exact zero shares, ties, NaN passing) are the rules' own, written out.
    rng = random.Random(1000 + seed)
    program, inputs, _ = random_program(rng, steps=rng.randrange(5, 25))
    fn = run_program(program, len(inputs))
    step = autodiff.compile(fn, check="never")
    step(*inputs)
    for _ in range(8):
        xs = [rng.choice(EDGES + [x]) for x in inputs]
        try:
            want = eager(fn, *xs)
        except Exception as error:  # noqa: BLE001 - whatever eager raises, compiled raises
            with pytest.raises(type(error)):
                step(*xs)
            continue
        assert_same(step(*xs), want, f"inputs {xs}")
    assert step.trace_count == 1



@pytest.mark.parametrize("bound, inside, outside", [
    (Fraction(1, 3), 0.3333333333333333, 0.5),  # float(1/3) is just below 1/3
    (10**400, 1.0, math.inf),  # no float holds it
    (2**53 + 1, 2.0**53, 2.0**54),  # float(2**53 + 1) is 2**53
])
def test_a_guard_against_a_number_that_is_no_float_compares_as_traced(bound, inside, outside):
    # A Value compared with a Fraction or an int compares exactly; the generated guard must
    # too. Written as float(bound), a trace made at `outside` answered for `inside` with the
    # other branch's numbers (Fraction), or tracing failed (OverflowError, "a fresh trace
    # rejects its own arguments").
    def f(x):
        return x * 2 if x < bound else x * 3

    assert Value(inside) < bound and not Value(outside) < bound
    for order in ([outside, inside, inside], [inside, outside, inside, outside]):
        step = autodiff.compile(f, check="never")
        for x in order:
            assert_same(step(x), eager(f, x), f"x = {x!r}")


@pytest.mark.parametrize("kwargs, match", [
    ({"static_argnums": (-1,)}, r"static_argnums.*-1"),
    ({"static_argnums": (2,)}, r"static_argnums.*2.*2 arguments"),
    ({"static_argnums": "1"}, r"static_argnums.*'1'"),
    ({"static_argnums": (True,)}, r"static_argnums.*True"),
    ({"max_traces": 0}, r"max_traces.*0"),
    ({"max_traces": "a"}, r"max_traces.*'a'"),
    ({"max_nodes": -1}, r"max_nodes.*-1"),
    ({"max_nodes": 2.5}, r"max_nodes.*2.5"),
])
def test_bad_compile_settings_are_named(kwargs, match):
    # static_argnums=(-1,) or (5,) or "1" were ignored: the argument was quietly differentiated.
    with pytest.raises((TypeError, ValueError), match=match):
        autodiff.compile(lambda x, k: x * k, **kwargs)


def test_an_argument_too_large_for_a_float_is_named():
    step = autodiff.compile(lambda x, ys: x * ys[0])
    with pytest.raises(OverflowError, match=r"argument x.*too large for a float"):
        step(10**400, [1.0])
    with pytest.raises(OverflowError, match=r"argument ys\[1\].*too large for a float"):
        step(1.0, [1.0, 10**400])


def test_static_arguments_minus_zero_and_nan_get_their_own_trace():
    # -0.0 == 0.0 (and hashes alike), so a trace made for the static 0.0 answered for -0.0 with
    # 1.0 * 0.0 = 0.0 where eager gives 1.0 * -0.0 = -0.0; a NaN never equals itself, so it
    # was traced again at every call.
    def f(x, t):
        return x * t[0]

    step = autodiff.compile(f, static_argnums=(1,), check="never")
    for t in [(0.0,), (-0.0,), (0.0,), (-0.0,), (math.nan,), (math.nan,)]:
        value, (dx, _) = step(1.0, t)
        want_value, (want_dx,) = eager(lambda x, t=t: f(x, t), 1.0)
        assert_same(value, want_value, f"t = {t}")
        assert_same(dx, want_dx, f"t = {t}")
    assert step.trace_count == 3


def test_a_label_set_to_a_non_string_still_compiles():
    # .label is a plain attribute: set to 3 after the Value was made, the namer failed with
    # "expected string or bytes-like object, got 'int'", naming nothing.
    def f(x):
        v = x * 2
        v.label = 3
        w = v + 1
        w.label = None
        return w * x

    step = autodiff.compile(f)
    assert_same(step(1.5), eager(f, 1.5))
    assert "v_3 = " in step.source


def test_static_true_and_1_inside_a_tuple_get_their_own_trace():
    # (1,) == (True,) and they hash alike: the trace made for one answered for the other.
    def f(x, t):
        return x * (2.0 if t[0] is True else 3.0)

    step = autodiff.compile(f, static_argnums=(1,), check="never")
    assert step(1.0, (1,))[0] == 3.0
    assert step(1.0, (True,))[0] == 2.0


# ---- never a wrong number quietly -------------------------------------------------------------


def log_or_zero(x):
    try:
        return x.log()
    except ValueError:  # outside log's domain: another graph
        return x * 0


@pytest.mark.parametrize("check", ["first", "never"])
def test_control_flow_through_a_caught_error_is_guarded(check):
    step = autodiff.compile(log_or_zero, check=check)
    for x in (-1.0, -1.0, 2.0, 2.0, -3.0, 0.5):  # traced at -1 first, then the other path
        assert_same(step(x), eager(log_or_zero, x))
    assert step.trace_count == 2
    assert any("raised ValueError" in g for t in step.traces for g in t.guards)

    step = autodiff.compile(log_or_zero, check=check)
    for x in (2.0, 2.0, -1.0, -1.0, 3.0):  # traced at 2 first: the code's log raises at -1
        assert_same(step(x), eager(log_or_zero, x))


def test_an_error_the_function_does_not_catch_still_comes_from_it():
    step = autodiff.compile(lambda x: x.log() * x)
    step(2.0)
    with pytest.raises(ValueError, match="log"):
        step(-1.0)
    assert step.trace_count == 1  # the call that raised kept no trace


SCALE = 2.0


def scaled_by_a_global(x):
    return x * 2 if SCALE > 1 else x * 3  # SCALE is a plain float: a trace cannot see it


def test_a_global_read_in_a_branch_is_said_plainly_and_check_always_finds_it(monkeypatch):
    # Not detectable by a trace; the docstring says so, and check="always" compares every call
    # with eager execution.
    doc = " ".join(autodiff.compile.__doc__.split())
    assert "A Python global" in doc and 'check="always"' in doc
    step = autodiff.compile(scaled_by_a_global, check="always")
    assert step(1.0) == (2.0, (2.0,))
    assert step(1.0) == (2.0, (2.0,))
    monkeypatch.setattr(sys.modules[__name__], "SCALE", 0.5)
    assert eager(scaled_by_a_global, 1.0) == (3.0, (3.0,))
    with pytest.raises(CompileError, match="3.0"):
        step(1.0)


def test_a_value_computed_outside_is_read_as_eager_execution_reads_it():
    w = Value(2.0, label="w")
    h = w * 3.0  # computed before the function runs: eager execution uses h.data as it is
    step = autodiff.compile(lambda x: x * h, params=[w])

    def eager_now(x):
        leaf = Value(x)
        out = leaf * h
        saved = w.grad
        w.grad = 0.0
        out.backward()
        grads = (out.data, leaf.grad, w.grad)
        w.grad = saved
        return grads

    for x in (2.0, 2.0):
        value, (dx,), (dw,) = step.evaluate(x)
        assert (value, dx, dw) == eager_now(x) == (12.0, 6.0, 6.0)
    w.data = 0.5  # h keeps its number until it is computed again
    for x in (2.0, 5.0):
        value, (dx,), (dw,) = step.evaluate(x)
        assert (value, dx, dw) == eager_now(x)
    assert step.evaluate(5.0)[0] == 30.0


def test_reading_a_number_is_refused_under_cprofile_too():
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        step = autodiff.compile(lambda x: x * float(x))
        with pytest.raises(CompileError, match=r"float\(v\)"):
            step(3.0)
        with pytest.raises(CompileError, match=r"detach"):
            autodiff.compile(lambda x: x * x.detach())(3.0)
        with pytest.raises(CompileError, match=r"no_grad"):
            def frozen(x):
                with autodiff.no_grad():
                    y = x * 2
                return x * y
            autodiff.compile(frozen)(3.0)
        absolute = autodiff.compile(lambda x: x if x > 0 else -x, check="never")
        assert absolute(1.0) == (1.0, (1.0,))
        assert absolute(-2.0) == (2.0, (-1.0,))
    finally:
        profiler.disable()


def _fragile_rule(g, out, x):
    """d/dx x = 1, written so that it divides by x"""
    return (g * x / x,)


FRAGILE = Primitive("fragile", lambda x: x, _fragile_rule)


def test_an_error_of_the_backward_pass_is_raised_at_once_as_backward_raises_it():
    calls = []

    def f(x):
        calls.append(x)
        return apply(FRAGILE, x) * 2

    step = autodiff.compile(f)
    assert step(1.0) == (2.0, (2.0,))
    assert step(3.0) == (6.0, (2.0,))
    with pytest.raises(ZeroDivisionError):
        eager(f, 0.0)
    traced = len(calls)
    with pytest.raises(ZeroDivisionError):
        step(0.0)  # every guard held: the function is not run again to find out
    assert len(calls) == traced and step.trace_count == 1
