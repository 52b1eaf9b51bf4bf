"""Anomaly mode: the first NaN is reported where it appears, with names and numbers."""

import math
import threading

import pytest

import autodiff
from autodiff import AnomalyError, Value, detect_anomaly, grad, no_grad


def test_forward_names_the_op_its_inputs_and_their_values():
    x = Value(math.inf, label="x")
    w = Value(0.0, label="w")
    with detect_anomaly():
        assert autodiff.is_anomaly_enabled()
        ok = x * 2  # inf is not NaN
        with pytest.raises(AnomalyError, match=r"^mul produced nan from x = inf, w = 0.0$"):
            x * w
    assert not autodiff.is_anomaly_enabled()
    assert ok.data == math.inf


def test_forward_names_unlabelled_inputs_by_what_they_are():
    a = Value(math.inf)
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"add produced nan from "
                                                             r"output of neg = -inf, leaf = inf"):
        (-a) + a


def test_forward_check_also_runs_under_no_grad():
    with detect_anomaly(), no_grad(), pytest.raises(AnomalyError, match="mul produced nan"):
        Value(math.inf) * 0


def test_backward_names_the_op_and_the_node_whose_gradient_went_bad():
    x = Value(0.0, label="x")
    y = x.sqrt() * 0.0  # forward is fine: 0 * 0; backward: sqrt's slope at 0 is inf, times 0
    with detect_anomaly(), pytest.raises(AnomalyError) as info:
        y.backward()
    message = str(info.value)
    assert message.startswith("backward of sqrt gave a nan gradient to its input 0, x = 0.0")
    assert "that node's gradient went bad here" in message
    assert "had gradient 0.0" in message
    assert x.grad == 0.0 and y.grad == 0.0  # nothing was written


def test_without_anomaly_mode_the_same_nan_passes_silently_as_in_torch():
    x = Value(0.0)
    (x.sqrt() * 0.0).backward()
    assert math.isnan(x.grad)
    with no_grad():
        assert math.isnan((Value(math.inf) * 0).data)


def test_backward_names_unlabelled_nodes_by_position_in_the_topological_order():
    x = Value(0.0)
    y = (x.sqrt() * 0.0) + 1.0
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"input 0, #0 \(leaf\) = 0.0"):
        y.backward()


def test_backward_check_covers_create_graph_and_grad():
    x = Value(0.0, label="x")
    with detect_anomaly():
        with pytest.raises(AnomalyError, match="backward of sqrt"):
            (x.sqrt() * 0.0).backward(create_graph=True)
        with pytest.raises(AnomalyError, match="backward of sqrt"):
            grad(lambda t: t.sqrt() * 0.0)(0.0)


def test_a_leaf_changed_between_forward_and_backward_is_reported():
    w = Value(2.0, label="w")
    x = Value(3.0, label="x")
    loss = (w * x).tanh()
    w.data -= 0.5  # an optimizer step before backward(): the classic mistake
    with detect_anomaly(), pytest.raises(AnomalyError) as info:
        loss.backward()
    message = str(info.value)
    assert "the inputs of #2 (output of mul) changed after its forward pass" in message
    assert "it computed 6.0, they now give 4.5" in message
    assert "w = 1.5, x = 3.0" in message
    assert w.grad == 0.0 and x.grad == 0.0


def test_an_unchanged_graph_passes_anomaly_mode_with_the_usual_numbers():
    def build():
        a, b = Value(0.7, label="a"), Value(-1.3, label="b")
        out = (a * b).sigmoid().log() + autodiff.maximum(a, b) ** 2 + (a / b).sin()
        return a, b, out

    a, b, out = build()
    out.backward()
    expected = (a.grad, b.grad)
    with detect_anomaly():
        a, b, out = build()
        out.backward()
    assert (a.grad, b.grad) == expected


def test_a_pow_with_a_negative_base_raises_no_false_alarm():
    # d/dy x**y at x < 0 is not nan here (see ops.POW), so squared errors pass anomaly mode
    p = Value(0.5, label="p")
    with detect_anomaly():
        ((p - 2.0) ** 2).backward()
    assert p.grad == -3.0


def test_anomaly_mode_is_per_thread_and_nests():
    seen = []
    inside = threading.Event()
    done = threading.Event()

    def worker():
        with detect_anomaly():
            inside.set()
            done.wait(5)

    t = threading.Thread(target=worker)
    t.start()
    inside.wait(5)
    seen.append(autodiff.is_anomaly_enabled())
    done.set()
    t.join()
    on = detect_anomaly()
    with on:
        with on:
            pass
        seen.append(autodiff.is_anomaly_enabled())
    seen.append(autodiff.is_anomaly_enabled())
    assert seen == [False, True, False]


def test_off_means_the_checks_are_never_called(monkeypatch):
    from autodiff import anomaly

    def fail(*args, **kwargs):
        raise AssertionError("an anomaly check ran outside anomaly mode")

    for name in ("check_forward", "check_shares", "check_inputs_unchanged"):
        monkeypatch.setattr(anomaly, name, fail)
    x = Value(math.inf)
    y = x * 0 + x.sqrt()
    y.backward()
    y.backward(create_graph=True)
    autodiff.gradients(y, [x])
    with detect_anomaly(), pytest.raises(AssertionError, match="outside anomaly mode"):
        x * 2  # and the monkeypatched check is the one anomaly mode calls
