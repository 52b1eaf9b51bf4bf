"""Toy datasets: shapes, labels, geometry, seeding and argument checks."""

from __future__ import annotations

import math
import random

import pytest

from nn.data import DATASETS, make_blobs, make_circles, make_moons, make_spirals, make_xor


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_same_seed_same_data_other_seed_other_data(name):
    make = DATASETS[name]
    X, y = make(60, seed=7)
    assert (X, y) == make(60, seed=7)
    assert X != make(60, seed=8)[0]
    assert len(X) == len(y) == 60
    assert all(isinstance(v, float) for x in X for v in x)
    assert all(type(label) is int for label in y)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_global_random_state_is_untouched(name):
    random.seed(123)
    expected = random.random()
    random.seed(123)
    DATASETS[name](30, seed=1)
    assert random.random() == expected


@pytest.mark.parametrize("make", [make_moons, make_circles, make_xor])
def test_binary_labels_01_or_pm1(make):
    X, y = make(40, seed=2)
    X2, y2 = make(40, seed=2, labels="pm1")
    assert set(y) == {0, 1} and set(y2) == {-1, 1}
    assert X == X2 and y2 == [2 * v - 1 for v in y]


def test_moons_lie_on_their_arcs_without_noise():
    X, y = make_moons(51, noise=0.0, seed=0)
    assert y.count(0) == 25 and y.count(1) == 26
    for (a, b), label in zip(X, y):
        if label == 0:  # the upper unit half circle
            assert math.hypot(a, b) == pytest.approx(1.0) and b >= -1e-12
        else:  # the lower one: the upper arc flipped, centred at (1, 0.5)
            assert math.hypot(a - 1, b - 0.5) == pytest.approx(1.0) and b <= 0.5 + 1e-12


def test_moons_noise_has_the_requested_spread():
    X, y = make_moons(4000, noise=0.1, seed=0)
    radial = [math.hypot(a, b) - 1 for (a, b), label in zip(X, y) if label == 0]
    rms = math.sqrt(sum(r * r for r in radial) / len(radial))
    assert rms == pytest.approx(0.1, rel=0.1)


def test_moons_are_shuffled():
    _, y = make_moons(100, seed=0)
    assert y != sorted(y)
    assert 0 in y[:10] and 1 in y[:10]


def test_circles_radii():
    X, y = make_circles(40, noise=0.0, factor=0.3, seed=0)
    for (a, b), label in zip(X, y):
        assert math.hypot(a, b) == pytest.approx(1.0 if label == 0 else 0.3)


def test_spirals_arms_without_noise():
    X, y = make_spirals(100, classes=4, noise=0.0, seed=0)
    assert [y.count(k) for k in range(4)] == [25, 25, 25, 25]
    for (a, b), k in zip(X, y):
        r = math.hypot(a, b)
        assert r <= 1.0 + 1e-12
        if r > 1e-9:  # the angle is 2 pi k / classes + 4 r, up to whole turns
            turn = (math.atan2(b, a) - 2 * math.pi * k / 4 - 4 * r) / (2 * math.pi)
            assert turn == pytest.approx(round(turn), abs=1e-9)


def test_spirals_two_classes_accept_pm1_and_more_classes_do_not():
    assert set(make_spirals(20, classes=2, labels="pm1")[1]) == {-1, 1}
    with pytest.raises(ValueError, match="labels='pm1' needs two classes, this dataset has 3"):
        make_spirals(30, classes=3, labels="pm1")


def test_xor_labels_follow_the_quadrants():
    X, y = make_xor(200, noise=0.0, seed=0)
    assert all(label == int((a > 0) != (b > 0)) for (a, b), label in zip(X, y))
    assert all(-1 <= v <= 1 for x in X for v in x)


def test_blobs_gather_around_their_centers():
    X, y = make_blobs(900, centers=3, std=0.1, seed=0)
    for k in range(3):
        pts = [x for x, label in zip(X, y) if label == k]
        mean = [sum(p[j] for p in pts) / len(pts) for j in range(2)]
        center = [2 * math.cos(2 * math.pi * k / 3), 2 * math.sin(2 * math.pi * k / 3)]
        assert mean == pytest.approx(center, abs=0.03)
    X, y = make_blobs(10, centers=[[0, 0, 0], [5, 5, 5]], std=0.0, seed=0)
    assert sorted(map(tuple, X)) == [(0.0, 0.0, 0.0)] * 5 + [(5.0, 5.0, 5.0)] * 5


