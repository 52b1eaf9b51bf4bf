"""Draw the README's figure, docs/update_rule.png: the three candidate update rules, and what the
learning rate does. Run from the repository root (needs the demo extra, for matplotlib):

    python docs/figures.py

The numbers come from chainrule itself (each gradient by `Value.backward()`), on the loss of the
README's example, L(w) = (w - 3)^2 + 1, whose curvature is 2, so the limit is lr < 2 / 2 = 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

from autodiff import Value

HERE = Path(__file__).resolve().parent
# Okabe and Ito's colour-blind-safe palette, as in the notebooks.
RED, PURPLE, GREEN, BLUE, ORANGE = "#D55E00", "#CC79A7", "#009E73", "#0072B2", "#E69F00"


def loss(w):
    return (w - 3) ** 2 + 1


def grad(w: float) -> float:
    v = Value(w)
    loss(v).backward()
    return v.grad


def descend(w: float, lr: float, steps: int) -> list[float]:
    path = [w]
    for _ in range(steps):
        path.append(path[-1] - lr * grad(path[-1]))
    return path


def main(out: Path = HERE / "update_rule.png") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"axes.spines.top": False, "axes.spines.right": False,
                         "font.size": 9})
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2), dpi=100)

    ws = [-1 + 10 * i / 299 for i in range(300)]
    left.plot(ws, [loss(w) for w in ws], color="0.35", lw=2)
    w0, g0 = 4.0, grad(4.0)
    candidates = {"add: w + grad": w0 + g0, "multiply: w * grad": w0 * g0,
                  "subtract: w - 0.25 * grad": w0 - 0.25 * g0}
    left.plot(w0, loss(w0), "o", color="black", ms=7, zorder=5, label=f"start w = {w0:g}")
    for (name, w1), colour in zip(candidates.items(), (RED, PURPLE, GREEN)):
        left.annotate("", xy=(w1, loss(w1)), xytext=(w0, loss(w0)),
                      arrowprops={"arrowstyle": "->", "color": colour, "lw": 2})
        left.plot(w1, loss(w1), "o", color=colour, ms=7, label=f"{name}: L = {loss(w1):g}")
    left.set(xlabel="weight w", ylabel="loss L(w) = (w - 3)² + 1", ylim=(0, 30),
             title="One step from w = 4 with each rule")
    left.legend(loc="upper left", fontsize=8, frameon=False)

    for lr, colour in ((0.05, BLUE), (0.4, GREEN), (0.9, ORANGE), (1.05, RED)):
        path = descend(-0.5, lr, 20)
        right.plot([loss(w) - 1 for w in path], "o-", ms=3, color=colour, label=f"lr = {lr:g}")
    right.set(yscale="log", xlabel="step", ylabel="L - 1 (distance to the lowest loss)",
              ylim=(1e-6, 1e3), xticks=range(0, 21, 5),
              title="lr < 2 / curvature = 1 converges; more diverges")
    right.legend(loc="lower right", fontsize=8, frameon=False, ncol=2)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "update_rule.png"))
