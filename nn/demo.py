"""The training demo: micrograd's moons classifier, trained and drawn end to end.

Run `python -m nn.demo` (and `--help` for the options). It builds `MLP(2, [16, 16, 1])`, trains
it on 100 noisy "moons" points with the max-margin (hinge) loss plus a small L2 penalty and
plain SGD whose learning rate falls from 1.0 to 0.1, exactly as micrograd's demo notebook does,
and writes what a student wants to look at into an output folder: the decision boundary, the
loss and accuracy curves, the gradient flow through the layers after the last step, and the
computation graph of one sample's loss with every gradient on it.

The one idea to understand is the loop in `train`: forward every point, add up the loss,
`zero_grad()`, `backward()`, `step()`: nothing else happens in training. With `--batch-size N`
each step looks at the next N points of a shuffled pass (stochastic gradient descent, SGD)
instead of all of them (full-batch gradient descent, GD); the demo says which one it ran.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autodiff import Value, no_grad
from nn._checks import check_bool, check_int
from nn.data import DATASETS, batches
from nn.layers import MLP
from nn.losses import accuracy, cross_entropy, hinge, l2_penalty
from nn.module import Module
from nn.optim import (CMAES, AdamWScheduleFree, ClosureOptimizer, EvolutionStrategy,
                      GeneticAlgorithm, MatrixOptimizer, SGDScheduleFree, matrices)
from nn.optim.registry import ALIASES, OPTIMIZERS, build, resolve
from nn.schedules import LinearLR

#: The optimizers that use no gradient (the demo computes one to chart the gradient flow).
GRADIENT_FREE = (CMAES, EvolutionStrategy, GeneticAlgorithm)
#: The rules that need no schedule (the averaging replaces it); evaluated at their average x.
SCHEDULE_FREE = (SGDScheduleFree, AdamWScheduleFree)


def parse_args(argv: list[str] | None = None,
               prog: str = "python -m nn.demo") -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train a small MLP on a 2-D toy dataset with chainrule and write pictures "
                    "of the result. The defaults reproduce micrograd's demo: MLP(2, [16, 16, "
                    "1]) on 100 moons points, hinge loss + 1e-4 L2, SGD with the learning rate "
                    "falling from 1.0 to 0.1 over 100 steps.",
        epilog="Writes into the output folder: decision_boundary.png, training_curves.png, "
               "grad_flow.png, loss_graph.svg (the graph of one sample's loss; loss_graph.dot, "
               "its DOT text, when Graphviz's dot program is missing) and model.json (the "
               "trained model; load it with nn.load).",
    )
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="moons",
                        help="the toy dataset (default: moons). Two classes are trained with "
                             "the hinge loss and one output; more classes (spirals, blobs) "
                             "with cross-entropy and one output per class")
    parser.add_argument("--samples", type=_positive_int, default=100,
                        help="number of training points (default: 100)")
    parser.add_argument("--noise", type=_non_negative_float, default=None,
                        help="noise of the dataset (default: the dataset's own, 0.1 for moons)")
    parser.add_argument("--optimizer", choices=[*OPTIMIZERS, *ALIASES], default="sgd",
                        metavar="{" + ",".join(OPTIMIZERS) + "}",
                        help="update rule (default: sgd), a name of nn.optim's registry; "
                             "'momentum' is SGD with momentum 0.9 (cg, es and ga are short "
                             "names of conjugate_gradient, evolution_strategy and "
                             "genetic_algorithm); lbfgs, conjugate_gradient, cmaes, "
                             "evolution_strategy and genetic_algorithm take a closure and use "
                             "no schedule, nor do the two schedule-free rules; muon and "
                             "adafactor update whole weight matrices")
    parser.add_argument("--lr", type=_non_negative_float, default=None,
                        help="starting learning rate; it decays linearly to a tenth of it over "
                             "the run, except for the closure optimizers, which keep it (for "
                             "cmaes it is the starting step size sigma0, for ga the "
                             "mutation_sigma) (default: 1.0 for "
                             "sgd, as in micrograd; "
                             + ", ".join(f"{k} {v.lr:g}" for k, v in OPTIMIZERS.items()
                                         if k != "sgd") + ", momentum 0.1)")
    parser.add_argument("--steps", type=_positive_int, default=100,
                        help="optimizer steps (default: 100); each over the whole dataset, or "
                             "over one mini-batch with --batch-size")
    parser.add_argument("--batch-size", type=_positive_int, default=None,
                        help="points per step: each step takes the next mini-batch of a "
                             "shuffled pass over the data (stochastic gradient descent, SGD). "
                             "Default: the whole dataset every step (full-batch gradient "
                             "descent, GD), as in micrograd's demo")
    parser.add_argument("--hidden", type=_sizes, default=[16, 16],
                        help="hidden layer sizes, comma-separated (default: 16,16)")
    parser.add_argument("--l2", type=_non_negative_float, default=1e-4,
                        help="weight alpha of the L2 penalty alpha * sum(w^2) added to the loss "
                             "(default: 1e-4)")
    parser.add_argument("--seed", type=int, default=1337,
                        help="seed for the data and the initial weights (default: 1337)")
    parser.add_argument("--out", type=Path, default=Path("demo_output"),
                        help="folder to write the pictures and the model into "
                             "(default: demo_output)")
    parser.add_argument("--no-progress", action="store_true",
                        help="hide the progress bar")
    parser.add_argument("--compile", action="store_true",
                        help="train with nn.compile_loss: the loss is traced once and each step "
                             "runs generated Python on floats (the same numbers, faster)")
    return parser.parse_args(argv)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < math.inf:  # also refuses "nan"
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive sizes such as "
                                         f"16,16, got {text!r}")
    return sizes


def train(model: Module, X: list, y: list, loss_fn: Callable, opt: Any, schedule: Any,
          steps: int, l2: float, progress: bool = True,
          compiled: bool = False, batch_size: int | None = None,
          seed: int = 0) -> dict[str, list[float]]:
    """Train for `steps` optimizer steps; returns the history of loss, accuracy and learning
    rate (no "lr" for an optimizer without one, CMA-ES).

    Each step sees the whole dataset (`batch_size=None`: gradient descent) or the next
    mini-batch of `nn.data.batches(X, y, batch_size, seed=seed)`, epoch after epoch (SGD); the
    loss and accuracy recorded are then those of the step's batch.

    With `compiled`, each step of a gradient optimizer runs `nn.compile_loss`'s generated code
    instead of building the graph: the same gradients, bit for bit (the scores for the accuracy
    come from a no_grad pass).
    """
    check_int("train", "steps", steps, 1)
    if check_bool("train", "compiled", compiled):
        from nn.compiled import compile_loss

        step_fn = compile_loss(model, loss_fn,
                               penalty=(lambda m: l2_penalty(m, l2)) if l2 else None)
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "lr": []}
    if check_bool("train", "progress", progress):
        from tqdm import tqdm

        bar = tqdm(range(steps), desc="training", unit="step", dynamic_ncols=True,
                   file=sys.stderr)
    else:  # no bar, and no need for tqdm
        bar = _NoBar(range(steps))
    evaluated: list = []  # the scores of each closure call (for the accuracy)
    stream = _endless(batches(X, y, batch_size, seed=seed))
    X_all, y_all = X, y

    def closure():  # for LBFGS, CG, CMA-ES and the ES, which evaluate the loss themselves
        scores = [model(x) for x in X]
        loss = loss_fn(scores, y) + l2_penalty(model, l2) if l2 else loss_fn(scores, y)
        opt.zero_grad()
        loss.backward()  # CMA-ES and the ES run the closure under no_grad: then a no-op
        evaluated.append(scores)
        return loss

    for _ in bar:
        # This step's points: all of them (GD), or the next mini-batch (SGD). The closure
        # above reads X and y, so it evaluates the same batch.
        X, y = next(stream) if batch_size is not None else (X_all, y_all)
        if isinstance(opt, ClosureOptimizer):
            evaluated.clear()
            lr = getattr(opt, "lr", 0.0)  # CMA-ES has none (its "lr" is dropped below)
            if isinstance(opt, GRADIENT_FREE):
                # Their evaluations are perturbed candidates: record the model's own loss,
                # measured once more before the step, as for every other optimizer.
                with no_grad():
                    loss = closure()
                opt.step(closure)
            else:
                loss = opt.step(closure)  # its first evaluation is at the current weights
            scores = evaluated[0]
            acc = accuracy(scores, y)
            history["loss"].append(loss.data)
            history["accuracy"].append(acc)
            history["lr"].append(lr)
            bar.set_postfix(loss=f"{loss.data:.4f}", acc=f"{100 * acc:.0f}%")
            continue
        if compiled:
            with no_grad():
                scores = [model(x) for x in X]
            opt.zero_grad()
            loss = Value(step_fn.backward(X, y))        # generated code: loss and p.grad
        else:
            scores = [model(x) for x in X]              # forward: one graph for all points
            loss = loss_fn(scores, y) + l2_penalty(model, l2) if l2 else loss_fn(scores, y)
            opt.zero_grad()                             # gradients accumulate: clear them
            loss.backward()                             # d loss / d every weight
        lr = opt.lr
        opt.step()                                      # w -= lr * grad (for SGD)
        if schedule is not None:
            schedule.step()                             # the next step's learning rate
        acc = accuracy(scores, y)
        history["loss"].append(loss.data)
        history["accuracy"].append(acc)
        history["lr"].append(lr)
        bar.set_postfix(loss=f"{loss.data:.4f}", acc=f"{100 * acc:.0f}%", lr=f"{lr:.3g}")
    if not hasattr(opt, "lr"):  # CMA-ES has a step size, no learning rate: chart none
        del history["lr"]
    return history


def _endless(loader):
    """The loader's batches, epoch after epoch (each epoch in a new order)."""
    while True:
        yield from loader