@pytest.mark.parametrize("call, message", [
    (lambda: make_moons(0), "make_moons: n must be a positive integer, got 0"),
    (lambda: make_moons(10, noise=-0.1), "make_moons: noise must be a non-negative number"),
    (lambda: make_circles(10, labels="+-"), "labels must be '01'"),
    (lambda: make_circles(10, factor=1.5), "factor must be between 0 and 1, got 1.5"),
    (lambda: make_spirals(10, classes=1), "needs at least 2 classes, got 1"),
    (lambda: make_spirals(2, classes=3), "n=2 is fewer points than classes (3)"),
    (lambda: make_blobs(10, std=math.nan), "std must be a non-negative number, got nan"),
    (lambda: make_blobs(10, centers=[[0, 0], [1]]), "non-empty points of one dimension"),
    (lambda: make_xor(2.5), "n must be a positive integer, got 2.5"),
])
def test_bad_arguments(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)


@pytest.mark.parametrize("name", sorted(DATASETS))
@pytest.mark.parametrize("seed", ["abc", 1.5, None, True])
def test_a_seed_is_an_int(name, seed):
    # random.Random takes strings, floats and None (a fresh seed each run): all would be
    # accepted silently and make the data look seeded when it is not the same data.
    with pytest.raises(TypeError, match=f"{DATASETS[name].__name__}: seed must be an int, "
                                        f"got {type(seed).__name__}"):
        DATASETS[name](10, seed=seed)


@pytest.mark.parametrize("call, error, message", [
    (lambda: make_blobs(10, centers=[["0", 1.0], [1.0, 1.0]]), TypeError,
     "make_blobs: centers[0][0] must be a number, got str: '0'"),
    (lambda: make_blobs(10, centers=[[0.0, math.inf], [1.0, 1.0]]), ValueError,
     "make_blobs: invalid centers[0][1]=inf, it must be a finite number"),
    (lambda: make_blobs(10, centers="ab"), ValueError, "centers must be a number of clusters"),
    (lambda: make_blobs(10, centers=[1.0, 2.0]), ValueError, "or a list of points, got [1.0, 2.0]"),
    (lambda: make_circles(10, factor=True), ValueError, "factor must be between 0 and 1, got True"),
])
def test_bad_centers_and_factors(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


# ---- mini-batches ---------------------------------------------------------------------------

from nn.data import batches  # noqa: E402


def test_each_epoch_is_every_point_once_in_a_new_seeded_order():
    X, y = make_moons(23, seed=4)
    loader = batches(X, y, batch_size=5, seed=9)
    epochs = [list(loader) for _ in range(3)]
    for epoch in epochs:
        assert [len(xb) for xb, _ in epoch] == [5, 5, 5, 5, 3] and len(loader) == 5
        pairs = [(tuple(x), label) for xb, yb in epoch for x, label in zip(xb, yb)]
        assert sorted(pairs) == sorted((tuple(x), label) for x, label in zip(X, y))
    assert epochs[0] != epochs[1] != epochs[2]
    # The same seed gives the same sequence of epochs; another seed another.
    twin = batches(X, y, batch_size=5, seed=9)
    assert [list(twin) for _ in range(3)] == epochs
    assert list(batches(X, y, batch_size=5, seed=10)) != epochs[0]


def test_full_batch_is_gradient_descent_and_keeps_the_order():
    X, y = make_xor(8, seed=1)
    for size in (None, 8, 100):
        loader = batches(X, y, size)
        assert loader.kind == "GD" and len(loader) == 1
        assert list(loader) == [(X, y)]
    assert batches(X, y, 7).kind == "SGD"


def test_drop_last_and_no_shuffle():
    X, y = [[float(i)] for i in range(7)], list(range(7))
    assert [yb for _, yb in batches(X, y, 3, shuffle=False)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [yb for _, yb in batches(X, y, 3, shuffle=False, drop_last=True)] == \
        [[0, 1, 2], [3, 4, 5]]


def test_batches_leave_the_global_random_state_alone():
    random.seed(5)
    expected = random.random()
    random.seed(5)
    list(batches(*make_moons(20, seed=0), batch_size=3, seed=2))
    assert random.random() == expected


@pytest.mark.parametrize("args, kwargs, error, match", [
    (([[0.0]], [0, 1]), {}, ValueError, "X has 1 points but y has 2 labels"),
    (([], []), {}, ValueError, "empty"),
    (([[0.0]], [0], 0), {}, ValueError, "batch_size=0"),
    (([[0.0]], [0], 2.5), {}, TypeError, "batch_size must be an int"),
    (([[0.0]], [0], 1), {"seed": 1.5}, TypeError, "seed must be an int"),
    (([[0.0]], [0], 1), {"shuffle": "no"}, TypeError, "shuffle must be True or False"),
])
def test_batches_check_their_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        batches(*args, **kwargs)
