"""The bridge to PyTorch: the same network, and the same optimizer state, as torch objects.

`model.to_torch()` turns an `MLP`, `Layer` or `Neuron` into a `torch.nn.Sequential` of float64
`Linear` layers and activations holding the very same weights; `MLP.from_torch(sequential)` goes
back; `nn.optim.to_torch(opt, torch_params)` and `nn.optim.from_torch(torch_opt, params)` carry an
optimizer's hyper-parameters and per-parameter state across, so training continues on the other
side with the same numbers. Those methods and functions are the doors; this module holds the
work behind them. The one idea to understand: a `Layer` of n neurons is one matrix.
Row r of a `Linear` layer's weight holds neuron r's weights, so the scalar `Value` called
`layers.0.neurons.3.w.1` becomes the element `0.weight[3, 1]` of a tensor (`torch_names` lists
the whole pairing), and a parameter's gradient, momentum buffer or Adam average moves with it.

    >>> from nn import MLP
    >>> model = MLP(2, [3, 1], seed=0)
    >>> names = torch_names(model)          # needs no torch
    >>> names["layers.0.neurons.2.w.1"], names["layers.0.neurons.2.b"]
    ('0.weight[2, 1]', '0.bias[2]')
    >>> names["layers.1.neurons.0.w.2"]     # chainrule's layer 1 is torch's module 2
    '2.weight[0, 2]'

Each chainrule layer becomes two torch modules, the `Linear` and its activation (`Identity` for
"linear"), so chainrule's layer i is torch's module 2 i. torch stays optional: this module imports
it only inside the functions that need it, and says which `pip install` line to run when it is
missing. Everything is float64 on both sides, which is what makes "the same numbers" hold to
about 1e-15 per operation.

Imports go one way: this module builds on `nn.layers` (it reads a model's layers and the
activation table, whose entries name their torch class) and on `nn.optim` (the optimizers with a
torch namesake); neither imports it. `model.to_torch()`, `MLP.from_torch(...)`,
`nn.optim.to_torch` and `nn.optim.from_torch` are doors there whose work this module hands in
when it is imported (`import nn` imports it).
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Iterable
from typing import Any

from autodiff import Value
from nn.layers import ACTIVATIONS, MLP, TORCH_DOORS, Layer, Neuron
from nn.layers import activation as activation_entry
from nn.module import Module
from nn.optim.base import TORCH_DOORS as OPTIMIZER_DOORS
from nn.optim import MATRIX_NAMESAKES, TORCH_NAMESAKES

__all__ = ["PIP_INSTALL", "torch_names", "torch_locations", "module_to_torch", "mlp_from_torch",
           "layer_from_torch", "neuron_from_torch", "module_from_torch", "optimizer_to_torch",
           "optimizer_from_torch", "matrix_optimizer_to_torch", "matrix_optimizer_from_torch"]

#: The line to run when torch is missing (2.13.0 is the version this project tests against).
PIP_INSTALL = "pip install torch==2.13.0"


def _torch_activations() -> dict[str, str]:
    """chainrule activation name -> the torch.nn class that computes the same function, read
    from the one activation table (`nn.layers.ACTIVATIONS`); names without one are left out."""
    return {name: activation_entry(name).torch for name in ACTIVATIONS
            if activation_entry(name).torch}


def _import_torch(who: str) -> Any:
    """torch, or an ImportError that says which line installs it."""
    try:
        import torch
    except ImportError as err:
        raise ImportError(
            f"{who} needs PyTorch, which is not installed. Install it with:\n"
            f"    {PIP_INSTALL}\n"
            f"(CPU-only wheels, a smaller download: {PIP_INSTALL} "
            "--index-url https://download.pytorch.org/whl/cpu)"
        ) from err
    return torch


# ---- the pairing of names ------------------------------------------------------------------------


def _kind(module: Any) -> str | None:
    """"MLP", "Layer" or "Neuron" when `module` is one of nn.layers' classes (or a subclass).

    Only these classes, whose forward pass is known, are converted: a Module that merely holds
    `layers` could compute something else, and its torch copy would quietly give other numbers.
    """
    for cls in (MLP, Layer, Neuron):
        if isinstance(module, cls):
            return cls.__name__
    return None


def _structure(module: Any, who: str) -> list[tuple[list[str], list[Any], str]]:
    """One entry per chainrule layer: (each neuron's name prefix, the neurons, the activation).

    Read from the model's structure, the same one `Module.named_parameters` names: an MLP holds
    `layers`, each holding `neurons`; a Layer holds `neurons`; a Neuron is its own only neuron.
    """
    kind = _kind(module)
    if kind == "MLP":
        layers = [([f"layers.{i}.neurons.{r}." for r in range(len(layer.neurons))],
                   layer.neurons) for i, layer in enumerate(module.layers)]
    elif kind == "Layer":
        layers = [([f"neurons.{r}." for r in range(len(module.neurons))], module.neurons)]
    elif kind == "Neuron":
        layers = [([""], [module])]
    else:
        raise TypeError(f"{who}: expected an nn.MLP, nn.Layer or nn.Neuron, "
                        f"got {type(module).__name__}")
    out = []
    for k, (prefixes, neurons) in enumerate(layers):
        activations = {n.activation for n in neurons}
        if len(activations) != 1:
            raise ValueError(f"{who}: the neurons of layer {k} mix activations "
                             f"{sorted(activations)}; a torch Linear layer has one")
        out.append((prefixes, neurons, activations.pop()))
    # A subclass may hold parameters of its own, which a Sequential of Linear layers cannot.
    mapped = {f"{prefix}{leaf}" for prefixes, neurons, _ in out
              for prefix, n in zip(prefixes, neurons)
              for leaf in [*(f"w.{c}" for c in range(len(n.w))), "b"]}
    extra = [name for name, _ in module.named_parameters() if name not in mapped]
    if extra:
        raise ValueError(f"{who}: {type(module).__name__} has parameters outside its layers, "
                         f"which a torch Sequential of Linear layers cannot hold: {extra}")
    return out


def torch_locations(module: Module) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{chainrule parameter name: (torch parameter name, index)} in `module.parameters()` order.

    `layers.0.neurons.3.w.1` -> `("0.weight", (3, 1))`: row 3, column 1 of the first Linear's
    weight; `layers.0.neurons.3.b` -> `("0.bias", (3,))`. Read the torch number with
    `sequential.get_parameter("0.weight")[3, 1]`. Needs no torch.
    """
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for k, (prefixes, neurons, _) in enumerate(_structure(module, "torch_locations")):
        for r, (prefix, neuron) in enumerate(zip(prefixes, neurons)):
            for c in range(len(neuron.w)):
                out[f"{prefix}w.{c}"] = (f"{2 * k}.weight", (r, c))
            out[f"{prefix}b"] = (f"{2 * k}.bias", (r,))
    return out


def torch_names(module: Module) -> dict[str, str]:
    """{chainrule parameter name: torch element name}, e.g. `layers.0.neurons.3.w.1` ->
    `0.weight[3, 1]`, in `module.parameters()` order. Needs no torch."""
    return {name: f"{tensor}[{', '.join(map(str, index))}]"
            for name, (tensor, index) in torch_locations(module).items()}


# ---- models --------------------------------------------------------------------------------------


def module_to_torch(module: Module) -> Any:
    """The same network as a `torch.nn.Sequential` of float64 Linear layers and activations.

    `module` is an nn.MLP, nn.Layer or nn.Neuron (`model.to_torch()` calls this).

    Each chainrule layer becomes a `Linear(nin, nout)` whose weight row r and bias[r] are neuron
    r's weights and bias, followed by `ReLU`, `Tanh`, `Sigmoid` or `Identity`. The weights are
    copied (float64 to float64, exactly); the two models share nothing afterwards. torch's
    random generator is not touched.
    """
    who = f"{type(module).__name__}.to_torch()"
    structure = _structure(module, who)
    names = _torch_activations()
    for k, (_, _, name) in enumerate(structure):
        if name not in names:
            raise ValueError(f"{who}: layer {k}'s activation {name!r} has no torch counterpart "
                             "in nn.layers.ACTIVATIONS")
    torch = _import_torch(who)
    modules = []
    for _, neurons, activation in structure:
        # skip_init: no random initialisation, so torch's global generator is left as it was.
        linear = torch.nn.utils.skip_init(torch.nn.Linear, len(neurons[0].w), len(neurons),
                                          dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor([[w.data for w in n.w] for n in neurons],
                                             dtype=torch.float64))
            linear.bias.copy_(torch.tensor([n.b.data for n in neurons], dtype=torch.float64))
        modules += [linear, getattr(torch.nn, names[activation])()]
    return torch.nn.Sequential(*modules)


def _read_sequential(torch: Any, sequential: Any, who: str) -> list[tuple[Any, str]]:
    """[(Linear, activation name)] from a Sequential, or an error naming the layer that has no
    chainrule counterpart."""
    if isinstance(sequential, torch.nn.Linear):
        sequential = torch.nn.Sequential(sequential)
    if not isinstance(sequential, torch.nn.Sequential):
        raise TypeError(f"{who}: expected a torch.nn.Sequential (or one torch.nn.Linear), "
                        f"got {type(sequential).__name__}")
    _refuse_hooks(sequential, f"{who}: the Sequential")
    by_class = {getattr(torch.nn, cls): name for name, cls in _torch_activations().items()
                if hasattr(torch.nn, cls)}
    layers: list[tuple[Any, str]] = []
    pending = None  # a Linear whose activation may come next
    width = None  # the number of outputs of the last Linear
    for name, child in sequential.named_children():
        where = f"{who}: layer {name} ({' '.join(repr(child).split())})"  # on one line
        _refuse_hooks(child, where)
        if type(child) is torch.nn.Linear:
            if pending is not None:
                layers.append((pending, "linear"))
            if child.bias is None:
                raise ValueError(f"{where} has no bias; every chainrule neuron has one "
                                 "(build the layer with bias=True)")
            if child.weight.dtype != torch.float64 or child.bias.dtype != torch.float64:
                raise ValueError(f"{where} holds {child.weight.dtype} weights; chainrule computes "
                                 "in float64: convert the model first with .double() (exact "
                                 "from float32)")
            if child.weight.is_meta or child.bias.is_meta:
                raise ValueError(f"{where} is on the meta device: it has shapes but no weights "
                                 "to copy; materialise it first (model.to_empty(device='cpu'), "
                                 "then load its state_dict)")
            if width is not None and child.in_features != width:
                raise ValueError(f"{where} takes {child.in_features} inputs, but the Linear "
                                 f"layer before it gives {width} outputs")
            for part in ("weight", "bias"):
                if not bool(torch.isfinite(getattr(child, part)).all()):
                    raise ValueError(f"{where}: its {part} holds a non-finite number (nan or inf)")
            pending, width = child, child.out_features
        elif type(child) in by_class:
            if pending is None:
                raise ValueError(f"{where} is an activation that does not follow a Linear layer; "
                                 "chainrule's layers are a Linear followed by at most one "
                                 "activation")
            layers.append((pending, by_class[type(child)]))
            pending = None
        else:
            raise ValueError(f"{where} has no chainrule counterpart; from_torch reads Linear "
                             "layers, each followed by at most one of ReLU, Tanh, Sigmoid or "
                             "Identity")
    if pending is not None:
        layers.append((pending, "linear"))
    if not layers:
        raise ValueError(f"{who}: the Sequential holds no Linear layer")
    return layers


#: The hook tables of a torch Module: a hook there changes what the module computes (or its
#: gradients), and a chainrule model has no counterpart, so it would be dropped without a word.
_HOOK_TABLES = {"_forward_pre_hooks": "forward pre-hook", "_forward_hooks": "forward hook",
                "_backward_pre_hooks": "backward pre-hook", "_backward_hooks": "backward hook"}


def _refuse_hooks(module: Any, where: str) -> None:
    """A ValueError naming the first hook registered on `module`, if it has one."""
    for table, kind in _HOOK_TABLES.items():
        hooks = getattr(module, table, None) or {}
        for hook in hooks.values():
            name = getattr(hook, "__qualname__", None) or type(hook).__name__
            raise ValueError(f"{where} has a {kind} ({name}); chainrule models have no hooks, "
                             "so converting would drop it and change what the model computes. "
                             "Remove it first (the handle's .remove()).")


def _copy_weights(neurons: list[Any], linear: Any) -> None:
    weight = linear.weight.detach().cpu().tolist()
    bias = linear.bias.detach().cpu().tolist()
    for neuron, row, b in zip(neurons, weight, bias):
        for w, x in zip(neuron.w, row):
            w.data = x
        neuron.b.data = b


def _linears(cls: type, sequential: Any) -> tuple[str, list[tuple[Any, str]]]:
    """`who` for the messages, and the Sequential's [(Linear, activation name)]."""
    who = f"{cls.__name__}.from_torch()"
    torch = _import_torch(who)
    return who, _read_sequential(torch, sequential, who)


def _one_linear(cls: type, layers: list[tuple[Any, str]], who: str) -> tuple[Any, str]:
    if len(layers) != 1:
        raise ValueError(f"{who}: a {cls.__name__} is one Linear layer, the Sequential has "
                         f"{len(layers)}; use nn.MLP.from_torch")
    return layers[0]


def mlp_from_torch(cls: type, sequential: Any) -> Any:
    """A `cls` (nn.MLP or a subclass) with the architecture and weights of `sequential`.

    `sequential` holds float64 `Linear` layers (with bias), each followed by at most one of
    `ReLU`, `Tanh`, `Sigmoid` or `Identity` (none: linear). Anything else is a ValueError that
    names the layer. `cls` is built as `cls(nin, nouts, activation=[...], seed=0)`.
    """
    who, layers = _linears(cls, sequential)
    sizes = [layers[0][0].in_features] + [linear.out_features for linear, _ in layers]
    activations = [activation for _, activation in layers]
    # seed=0: the initial weights are overwritten; a seed keeps Python's `random` untouched.
    model = cls(sizes[0], sizes[1:], activation=activations, seed=0)
    for layer, (linear, _) in zip(model.layers, layers):
        _copy_weights(layer.neurons, linear)
    return model


def layer_from_torch(cls: type, sequential: Any) -> Any:
    """A `cls` (nn.Layer or a subclass) from a Sequential of exactly one Linear layer and at
    most one activation, as `mlp_from_torch` reads it; built as `cls(nin, nout, activation)`."""
    who, layers = _linears(cls, sequential)
    linear, activation = _one_linear(cls, layers, who)
    layer = cls(linear.in_features, linear.out_features, activation, seed=0)
    _copy_weights(layer.neurons, linear)
    return layer


def neuron_from_torch(cls: type, sequential: Any) -> Any:
    """A `cls` (nn.Neuron or a subclass) from a Sequential of one Linear layer with one output
    and at most one activation; built as `cls(nin, activation)`."""
    who, layers = _linears(cls, sequential)
    linear, activation = _one_linear(cls, layers, who)
    if linear.out_features != 1:
        raise ValueError(f"{who}: a Neuron has one output, the Linear layer has "
                         f"{linear.out_features}; use nn.Layer.from_torch")
    neuron = cls(linear.in_features, activation, seed=0)
    _copy_weights([neuron], linear)
    return neuron


def module_from_torch(sequential: Any, cls: type = MLP) -> Any:
    """A `cls` (nn.MLP, nn.Layer, nn.Neuron or a subclass) from a torch Sequential: the work
    behind `MLP.from_torch`, `Layer.from_torch` and `Neuron.from_torch`."""
    if isinstance(cls, type) and issubclass(cls, Neuron):
        return neuron_from_torch(cls, sequential)
    if isinstance(cls, type) and issubclass(cls, Layer):
        return layer_from_torch(cls, sequential)
    if isinstance(cls, type) and issubclass(cls, MLP):
        return mlp_from_torch(cls, sequential)
    raise TypeError(f"from_torch: cls must be nn.MLP, nn.Layer or nn.Neuron (or a subclass), "
                    f"got {cls!r}")


# The doors of nn.layers (`model.to_torch()`, `MLP.from_torch(...)`) lead here.
TORCH_DOORS.update(to_torch=module_to_torch, from_torch=module_from_torch)


# ---- optimizers ----------------------------------------------------------------------------------

# Keys of a torch param_group that choose an implementation (loops, fused kernels, graph capture)
# without changing the numbers, or that torch adds for bookkeeping.
_IMPLEMENTATION_KEYS = {"params", "foreach", "fused", "differentiable", "capturable", "initial_lr",
                        "param_names"}


def _by_name(classes: Iterable[type] | None) -> dict[str, type]:
    """{name: class} of the chainrule optimizers that have a torch.optim namesake (by default
    nn.optim's TORCH_NAMESAKES)."""
    return {cls.__name__: cls for cls in (TORCH_NAMESAKES if classes is None else classes)}


def _tensors(torch: Any, torch_params: Any, who: str) -> tuple[list[str], list[Any]]:
    """The tensors of `torch_params` (a torch Module or an iterable of tensors), with names."""
    if isinstance(torch_params, torch.nn.Module):
        named = list(torch_params.named_parameters())
        names, tensors = [n for n, _ in named], [t for _, t in named]
    elif isinstance(torch_params, torch.Tensor):
        raise TypeError(f"{who}: torch_params must be a torch Module or an iterable of tensors, "
                        "got a single tensor; wrap it in a list: [t]")
    else:
        try:
            tensors = list(torch_params)
        except TypeError:
            raise TypeError(f"{who}: torch_params must be a torch Module or an iterable of "
                            f"tensors, got {type(torch_params).__name__}") from None
        names = [f"torch_params[{i}]" for i in range(len(tensors))]
    for name, t in zip(names, tensors):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{who}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype != torch.float64:
            raise ValueError(f"{who}: {name} is {t.dtype}; chainrule's numbers are float64, "
                             "so the torch parameters must be too (model.to_torch() makes them "
                             "float64; or call .double())")
    return names, tensors


def _slots(tensors: list[Any]) -> list[tuple[int, tuple[int, ...]]]:
    """(tensor index, element index) for each chainrule parameter, in chainrule's order.

    A 2-D tensor followed by a 1-D tensor of its row count is a Linear layer's weight and bias,
    read neuron by neuron as `Neuron` orders its parameters: row r of the weight, then bias[r].
    Any other tensor is read element by element in row-major order.
    """
    slots: list[tuple[int, tuple[int, ...]]] = []
    i = 0
    while i < len(tensors):
        shape = tuple(tensors[i].shape)
        after = tuple(tensors[i + 1].shape) if i + 1 < len(tensors) else None
        if len(shape) == 2 and after == (shape[0],):
            for r in range(shape[0]):
                slots += [(i, (r, c)) for c in range(shape[1])] + [(i + 1, (r,))]
            i += 2
        else:
            slots += [(i, index) for index in itertools.product(*map(range, shape))]
            i += 1
    return slots


def _slot_name(names: list[str], slot: tuple[int, tuple[int, ...]]) -> str:
    i, index = slot
    return f"{names[i]}[{', '.join(map(str, index))}]"


def _pair(params: list[Value], names: list[str], tensors: list[Any], who: str,
          side: str) -> list[tuple[int, tuple[int, ...]]]:
    """The slot of each chainrule parameter, checked: the counts and every number must agree."""
    slots = _slots(tensors)
    if len(slots) != len(params):
        raise ValueError(f"{who}: the chainrule optimizer has {len(params)} parameters but the "
                         f"torch tensors hold {len(slots)} numbers")
    numbers = [t.detach().cpu().tolist() for t in tensors]
    for k, (p, slot) in enumerate(zip(params, slots)):
        i, index = slot
        x = numbers[i]
        for j in index:
            x = x[j]
        if x != p.data:
            raise ValueError(
                f"{who}: {side}[{k}] is {p.data!r} but its torch counterpart "
                f"{_slot_name(names, slot)} is {x!r}. The torch tensors must hold the same "
                "weights, ordered as model.parameters() (Linear weight row r, then bias[r]): "
                "make them with model.to_torch() after the last step")
    return slots


#: State that torch.optim keeps as one number per tensor (chainrule: the same number in every
#: weight's state), with what it counts: step counts, NAdam's product of momentum factors,
#: ASGD's step size and averaging factor. torch keeps them as float32 tensors unless float64
#: is the default dtype (then the numbers agree to the last bit).
PER_TENSOR_STATE = {"step": "step counts", "mu_product": "mu_product values",
                    "eta": "ASGD step sizes eta", "mu": "ASGD averaging factors mu"}


def _step_dtype(torch: Any) -> Any:
    # torch.optim keeps step counts as float32 tensors unless float64 is the default dtype.
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def optimizer_to_torch(opt: Any, torch_params: Any,
                       classes: Iterable[type] | None = None) -> Any:
    """The `torch.optim` optimizer that continues where the chainrule optimizer `opt` stands.

        torch_model = model.to_torch()
        torch_opt = nn.optim.to_torch(opt, torch_model.parameters())

    Same class (SGD, Adam, AdamW, RMSprop, Adagrad, NAdam, RAdam, Adamax, Adadelta, Rprop,
    ASGD; Muon and Adafactor per matrix, see `matrix_optimizer_to_torch`), same
    hyper-parameters (the current `lr`, and `initial_lr` when a schedule set one), and the
    same per-parameter state: momentum
    buffers, Adam's averages and step counts, RMSprop's and Adagrad's sums, placed element by
    element where each Value went (see `torch_locations`). `torch_params` is a torch Module or
    its parameters, holding exactly the optimizer's current weights in `model.parameters()`
    order; any disagreement in count or value is a ValueError, never a silent mismatch.
    `classes` are the chainrule classes that may be carried over (default: nn.optim's
    TORCH_NAMESAKES). This is `nn.optim.to_torch`.
    """
    who = "nn.optim.to_torch()"
    if classes is None and type(opt) in MATRIX_NAMESAKES:  # Muon, Adafactor: per matrix
        return matrix_optimizer_to_torch(opt, torch_params)
    classes = _by_name(classes)
    if type(opt) not in classes.values():
        raise TypeError(f"{who}: expected one of the optimizers {', '.join(classes)} of "
                        f"nn.optim, got {type(opt).__name__}")
    torch = _import_torch(who)
    names, tensors = _tensors(torch, torch_params, who)
    slots = _pair(opt.params, names, tensors, who, "opt.params")

    torch_cls = getattr(torch.optim, opt.name)
    accepted = inspect.signature(torch_cls).parameters
    kwargs = {}
    for name in opt.hyperparams:
        if name not in accepted:
            raise ValueError(f"{who}: torch {torch.__version__}'s {opt.name} has no "
                             f"hyper-parameter {name!r} (here {getattr(opt, name)!r})")
        kwargs[name] = getattr(opt, name)
    torch_opt = torch_cls(tensors, **kwargs)
    if opt.initial_lr is not None:
        torch_opt.param_groups[0]["initial_lr"] = opt.initial_lr

    # Gather each tensor's elements' states, then build one tensor per state entry.
    per_tensor: list[list[tuple[tuple[int, ...], dict[str, float]]]] = [[] for _ in tensors]
    for (i, index), state in zip(slots, opt.state):
        per_tensor[i].append((index, state))
    for i, (t, elements) in enumerate(zip(tensors, per_tensor)):
        keys = {frozenset(state) for _, state in elements}
        if len(keys) != 1:
            raise ValueError(f"{who}: the parameters that become {names[i]} have different "
                             f"state entries ({sorted(map(sorted, keys))}); torch keeps one "
                             "state per tensor")
        keys = set(keys.pop())
        if not keys:
            continue  # not stepped yet: torch's own initial state is the same
        state: dict[str, Any] = {}
        for key in sorted(keys & set(PER_TENSOR_STATE)):
            found = {s[key] for _, s in elements}
            if len(found) != 1:
                raise ValueError(f"{who}: the parameters that become {names[i]} have different "
                                 f"{PER_TENSOR_STATE[key]} {sorted(found)}; torch keeps one "
                                 "per tensor")
            state[key] = torch.tensor(float(found.pop()), dtype=_step_dtype(torch))
            keys.discard(key)
        for key in sorted(keys):
            buf = torch.zeros_like(t)
            for index, s in elements:
                buf[index] = s[key]
            state[key] = buf
        torch_opt.state[t] = state
    return torch_opt


def optimizer_from_torch(torch_opt: Any, params: Iterable[Value],
                         classes: Iterable[type] | None = None) -> Any:
    """The chainrule optimizer that continues where the `torch.optim` optimizer stands.

        opt = nn.optim.from_torch(torch_opt, model.parameters())

    The way back of `to_torch`: `params` are chainrule Values holding the same weights as the
    torch optimizer's tensors (e.g. `model = nn.MLP.from_torch(torch_model)`), in
    `model.parameters()` order. The torch optimizer must have one parameter group, and any option
    chainrule's optimizer lacks must be at torch's default; otherwise a ValueError names it.
    `classes` are the chainrule classes that may be built (default: nn.optim's TORCH_NAMESAKES):
    the one named like the torch optimizer's class is built. This is `nn.optim.from_torch`.
    """
    who = "nn.optim.from_torch()"
    torch = _import_torch(who)
    name = type(torch_opt).__name__
    matrix = {cls.__name__: cls for cls in MATRIX_NAMESAKES}
    if classes is None and name in matrix and type(torch_opt) is getattr(torch.optim, name, None):
        return matrix_optimizer_from_torch(torch_opt, params, matrix[name])  # params: matrices
    classes = _by_name(classes)
    if name not in classes or type(torch_opt) is not getattr(torch.optim, name, None):
        raise TypeError(f"{who}: expected a torch.optim {', '.join(classes)}, "
                        f"got {type(torch_opt).__name__}")
    if len(torch_opt.param_groups) != 1:
        raise ValueError(f"{who}: the torch optimizer has {len(torch_opt.param_groups)} "
                         "parameter groups; a chainrule optimizer has one")
    group = torch_opt.param_groups[0]
    cls = classes[name]
    params = list(params)
    tensors = list(group["params"])
    names = [f"param_groups[0]['params'][{i}]" for i in range(len(tensors))]
    _, tensors = _tensors(torch, tensors, who)
    slots = _pair(params, names, tensors, who, "params")

    defaults = inspect.signature(type(torch_opt)).parameters
    if name == "AdamW":
        implied = {"decoupled_weight_decay"}  # AdamW is Adam with it always on
    else:
        implied = set()
    for key, value in group.items():
        # A torch setting that chainrule's class lacks must be at torch's default (keys torch
        # does not know, added by user code, are left alone).
        if (key in cls.hyperparams or key in _IMPLEMENTATION_KEYS or key in implied
                or key not in defaults):
            continue
        if value != defaults[key].default:
            raise ValueError(f"{who}: the torch optimizer has {key}={value!r}, which chainrule's "
                             f"{name} does not support")
    hyper = {key: group[key] for key in cls.hyperparams}
    for key, value in hyper.items():
        if isinstance(value, torch.Tensor):  # torch allows a tensor lr
            hyper[key] = value.item()
    if "betas" in hyper:
        hyper["betas"] = tuple(float(b) for b in hyper["betas"])  # may hold tensors, too
    opt = cls(params, **hyper)
    opt.initial_lr = group.get("initial_lr")

    numbers: dict[int, dict[str, Any]] = {}
    for i, t in enumerate(tensors):
        state = torch_opt.state.get(t, {})
        numbers[i] = {key: (v.detach().cpu().tolist() if isinstance(v, torch.Tensor) else v)
                      for key, v in state.items() if v is not None}
        step = numbers[i].get("step")
        if step is not None:
            if step != int(step):
                raise ValueError(f"{who}: {names[i]} has a non-integer step count {step!r}")
            numbers[i]["step"] = int(step)
        if (name == "Adagrad" and numbers[i].get("step") == 0 and "sum" in numbers[i]
                and not _differs(numbers[i]["sum"], opt.initial_accumulator_value)):
            numbers[i] = {}  # torch creates Adagrad's state up front; chainrule at the first step
    for k, (i, index) in enumerate(slots):
        state = {}
        for key, value in numbers[i].items():
            if key in PER_TENSOR_STATE:
                state[key] = value
            else:
                for j in index:
                    value = value[j]
                state[key] = float(value)
        opt.state[k] = state
    return opt


def _differs(nested: Any, number: float) -> bool:
    """Whether any number in a nested list (tensor.tolist()) differs from `number`."""
    if isinstance(nested, list):
        return any(_differs(x, number) for x in nested)
    return not (nested == number or (math.isnan(nested) and math.isnan(number)))


# ---- matrix optimizers (Muon, Adafactor): one item of nn.optim.matrices(model) per tensor --------


def _pair_items(opt: Any, names: list[str], tensors: list[Any], who: str) -> None:
    """Check that item k of a matrix optimizer is tensor k: same shape, the same numbers."""
    if len(tensors) != len(opt.shapes):
        raise ValueError(f"{who}: the {opt.name} has {len(opt.shapes)} matrices (or vectors) but "
                         f"there are {len(tensors)} torch tensors; pair nn.optim.matrices(model) "
                         "with model.to_torch().parameters()")
    start = 0
    for k, (shape, name, t) in enumerate(zip(opt.shapes, names, tensors)):
        size = math.prod(shape)
        ours = [p.data for p in opt.params[start:start + size]]
        start += size
        if tuple(t.shape) != shape:
            raise ValueError(f"{who}: params[{k}] has the shape {shape}, its torch counterpart "
                             f"{name} {tuple(t.shape)}")
        if t.detach().cpu().flatten().tolist() != ours:
            raise ValueError(f"{who}: params[{k}] and {name} hold different numbers; make the "
                             "tensors with model.to_torch() after the last step")


def _matrix_state_to_torch(torch: Any, key: str, value: Any, shape: tuple[int, ...]) -> Any:
    if key == "step":
        return torch.tensor(float(value), dtype=_step_dtype(torch))
    t = torch.tensor(value, dtype=torch.float64)
    if key == "row_var":      # torch keeps Adafactor's row and column statistics as a column
        return t.reshape(shape[0], 1)
    if key == "col_var":      # ... and a row, ready to multiply into the rank-one estimate
        return t.reshape(1, shape[1])
    return t


def matrix_optimizer_to_torch(opt: Any, torch_params: Any) -> Any:
    """torch.optim's Muon or Adafactor continuing where chainrule's stands: the same settings
    and state. `torch_params` holds one tensor per item of the optimizer (for a model:
    `nn.optim.matrices(model)` here, `model.to_torch().parameters()` there)."""
    who = "nn.optim.to_torch()"
    torch = _import_torch(who)
    names, tensors = _tensors(torch, torch_params, who)
    _pair_items(opt, names, tensors, who)
    if opt.name == "Muon" and any(len(shape) != 2 for shape in opt.shapes):
        raise ValueError(f"{who}: torch's Muon takes weight matrices only, and this Muon also "
                         "steps vectors or single Values (with AdamW, others='adamw'); move a "
                         "Muon of the weight matrices alone")
    kwargs = {name: getattr(opt, name) for name in opt.hyperparams if name != "others"}
    torch_opt = getattr(torch.optim, opt.name)(tensors, **kwargs)
    if opt.initial_lr is not None:
        torch_opt.param_groups[0]["initial_lr"] = opt.initial_lr
    for t, shape, state in zip(tensors, opt.shapes, opt.state):
        if state:
            torch_opt.state[t] = {key: _matrix_state_to_torch(torch, key, value, shape)
                                  for key, value in state.items()}
    return torch_opt


def matrix_optimizer_from_torch(torch_opt: Any, params: Any, cls: type) -> Any:
    """The way back: chainrule's `cls` (Muon or Adafactor) on `params`, one item per tensor
    (`nn.optim.matrices(model)`), with the torch optimizer's settings and state."""
    who = "nn.optim.from_torch()"
    torch = _import_torch(who)
    if len(torch_opt.param_groups) != 1:
        raise ValueError(f"{who}: the torch optimizer has {len(torch_opt.param_groups)} "
                         "parameter groups; a chainrule optimizer has one")
    group = torch_opt.param_groups[0]
    defaults = inspect.signature(type(torch_opt)).parameters
    for key, value in group.items():
        if (key in cls.hyperparams or key in _IMPLEMENTATION_KEYS or key not in defaults):
            continue
        if value != defaults[key].default:
            raise ValueError(f"{who}: the torch optimizer has {key}={value!r}, which chainrule's "
                             f"{cls.__name__} does not support")
    hyper = {key: (group[key].item() if isinstance(group[key], torch.Tensor) else group[key])
             for key in cls.hyperparams if key in group}
    opt = cls(params, **hyper)
    opt.initial_lr = group.get("initial_lr")
    names = [f"param_groups[0]['params'][{i}]" for i in range(len(group["params"]))]
    _, tensors = _tensors(torch, list(group["params"]), who)
    _pair_items(opt, names, tensors, who)
    for k, t in enumerate(tensors):
        state = {}
        for key, value in torch_opt.state.get(t, {}).items():
            if key == "step":
                state[key] = int(value.item() if isinstance(value, torch.Tensor) else value)
            elif key in ("row_var", "col_var"):
                state[key] = value.detach().cpu().flatten().tolist()
            else:
                state[key] = value.detach().cpu().tolist()
        opt.state[k] = state
    return opt


# The doors of nn.optim (`nn.optim.to_torch`, `nn.optim.from_torch`) lead here.
OPTIMIZER_DOORS.update(to_torch=optimizer_to_torch, from_torch=optimizer_from_torch)