class _NoBar:
    """What `train` uses of a tqdm bar, doing nothing: iteration and set_postfix."""

    def __init__(self, steps: range) -> None:
        self.steps = steps

    def __iter__(self):
        return iter(self.steps)

    def set_postfix(self, **values: Any) -> None:
        pass


#: The install lines the demo prints when a package of its extra is missing.
INSTALL_DEMO = 'pip install "chainrule[demo] @ git+https://github.com/chainrule/chainrule"'
INSTALL_DEMO_FROM_CLONE = 'pip install -e ".[demo]"'
_WHY = {"matplotlib": "matplotlib (for the charts)",
        "tqdm": "tqdm (for the progress bar; --no-progress runs without it)"}


def missing_packages(progress: bool = True) -> list[str]:
    """The packages of the `demo` extra this run needs and cannot import (tqdm only with a bar)."""
    missing = []
    for name in ("matplotlib", "tqdm") if progress else ("matplotlib",):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    return missing


def draw_sample_graph(model: Module, x: list, target: int, loss_fn: Callable, path: Path,
                      title: str) -> Path:
    """Render the graph of one sample's loss, after its own backward pass, as SVG."""
    import graphviz

    from autodiff import draw_dot

    model.zero_grad()
    loss = loss_fn(model(x), target)
    loss.label = "loss"
    loss.backward()
    # The whole graph of one sample through MLP(2, [16, 16, 1]) has ~470 Values, a drawing
    # metres tall; with a model, past 150 Values draw_dot draws one box per neuron with its
    # largest |grad| and whether its ReLU is dead, the output side in full.
    graph = draw_dot(loss, model=model, title=title)
    svg_path = path.with_suffix(".svg")
    try:
        # pipe() runs dot on the source in memory: no intermediate file is left behind.
        svg = graph.pipe(format="svg")
    except graphviz.ExecutableNotFound:
        # Without Graphviz's `dot` program, keep the DOT text: any Graphviz viewer shows it.
        dot_path = path.with_suffix(".dot")
        dot_path.write_text(graph.source, encoding="utf-8")
        print(f"Graphviz's `dot` program is not installed, so the graph is saved as DOT text, "
              f"{dot_path}, instead of a picture. Graphviz is a program, not a Python package "
              f"(pip cannot install it): Debian/Ubuntu `sudo apt-get install graphviz`, macOS "
              f"`brew install graphviz`, Windows `winget install Graphviz.Graphviz`; or paste "
              f"the file into any Graphviz viewer.")
        return dot_path
    svg_path.write_bytes(svg)
    return svg_path


