"""The callable: `compile(f)` and `CompiledFunction`, a cache of traces selected by arguments.

A call flattens its arguments to floats, picks the traces kept for their structure and runs
the first whose guards hold; when none does, it traces `f` again (and keeps at most
`max_traces` traces). A kept trace whose forward raises is passed over, since the function may
catch that error and take another path: tracing again decides, by running the function itself.
An error of the backward pass (every guard held) is raised at once, as `backward()` raises it.
`check` compares the compiled numbers with eager execution (`f` on Values and `backward()`),
once per trace by default, at every call with `check="always"`.
"""

from __future__ import annotations

import builtins
import inspect
import itertools
import linecache
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence

from autodiff.compile.arguments import flatten, leaves, static_key, structured, values_in
from autodiff.compile.emit import MAX_NODES, Trace, generate
from autodiff.compile.errors import CompileError
from autodiff.compile.rules import same
from autodiff.compile.trace import record, returned_value
from autodiff.engine import topological_order
from autodiff.modes import enable_grad, is_anomaly_enabled, is_grad_enabled
from autodiff.value import Value

#: How many traces (argument structures x guard outcomes) one compiled function keeps.
MAX_TRACES = 32

_SERIAL = itertools.count(1)


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
                structure.append(("static", type(arg), static_key(arg)))
            else:
                kind = type(arg)
                if kind is float:  # the common case, without a path name
                    flat.append(arg)
                    structure.append(0)
                else:
                    structure.append(flatten(arg, self._arg_name(i), flat, self.name))
        key = tuple(structure)
        if start is None:
            start = [p.grad for p in self.params]
        if is_anomaly_enabled():
            # Anomaly mode checks every operation and share as it runs: run eagerly, so its
            # reports come as they would without compile.
            value, arg_grads, param_grads = self._eager(args, key, start)
            return value, structured(key, arg_grads), param_grads
        failed = None  # the error of a kept trace that raised
        for kept in list(self._traces.get(key, ())):
            try:
                result = self._run(kept, flat, start)
            except Exception as error:
                if kept.raised_in_backward(error):
                    raise  # the traced path's own backward pass: backward() raises it too
                # The forward raised: the function may catch that and take another path; the
                # next trace, or a new one, decides.
                failed = failed or error
                continue
            if result is not None:
                with self._lock:
                    if key in self._traces:
                        self._traces.move_to_end(key)
                wanted = self.check == "always" or not kept.checked and self.check == "first"
                if wanted:
                    self._verify(kept, args, key, result, start)
                    kept.checked = True
                return self._finish(kept, key, result, start)
        try:
            fresh = self._trace(args, key)  # the function runs on Values: its errors rise here
        except Exception as error:
            if failed is not None and error.__context__ is None:
                error.__context__ = failed  # shown too: the generated line that raised first
            raise
        result = self._run(fresh, flat, start)  # an error of the backward pass rises here
        if result is None:
            raise CompileError(f"compiled {self.name}: a fresh trace rejects its own arguments "
                               "(a comparison gave different answers on the same numbers)")
        self._keep(key, fresh)
        if self.check == "always":
            self._verify(fresh, args, key, result, start)
        return self._finish(fresh, key, result, start)

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
        return value, structured(key, arg_grads), param_grads

    def _trace(self, args: tuple, key) -> Trace:
        """Run the function in TRACE mode on the arguments and write what it did as code."""
        call_args, inputs = leaves(args, key, self.name, self._arg_name)
        out, seen = record(self.func, call_args, self.name)
        generated = generate(self.name, out, seen, inputs, self._param_ids, self.max_nodes)
        del call_args  # the input Values had to stay alive while their ids were in use
        namespace = generated["namespace"]
        # A file name of its own, known to linecache, so tracebacks show the generated line.
        filename = f"<compiled {self.name} #{next(_SERIAL)}>"
        source = generated["source"]
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        code = builtins.compile(source, filename, "exec")
        exec(code, namespace)
        made = Trace(generated["source"], namespace[generated["function"]], generated["live"],
                     generated["param_index"], generated["guards"], generated["operations"],
                     generated["backward_line"])
        weakref.finalize(made, linecache.cache.pop, filename, None)  # the lines go with it
        return made

    def _keep(self, key, made: Trace) -> None:
        """Keep a trace that ran: the least recently used go first past max_traces."""
        with self._lock:
            self._traces.setdefault(key, []).append(made)
            self._traces.move_to_end(key)
            self.trace_count += 1
            while sum(len(t) for t in self._traces.values()) > self.max_traces:
                oldest_key = next(iter(self._traces))
                self._traces[oldest_key].pop(0)
                if not self._traces[oldest_key]:
                    del self._traces[oldest_key]

    def _eager(self, args: tuple, key, start: list[float]) -> tuple[float, list, list]:
        """Run the function on Values and backward(): the value, the arguments' gradients
        (flat) and every parameter's gradient added onto `start`; no outside .grad changes."""
        if not is_grad_enabled():  # eager execution needs its graph, even inside no_grad()
            with enable_grad():
                return self._eager(args, key, start)
        call_args, inputs = leaves(args, key, self.name, self._arg_name)
        root = returned_value(self.func(*call_args), self.name)
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
        for leaf in values_in(call_args):
            arg_grads[inputs[id(leaf)][0]] = leaf.grad
        return root.data, arg_grads, param_grads

    def _verify(self, trace: Trace, args: tuple, key, result, start: list[float]) -> None:
        """Run the function eagerly and compare every number, bit for bit."""
        value, arg_grads, param_grads = result
        eager_value, eager_args, eager_params = self._eager(args, key, start)
        problems = []
        if not same(value, eager_value):
            problems.append(f"value {value!r} instead of {eager_value!r}")
        for k, (a, b) in enumerate(zip(arg_grads, eager_args)):
            if not same(a, b):
                problems.append(f"gradient {k} {a!r} instead of {b!r}")
                break
        for i, a in zip(trace.param_index, param_grads):
            if not same(a, eager_params[i]):
                problems.append(f"gradient of parameter {self.param_names[i]} {a!r} instead "
                                f"of {eager_params[i]!r}")
                break
        if problems:
            raise CompileError(
                f"compiled {self.name}: reusing a trace gave {problems[0]} where running the "
                "function gives the other number. The function depends on its inputs in a way "
                "the trace cannot see: it reads v.data (or a number derived from it), draws "
                "random numbers, or branches on something other than a Value comparison (a "
                "Python global, say). Compare Values directly (`if x > 0`), pass settings as "
                "static arguments, keep randomness outside, or do not "
                "compile this function.")



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

    What a trace sees, and so what stays right when it is reused: comparisons of Values
    (`if x > 0`, each becomes a guard), errors of operations that `func` catches (`try:
    x.log() except ValueError:`, a guard too), constants `func` makes, and Values made before
    the call (read at every call, with the `.data` they hold then, as eager execution would).
    `float(v)`, `v.detach()` and `no_grad()` inside `func` are refused with a CompileError.

    What a trace cannot see, and so can get wrong: anything else `func` decides on that is not
    a Value comparison. A Python global or attribute read in a branch (`if DEBUG:`), the
    number in `v.data`, random numbers, the clock: a trace bakes in what they were when it
    was made. A change that the first reuse does not show (the global changed later) gives
    the traced path's number without any error. Pass such a setting as a static argument, or
    debug with `check="always"`, which runs `func` eagerly at every call and raises a
    CompileError at the first call whose numbers differ. Comparisons made in other threads
    that `func` starts are not recorded. Operations whose result `func` throws away are not
    computed again, and `func`'s own side effects happen only when it is traced (and checked).
    """
    return CompiledFunction(func, params=params, static_argnums=static_argnums,
                            max_nodes=max_nodes, max_traces=max_traces, check=check)
