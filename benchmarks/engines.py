"""Adapters: the handful of engine-specific operations the workloads need, one class per engine.

The workloads are written once, the way a user writes them against micrograd's `Value` API
(`*`, `+`, `.relu()`, `.backward()`), and every engine runs that very same code. An adapter only
says how to make a leaf, read a number or a gradient, and update a weight. PyTorch runs on 0-d
float64 tensors, the closest thing it has to a scalar `Value`. Each adapter imports its engine
when it is created, so a missing engine only fails the rows that need it.
"""

from __future__ import annotations

import sys


class Engine:
    """What a workload may ask of an engine, besides the arithmetic of its scalars."""

    name = ""

    def leaf(self, x: float, requires_grad: bool = True):
        """A scalar input; `requires_grad=False` for data that needs no gradient."""
        raise NotImplementedError

    def backward(self, root) -> None:
        root.backward()

    def data(self, v) -> float:
        return float(v.data)

    def grad(self, v) -> float:
        return float(v.grad)

    def sgd_step(self, params: list, lr: float) -> None:
        """`p.data -= lr * p.grad` for every parameter, then clear the gradients."""
        for p in params:
            p.data -= lr * p.grad
            p.grad = 0.0

    def count_nodes(self, root) -> int | None:
        """Number of scalars in the graph of `root` (leaves and constants included)."""
        return None

    def version(self) -> str:
        return ""


class Chainrule(Engine):
    name = "chainrule"

    def __init__(self) -> None:
        import autodiff

        self.autodiff = autodiff
        self.Value = autodiff.Value

    def leaf(self, x, requires_grad=True):
        return self.Value(x)

    def count_nodes(self, root):
        return len(self.autodiff.topological_order(root))

    def version(self):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("chainrule")
        except PackageNotFoundError:
            return "(source tree)"


class Micrograd(Engine):
    name = "micrograd"

    def __init__(self) -> None:
        from micrograd.engine import Value

        self.Value = Value

    def leaf(self, x, requires_grad=True):
        return self.Value(x)

    def sgd_step(self, params, lr):
        for p in params:
            p.data -= lr * p.grad
            p.grad = 0  # micrograd's zero_grad

    def count_nodes(self, root):
        seen = {root}
        stack = [root]
        while stack:  # iterative: micrograd's own sort would hit the recursion limit
            for child in stack.pop()._prev:
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return len(seen)

    def version(self):
        from importlib.metadata import version

        return version("micrograd")


class Torch(Engine):
    name = "torch"

    def __init__(self) -> None:
        import torch

        torch.set_num_threads(1)  # scalar work: threads only add overhead, and keep runs fair
        self.torch = torch

    def leaf(self, x, requires_grad=True):
        return self.torch.tensor(x, dtype=self.torch.float64, requires_grad=requires_grad)

    def data(self, v):
        return float(v.item())

    def grad(self, v):
        return 0.0 if v.grad is None else float(v.grad.item())

    def sgd_step(self, params, lr):
        with self.torch.no_grad():
            for p in params:
                p -= lr * p.grad
                p.grad = None  # what optimizer.zero_grad() does by default

    def version(self):
        return self.torch.__version__


#: Engine name -> adapter class. "chainrule-nn" is chainrule driven through `nn.MLP`.
ADAPTERS = {"chainrule": Chainrule, "chainrule-nn": Chainrule, "micrograd": Micrograd,
            "torch": Torch}


def load(name: str) -> Engine:
    """The adapter for `name`; raises ImportError when that engine is not installed."""
    return ADAPTERS[name]()


def python_version() -> str:
    return sys.version.split()[0]
