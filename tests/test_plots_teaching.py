"""The teaching charts the notebooks use: each draws what it was given and writes a PNG."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib", reason="matplotlib is not installed (pip install .[demo])")
np = pytest.importorskip("numpy", reason="numpy is not installed")

from autodiff import Value  # noqa: E402
from nn.lr_finder import lr_range_test  # noqa: E402
from nn.optim import SGD  # noqa: E402
from nn.plots import (plot_curves, plot_descent_1d, plot_lr_range_test,  # noqa: E402
                      plot_paths_2d)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_descent_1d_draws_each_run(tmp_path):
    fig = plot_descent_1d(lambda w: (w - 3) ** 2, {"lr 0.1": [0.0, 0.6, 1.08]},
                          tmp_path / "d.png", xlim=(-1, 5), title="t")
    assert (tmp_path / "d.png").read_bytes()[:8] == PNG_SIGNATURE
    line = lines_by_label(fig.axes[0])["lr 0.1"]
    assert list(line.get_xdata()) == [0.0, 0.6, 1.08]
    assert list(line.get_ydata()) == pytest.approx([9.0, 5.76, 3.6864])


def test_paths_2d_draws_every_point(tmp_path):
    path = np.array([[1.0, 1.0], [0.5, -0.2], [0.1, 0.05]])
    fig = plot_paths_2d(lambda x, y: x ** 2 + 10 * y ** 2, {"GD": path}, tmp_path / "p.png",
                        xlim=(-2, 2), ylim=(-2, 2), minimum=(0, 0))
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG_SIGNATURE
    line = lines_by_label(fig.axes[0])["GD: 2 steps"]
    assert np.array_equal(np.c_[line.get_xdata(), line.get_ydata()], path)


def test_curves_leave_out_non_positive_values_on_a_log_axis():
    fig = plot_curves({"a": [1.0, 0.1, 0.0, 0.01]}, x={"a": [0, 8, 16, 24]})
    line = lines_by_label(fig.axes[0])["a"]
    assert list(line.get_xdata()) == [0, 8, 24] and fig.axes[0].get_yscale() == "log"


def test_lr_range_test_chart(tmp_path):
    w = Value(3.0)
    result = lr_range_test(SGD([w], lr=0.1), lambda: 5 * w * w, start_lr=1e-4, end_lr=10.0,
                           steps=50)
    fig = plot_lr_range_test(result, tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:8] == PNG_SIGNATURE
    labels = set(lines_by_label(fig.axes[0]))
    assert f"suggestion (10x smaller): lr = {result.suggestion:.3g}" in labels
    assert f"blew up: lr = {result.lrs[-1]:.3g}" in labels


@pytest.mark.parametrize("call", [
    lambda: plot_descent_1d(lambda w: w, {}, xlim=(0, 1)),
    lambda: plot_paths_2d(lambda x, y: x, {}, xlim=(0, 1), ylim=(0, 1)),
    lambda: plot_curves({}),
    lambda: plot_lr_range_test(object()),
])
def test_empty_input_is_a_clear_error(call):
    with pytest.raises(ValueError, match="plot_"):
        call()