def main(argv: list[str] | None = None, prog: str = "python -m nn.demo") -> int:
    args = parse_args(argv, prog)
    missing = missing_packages(progress=not args.no_progress)
    if missing:
        print(f"{prog} needs {' and '.join(_WHY[name] for name in missing)}, which chainrule's "
              f"`demo` extra installs:\n    {INSTALL_DEMO}\nor, in a clone of the repository:\n"
              f"    {INSTALL_DEMO_FROM_CLONE}", file=sys.stderr)
        return 1
    start = time.perf_counter()

    make = DATASETS[args.dataset]
    kwargs = {} if args.noise is None else {"std" if args.dataset == "blobs" else "noise":
                                            args.noise}
    try:
        X, labels = make(args.samples, seed=args.seed, **kwargs)
    except ValueError as err:  # e.g. fewer samples than the dataset has classes
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    classes = len(set(labels))
    if classes == 2:  # micrograd's set-up: one score, labels -1/+1, max-margin loss
        y = [2 * label - 1 for label in labels]
        loss_fn, loss_name, outputs = hinge, "hinge loss", 1
    else:
        y = labels
        loss_fn, loss_name, outputs = cross_entropy, "cross-entropy", classes
    name, implied = resolve(args.optimizer)
    closure = OPTIMIZERS[name].needs_closure
    if args.compile and closure:
        print(f"{prog}: error: --compile works with the gradient-step optimizers "
              f"(sgd, momentum, adam, ...), not {args.optimizer}", file=sys.stderr)
        return 2
    try:  # before training, so that a bad --out does not cost a whole run
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"{prog}: error: cannot make the --out folder {args.out}: "
              f"{err.strerror or err}", file=sys.stderr)
        return 2
    model = MLP(2, [*args.hidden, outputs], seed=args.seed)
    lr = implied.get("lr", OPTIMIZERS[name].lr) if args.lr is None else args.lr
    cls = OPTIMIZERS[name].cls
    # Muon and Adafactor see whole matrices: they get the model's (nn.optim.matrices).
    opt = build(args.optimizer, matrices(model) if issubclass(cls, MatrixOptimizer)
                else model.parameters(), lr)
    # micrograd's schedule: lr = 1.0 - 0.9 * step / steps, i.e. linear from lr to lr / 10.
    no_schedule = closure or issubclass(cls, SCHEDULE_FREE)
    schedule = None if no_schedule else LinearLR(opt, start_factor=1.0, end_factor=0.1,
                                                 total_iters=args.steps)
    rate = (f"{opt!r}" if closure else f"lr {lr:g}, no schedule" if no_schedule
            else f"lr {lr:g} -> {lr / 10:g}")
    loader = batches(X, y, args.batch_size, seed=args.seed)
    if loader.full:
        kind = "full batch: every step sees all points (gradient descent, GD)"
    else:
        kind = (f"mini-batches of {loader.batch_size}, {len(loader)} steps per pass over the "
                f"data (stochastic gradient descent, SGD)")
    print(f"{args.dataset}: {len(X)} points, {classes} classes; model {model.nin} -> "
          f"{' -> '.join(map(str, model.nouts))} ({model.num_parameters()} parameters); "
          f"{loss_name} + {args.l2:g} * L2; {args.optimizer} {rate} over {args.steps} steps; "
          f"{kind}")

    history = train(model, X, y, loss_fn, opt, schedule, args.steps, args.l2,
                    progress=not args.no_progress, compiled=args.compile,
                    batch_size=None if loader.full else loader.batch_size, seed=args.seed)
    train_time = time.perf_counter() - start
    if isinstance(opt, SCHEDULE_FREE):
        opt.eval()  # the model at the average x: the point to evaluate and draw
    with no_grad():
        final = accuracy([model(x) for x in X], y)
    of = "" if loader.full else " (of each step's mini-batch)"
    print(f"loss{of} {history['loss'][0]:.4f} -> {history['loss'][-1]:.4f}; training accuracy "
          f"{100 * final:.0f}% after {args.steps} steps, {loader.kind} ({train_time:.1f} s)")

    from nn.plots import plot_decision_boundary, plot_grad_flow, plot_history

    out = args.out
    written = []
    # The gradients of the last training step are still on the weights: chart them first.
    when = f"at the last training step ({args.steps})"
    if isinstance(opt, GRADIENT_FREE):  # these used no gradient: compute one to chart
        model.zero_grad()
        loss_fn([model(x) for x in X], y).backward()
        when = f"of the trained model ({args.optimizer} itself used none)"
    written.append(out / "grad_flow.png")
    plot_grad_flow(model, written[-1], X=X, title=f"Gradient flow {when}")
    written.append(out / "decision_boundary.png")
    plot_decision_boundary(model, X, y, written[-1], margin=1.0 if outputs == 1 else None,
                           title=f"{args.dataset}: {100 * final:.0f}% of {len(X)} points "
                                 f"right after {args.steps} steps")
    written.append(out / "training_curves.png")
    label = f"{loss_name} + L2" if args.l2 else loss_name
    plot_history(history, written[-1], loss_label=label,
                 title=f"MLP(2, {[*args.hidden, outputs]}) on {args.dataset}, "
                       f"{args.optimizer}, {loader.kind}")
    # One sample's graph: the point with the largest loss (nearest the boundary), so that
    # its gradients are not all zero, as they are for points beyond the margin.
    with no_grad():
        worst = max(range(len(X)), key=lambda i: loss_fn(model(X[i]), y[i]).data)
    written.append(draw_sample_graph(
        model, X[worst], y[worst], loss_fn, out / "loss_graph.svg",
        title=f"{loss_name} of point {worst} x = ({X[worst][0]:.2f}, {X[worst][1]:.2f}), "
              f"label {y[worst]:+d}, after training"))
    written.append(out / "model.json")
    model.save(written[-1])
    print(f"wrote {len(written)} files to {out}/:")
    for path in written:
        print(f"  {path}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


def cli() -> int:
    """The `chainrule-demo` command (installed by pip), the same as `python -m nn.demo`."""
    # Files only, never a window. (The charts are bare Figures saved with Agg in any case; this
    # keeps any other matplotlib use in the process off the screen too.)
    os.environ.setdefault("MPLBACKEND", "Agg")
    return main(prog="chainrule-demo" if os.path.basename(sys.argv[0]).startswith("chainrule")
                else "python -m nn.demo")


if __name__ == "__main__":
    raise SystemExit(cli())
