"""Tests for nn.optim: hand-computed first steps, parity with torch.optim, errors, resume."""

from __future__ import annotations

import json

import pytest

from autodiff import Value
from nn.optim import SGD, clip_grad_norm


def _set_grads(params, grads):
    for p, g in zip(params, grads):
        p.grad = g


def test_sgd_plain_step_is_w_minus_lr_grad():
    w, b = Value(1.0), Value(-2.0)
    opt = SGD([w, b], lr=0.1)
    _set_grads([w, b], [0.5, -3.0])
    opt.step()
    assert w.data == pytest.approx(1.0 - 0.1 * 0.5, abs=1e-15)
    assert b.data == pytest.approx(-2.0 + 0.1 * 3.0, abs=1e-15)


def test_sgd_momentum_first_step_buffer_is_grad_without_dampening():
    w = Value(1.0)
    opt = SGD([w], lr=0.1, momentum=0.9, dampening=0.5)
    w.grad = 2.0
    opt.step()                      # b = 2 (no dampening on the first step)
    assert w.data == pytest.approx(1.0 - 0.1 * 2.0, abs=1e-15)
    w.grad = 1.0
    opt.step()                      # b = 0.9 * 2 + 0.5 * 1 = 2.3
    assert w.data == pytest.approx(0.8 - 0.1 * 2.3, abs=1e-15)
