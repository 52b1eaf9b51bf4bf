"""Neurons, layers and multi-layer perceptrons, with the same defaults as micrograd.

A `Neuron` computes `activation(w . x + b)`; a `Layer` is a list of neurons that all see the same
inputs; an `MLP` feeds each layer's outputs to the next. The one idea to understand: a neuron is
three nodes in the graph, not 2n. `autodiff.dot(w, x)` is a single node with all the weights and
inputs as parents, then one node adds the bias and one applies the activation, so a drawn graph
stays readable and backward has fewer nodes to visit.

    >>> import random
    >>> random.seed(1337)                 # as micrograd's demo does
    >>> model = MLP(2, [16, 16, 1])       # hidden layers ReLU, last layer linear
    >>> len(model.parameters())
    337
    >>> model.parameters()[0] is model.layers[0].neurons[0].w[0]
    True
    >>> model([2.0, -1.0])                # one output: a single Value, not a list
    Value(data=..., grad=0.0)

Defaults match micrograd, so its demos run unchanged: weights uniform in [-1, 1], bias 0,
parameters ordered layer by layer, neuron by neuron, weights then bias, and without `seed` or
`rng` the weights come from Python's global `random`, so `random.seed(1337)` gives micrograd's
exact starting weights. Pass `seed=` (or your own `rng=random.Random(...)`) to make a model
reproducible without touching global state.

`model(x)` builds a graph for one point. To see what a model computes over many points (a
decision boundary, each neuron's picture, which ReLUs are dead) there is one float evaluation,
`layer_outputs(points)`: every layer's outputs at every point, on plain floats, the very numbers
`model(x)` gives under `no_grad()`. Every view that draws a model draws from it.

    >>> outs = model.layer_outputs([[2.0, -1.0], [0.0, 0.5]])
    >>> len(outs), len(outs[0]), len(outs[0][0])   # layers, neurons of layer 0, points
    (3, 16, 2)
    >>> outs[-1][0][0] == model([2.0, -1.0]).data
    True
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from numbers import Real
from typing import Any, NamedTuple

import autodiff
from autodiff import PRIMITIVES, Value, is_grad_enabled
from nn._checks import check_bool, check_choice, check_rng, check_seed
from nn.module import Module

__all__ = ["Neuron", "Layer", "MLP", "Activation", "ACTIVATIONS", "INITS", "activation"]


class Activation(NamedTuple):
    """One activation a neuron can apply to its sum, in every form the house needs it.

    `function` runs on a Value or a float (an autodiff function, so it has a derivative);
    None means the sum itself. `on_floats` is the same function on plain floats, for evaluating
    many points fast (`layer_outputs`); None means `function` itself. `torch` names the
    `torch.nn` class that computes the same numbers (nn.torch_bridge reads it); None: none.
    """

    function: Callable | None
    on_floats: Callable[[float], float] | None = None
    torch: str | None = None


#: THE activation table: name -> Activation. Everything that applies an activation reads it:
#: the neurons, `layer_outputs` (and so the playground's pictures and nn.plots), the torch
#: bridge, the playground's choices. An entry may also be a bare function of a Value or a
#: float (`ACTIVATIONS["leaky_relu"] = leaky_relu`): it is then used on floats too and has
#: no torch counterpart.
ACTIVATIONS: dict[str, Activation | Callable] = {
    "relu": Activation(autodiff.relu, PRIMITIVES["relu"].forward, "ReLU"),
    "tanh": Activation(autodiff.tanh, PRIMITIVES["tanh"].forward, "Tanh"),
    "sigmoid": Activation(autodiff.sigmoid, PRIMITIVES["sigmoid"].forward, "Sigmoid"),
    "linear": Activation(None, None, "Identity"),
}

#: Weight initialisations: init name -> bound of the uniform distribution for a neuron with nin
#: inputs. "uniform" is micrograd's U(-1, 1); "fan_in" is U(-1/sqrt(nin), 1/sqrt(nin)), the
#: bound torch.nn.Linear uses, which keeps the sum's scale independent of the width; "kaiming"
#: is U(-sqrt(6/nin), sqrt(6/nin)), He's bound for ReLU layers.
INITS: dict[str, Callable[[int], float]] = {
    "uniform": lambda nin: 1.0,
    "fan_in": lambda nin: 1.0 / math.sqrt(nin),
    "kaiming": lambda nin: math.sqrt(6.0 / nin),
}


class Neuron(Module):
    """`activation(w . x + b)` for `nin` inputs.

    Args:
        nin: number of inputs.
        activation: "relu" (default, as micrograd), "tanh", "sigmoid" or "linear".
        init: "uniform" (U(-1, 1), default), "fan_in" or "kaiming"; see `INITS`.
        seed / rng: where the initial weights come from (default: Python's global `random`).
        nonlin: micrograd's spelling, kept for its demos: True means "relu", False "linear".

    The bias starts at 0.
    """

    def __init__(
        self,
        nin: int,
        activation: str = "relu",
        *,
        init: str = "uniform",
        seed: int | None = None,
        rng: random.Random | None = None,
        nonlin: bool | None = None,
    ) -> None:
        _check_size("Neuron", "nin", nin)
        if nonlin is not None:
            activation = "relu" if check_bool("Neuron", "nonlin", nonlin) else "linear"
        self._act = _activation("Neuron", activation).function
        bound = INITS[_check_init("Neuron", init)](nin)
        rng = _rng("Neuron", seed, rng)
        self.nin = nin
        self.activation = activation
        self.init = init
        self.w = [Value(rng.uniform(-bound, bound)) for _ in range(nin)]
        self.b = Value(0.0)

    def forward(self, x: Any) -> Value:
        return self._forward(_inputs("Neuron", x, self.nin))

    def _forward(self, x: Sequence) -> Value:
        # Inputs are already checked. Under no_grad() nothing will be differentiated, so compute
        # on plain floats and hand back a constant Value: same number, far less work.
        if not is_grad_enabled():
            s = self.b.data
            for w, xi in zip(self.w, x):
                s += w.data * (xi.data if isinstance(xi, Value) else xi)
            return Value(self._act(s) if self._act else s)
        s = autodiff.dot(self.w, x) + self.b
        return self._act(s) if self._act else s

    def layer_outputs(self, points: Any) -> list[list[list[float]]]:
        """This neuron's output at every point, as `[[outputs]]` (one layer of one neuron),
        on plain floats; see `MLP.layer_outputs`."""
        return [[_neuron_floats(self, _columns("Neuron.layer_outputs", points, self.nin))]]

    def config(self) -> dict[str, Any]:
        return {"nin": self.nin, "activation": self.activation, "init": self.init}

    @classmethod
    def count_parameters(cls, config: dict[str, Any]) -> int:
        _check_size("Neuron", "nin", config.get("nin"))
        return config["nin"] + 1

    @classmethod
    def parameter_names(cls, config: dict[str, Any]) -> Iterator[str]:
        cls.count_parameters(config)
        return _neuron_names("", config["nin"])

    def extra_repr(self) -> str:
        return f"{self.nin}, activation={self.activation!r}"

    def __repr__(self) -> str:
        return f"Neuron({self.extra_repr()})"

    def to_torch(self) -> Any:
        """This neuron in PyTorch: Sequential(Linear(nin, 1), activation), float64, same weights."""
        return _torch_door("to_torch")(self)

    @classmethod
    def from_torch(cls, sequential: Any) -> Neuron:
        """A Neuron from a torch Sequential(Linear(nin, 1), activation); see nn.torch_bridge."""
        return _torch_door("from_torch")(sequential, cls)


class Layer(Module):
    """`nout` neurons that all read the same `nin` inputs.

    Calling it returns a list of `nout` Values, or a single Value when `nout == 1` (as in
    micrograd). The other arguments are those of `Neuron` and apply to every neuron.
    """

    def __init__(
        self,
        nin: int,
        nout: int,
        activation: str = "relu",
        *,
        init: str = "uniform",
        seed: int | None = None,
        rng: random.Random | None = None,
        nonlin: bool | None = None,
    ) -> None:
        _check_size("Layer", "nin", nin)
        _check_size("Layer", "nout", nout)
        if nonlin is not None:
            activation = "relu" if check_bool("Layer", "nonlin", nonlin) else "linear"
        _activation("Layer", activation)
        _check_init("Layer", init)
        rng = _rng("Layer", seed, rng)
        self.nin = nin
        self.nout = nout
        self.activation = activation
        self.init = init
        self.neurons = [Neuron(nin, activation, init=init, rng=rng) for _ in range(nout)]

    def forward(self, x: Any) -> Value | list[Value]:
        out = self._forward(_inputs("Layer", x, self.nin))
        return out[0] if len(out) == 1 else out

    def _forward(self, x: Sequence) -> list[Value]:
        if is_grad_enabled():
            # Turn plain numbers into Values once for the whole layer, not once per neuron:
            # all neurons then share one input node each (fewer nodes, and an input's .grad
            # is its full gradient).
            x = [xi if isinstance(xi, Value) else Value(xi) for xi in x]
        return [n._forward(x) for n in self.neurons]

    def layer_outputs(self, points: Any) -> list[list[list[float]]]:
        """The layer's outputs at every point, as `[[neuron 0's outputs], [neuron 1's], ...]]`
        (one layer), on plain floats; see `MLP.layer_outputs`."""
        columns = _columns("Layer.layer_outputs", points, self.nin)
        return [[_neuron_floats(n, columns) for n in self.neurons]]

    def config(self) -> dict[str, Any]:
        return {"nin": self.nin, "nout": self.nout, "activation": self.activation,
                "init": self.init}

    @classmethod
    def count_parameters(cls, config: dict[str, Any]) -> int:
        _check_size("Layer", "nin", config.get("nin"))
        _check_size("Layer", "nout", config.get("nout"))
        return config["nout"] * (config["nin"] + 1)

    @classmethod
    def parameter_names(cls, config: dict[str, Any]) -> Iterator[str]:
        cls.count_parameters(config)
        return _layer_names("", config["nin"], config["nout"])

    def extra_repr(self) -> str:
        return f"{self.nin} -> {self.nout}, activation={self.activation!r}"

    def __repr__(self) -> str:  # the neurons would only repeat what this line says
        return f"Layer({self.extra_repr()})"

    def to_torch(self) -> Any:
        """This layer in PyTorch: Sequential(Linear(nin, nout), activation), float64, same
        weights."""
        return _torch_door("to_torch")(self)

    @classmethod
    def from_torch(cls, sequential: Any) -> Layer:
        """A Layer from a torch Sequential(Linear(nin, nout), activation); see nn.torch_bridge."""
        return _torch_door("from_torch")(sequential, cls)


class MLP(Module):
    """A multi-layer perceptron: `nin` inputs, then one `Layer` per entry of `nouts`.

    Args:
        nin: number of inputs.
        nouts: the width of each layer, the last being the number of outputs.
        activation: one name for every hidden layer (default "relu"), or a list with one name
            per layer, the last layer included.
        output_activation: the last layer's activation when `activation` is one name
            (default "linear", as in micrograd).
        init, seed, rng: as for `Neuron`; the layers draw their weights in order from one
            generator, so `MLP(2, [16, 16, 1], seed=0)` is always the same model.

    `model(x)` takes a list (or tuple, or array row) of `nin` floats or Values and returns a
    list of Values, or a single Value when the last layer has one output.
    """

    def __init__(
        self,
        nin: int,
        nouts: Sequence[int],
        activation: str | Sequence[str] = "relu",
        output_activation: str | None = None,
        *,
        init: str = "uniform",
        seed: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        _check_size("MLP", "nin", nin)
        if isinstance(nouts, (str, bytes)) or not isinstance(nouts, Sequence) or not nouts:
            raise ValueError(f"MLP: nouts must be a non-empty list of layer sizes, got {nouts!r}")
        for size in nouts:
            _check_size("MLP", "each entry of nouts", size)
        if isinstance(activation, str):
            _activation("MLP", activation)  # checked even with no hidden layer to use it
            last = "linear" if output_activation is None else output_activation
            activations = [activation] * (len(nouts) - 1) + [last]
        elif not isinstance(activation, Sequence):
            raise TypeError(f"MLP: activation must be a name or a list of names, one per layer, "
                            f"got {type(activation).__name__}: {activation!r}")
        else:
            if output_activation is not None:
                raise ValueError("MLP: give output_activation only when activation is a single "
                                 "name; a list of activations already names the last layer's")
            activations = list(activation)
            if len(activations) != len(nouts):
                raise ValueError(f"MLP: {len(activations)} activations for {len(nouts)} layers; "
                                 "give one per layer")
        for name in activations:
            _activation("MLP", name)
        _check_init("MLP", init)
        rng = _rng("MLP", seed, rng)
        sizes = [nin, *nouts]
        self.nin = nin
        self.nouts = list(nouts)
        self.activations = activations
        self.init = init
        self.layers = [
            Layer(sizes[i], sizes[i + 1], activations[i], init=init, rng=rng)
            for i in range(len(nouts))
        ]

    def forward(self, x: Any) -> Value | list[Value]:
        x = _inputs("MLP", x, self.nin)
        for layer in self.layers:
            x = layer._forward(x)
        return x[0] if len(x) == 1 else x

    def layer_outputs(self, points: Any) -> list[list[list[float]]]:
        """Every layer's outputs at every point, on plain floats: the model's one float
        evaluation, from which every drawing of it is made.

        `points` is a list (or array) of points, each `nin` numbers. The result is indexed
        `[layer][neuron][point]`: `outs[-1][0]` is the first output at every point, and
        `outs[i][j]` neuron j of layer i over all points, which is its picture. The numbers
        are those of `model(x)` under `no_grad()`, bit for bit (same sums in the same order,
        the activations' own float functions); no Value is made, so it is fast.
        """
        h = _columns("MLP.layer_outputs", points, self.nin)
        outputs = []
        for layer in self.layers:
            h = [_neuron_floats(n, h) for n in layer.neurons]
            outputs.append(h)
        return outputs

    def config(self) -> dict[str, Any]:
        return {"nin": self.nin, "nouts": list(self.nouts), "activation": list(self.activations),
                "init": self.init}

    @classmethod
    def count_parameters(cls, config: dict[str, Any]) -> int:
        _check_size("MLP", "nin", config.get("nin"))
        nouts = config.get("nouts")
        if not isinstance(nouts, list) or not nouts:
            raise ValueError(f"MLP: nouts must be a non-empty list of layer sizes, got {nouts!r}")
        sizes = [config["nin"], *nouts]
        for size in nouts:
            _check_size("MLP", "each entry of nouts", size)
        return sum(sizes[i + 1] * (sizes[i] + 1) for i in range(len(nouts)))

    @classmethod
    def parameter_names(cls, config: dict[str, Any]) -> Iterator[str]:
        cls.count_parameters(config)
        sizes = [config["nin"], *config["nouts"]]
        return (name for k in range(len(sizes) - 1)
                for name in _layer_names(f"layers.{k}.", sizes[k], sizes[k + 1]))

    def extra_repr(self) -> str:
        return f"{self.nin}, {self.nouts}; {self.num_parameters()} parameters"

    def to_torch(self) -> Any:
        """This MLP in PyTorch: a Sequential of float64 Linear layers and activations, same
        weights; `nn.torch_bridge.torch_names(model)` pairs the parameters' names."""
        return _torch_door("to_torch")(self)

    @classmethod
    def from_torch(cls, sequential: Any) -> MLP:
        """An MLP from a torch Sequential of float64 Linear layers, each followed by at most one of
        ReLU, Tanh, Sigmoid or Identity; anything else is a ValueError naming the layer."""
        return _torch_door("from_torch")(sequential, cls)


# ---- the doors to PyTorch ------------------------------------------------------------------------

#: The work behind `model.to_torch()` ("to_torch") and `MLP.from_torch(...)` ("from_torch"),
#: handed in by nn.torch_bridge when it is imported (`import nn` imports it). The bridge builds
#: on this module (it reads the layers and the activation table), so this module names it
#: nowhere and imports nothing of torch; torch itself is imported only when a door is used.
TORCH_DOORS: dict[str, Callable] = {}


def _torch_door(name: str) -> Callable:
    try:
        return TORCH_DOORS[name]
    except KeyError:
        raise ImportError(f"{name} is the work of nn.torch_bridge, which is not imported; "
                          "import nn (or nn.torch_bridge) first") from None


def _neuron_names(prefix: str, nin: int) -> Iterator[str]:
    """The names `named_parameters()` gives a neuron's weights and bias, in order."""
    for i in range(nin):
        yield f"{prefix}w.{i}"
    yield f"{prefix}b"


def _layer_names(prefix: str, nin: int, nout: int) -> Iterator[str]:
    for j in range(nout):
        yield from _neuron_names(f"{prefix}neurons.{j}.", nin)


# ---- argument checks -----------------------------------------------------------------------------


def _inputs(who: str, x: Any, nin: int) -> Sequence:
    """`x` as a sequence of `nin` numbers or Values, or a clear error."""
    if isinstance(x, (Value, Real)):
        x = (x,)  # a lone number is a fine input for a one-input model
    elif isinstance(x, (Mapping, Set, str, bytes)):
        # A dict would be read as its keys and a set in no fixed order: neither is a point.
        raise TypeError(f"{who} expects a list of {nin} numbers or Values, "
                        f"got {type(x).__name__}: {x!r}")
    elif not isinstance(x, Sequence):
        try:
            x = list(x)  # an array row, a generator, ...
        except TypeError:
            raise TypeError(f"{who} expects a list of {nin} numbers or Values, "
                            f"got {type(x).__name__}: {x!r}") from None
    if len(x) != nin:
        raise ValueError(f"{who} expects {nin} input{'s' if nin != 1 else ''}, got {len(x)}")
    for xi in x:
        if not isinstance(xi, (Value, Real)) or isinstance(xi, bool):
            raise TypeError(f"{who} inputs must be numbers or Values, "
                            f"got {type(xi).__name__}: {xi!r}")
    return x


def _check_size(who: str, name: str, n: Any) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{who}: {name} must be a positive integer, got {n!r}")


def activation(name: str) -> Activation:
    """The table's entry for activation `name` as an `Activation` (a bare function entry
    becomes `Activation(function, function, None)`), or a ValueError naming the choices."""
    return _activation("activation", name)


def _activation(who: str, name: Any) -> Activation:
    entry = ACTIVATIONS[check_choice(who, "activation", name, ACTIVATIONS)]
    if isinstance(entry, Activation):
        return entry
    if not callable(entry):
        raise TypeError(f"{who}: ACTIVATIONS[{name!r}] must be an Activation or a function, "
                        f"got {type(entry).__name__}: {entry!r}")
    return Activation(entry, entry, None)


# ---- the float evaluation ------------------------------------------------------------------------


def _columns(who: str, points: Any, nin: int) -> list[list[float]]:
    """`points` (rows of `nin` numbers) as `nin` columns of floats, or a clear error."""
    if isinstance(points, (Value, Real, Mapping, Set, str, bytes)):
        raise TypeError(f"{who} expects a list of points, got {type(points).__name__}: "
                        f"{points!r}")
    try:
        rows = points if isinstance(points, Sequence) else list(points)
    except TypeError:
        raise TypeError(f"{who} expects a list of points, got {type(points).__name__}: "
                        f"{points!r}") from None
    # The usual case (lists or tuples of nin numbers) is checked at C speed, row by row only
    # when something is off, to name the point.
    if not (set(map(type, rows)) <= {list, tuple} and set(map(len, rows)) <= {nin}):
        _check_rows(who, rows, nin)
    columns = [list(c) for c in zip(*rows)] if rows else [[] for _ in range(nin)]
    for j, column in enumerate(columns):
        if set(map(type, column)) <= {float}:
            continue
        for i, v in enumerate(column):
            if type(v) is not float:
                if not isinstance(v, Real) or isinstance(v, bool):
                    raise TypeError(f"{who}: point {i} must hold numbers, got "
                                    f"{type(v).__name__}: {v!r} at coordinate {j}")
                column[i] = float(v)
    return columns


def _check_rows(who: str, rows: Sequence, nin: int) -> None:
    for i, row in enumerate(rows):
        if isinstance(row, (Mapping, Set, str, bytes)) or not hasattr(row, "__len__"):
            raise TypeError(f"{who}: point {i} must be a list of {nin} numbers, "
                            f"got {type(row).__name__}: {row!r}")
        if len(row) != nin:
            raise ValueError(f"{who}: point {i} has {len(row)} coordinates, the model takes "
                             f"{nin}")


def _neuron_floats(neuron: Neuron, columns: list[list[float]]) -> list[float]:
    """One neuron at every point: `activation(b + w0 x0 + w1 x1 + ...)`, summed in the order
    `Neuron.forward` sums under no_grad() (the bias, then each weight times its input, left to
    right), with the activation's own float function from the table, so the numbers are the
    same to the last bit."""
    weights = [w.data for w in neuron.w]
    if neuron.activation == "relu":  # written into the kernel: a call per point cost more
        return _kernel(len(columns), "relu")(neuron.b.data, *weights, *columns)
    act = _activation("Neuron", neuron.activation)
    f = act.on_floats or act.function
    kernel = _kernel(len(columns), f is not None)
    return kernel(f, neuron.b.data, *weights, *columns) if f is not None \
        else kernel(neuron.b.data, *weights, *columns)


#: The kernels made so far: (fan-in, with an activation) -> function; see `_kernel`.
_KERNELS: dict[tuple[int, bool | str], Callable] = {}


def _kernel(nin: int, activated: bool | str) -> Callable:
    """The sum of a neuron of `nin` inputs over every point, as one list comprehension.

    For nin = 2 (and an activation f) it is
    `lambda f, b, w0, w1, c0, c1: [f(b + w0 * x0 + w1 * x1) for (x0, x1) in zip(c0, c1)]`:
    one pass over the points, the additions left to right as `Neuron.forward` does them (never
    `sum()`, whose rounding differs between Python versions), no intermediate list per input.
    Written out once per fan-in, because a loop over the inputs inside the comprehension would
    cost more than the arithmetic itself. `activated="relu"` writes relu's own float
    expression (`0.0 if x < 0 else x`, as in autodiff.ops) into the comprehension instead.
    """
    kernel = _KERNELS.get((nin, activated))
    if kernel is None:
        ws = ", ".join(f"w{i}" for i in range(nin))
        cs = ", ".join(f"c{i}" for i in range(nin))
        xs = "".join(f"x{i}, " for i in range(nin))
        total = "b" + "".join(f" + w{i} * x{i}" for i in range(nin))
        if activated == "relu":
            head, body = "", f"(0.0 if (t := {total}) < 0 else t)"
        else:
            head, body = ("f, ", f"f({total})") if activated else ("", total)
        source = (f"def kernel({head}b, {ws}, {cs}):\n"
                  f"    return [{body} for ({xs}) in zip({cs})]\n")
        namespace: dict[str, Any] = {}
        exec(compile(source, f"<nn.layers: neuron kernel of {nin} inputs>", "exec"), namespace)
        kernel = _KERNELS[(nin, activated)] = namespace["kernel"]
    return kernel


def _check_init(who: str, init: Any) -> str:
    return check_choice(who, "init", init, INITS)


def _rng(who: str, seed: int | None, rng: Any) -> Any:
    if seed is not None and rng is not None:
        raise ValueError(f"{who}: give seed or rng, not both")
    if rng is not None:
        return check_rng(who, rng)
    if seed is not None:
        return random.Random(check_seed(who, seed))
    return random  # the global generator, as micrograd uses
