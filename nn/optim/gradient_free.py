"""The gradient-free methods: CMA-ES and the evolution strategy, which read only the loss.

Each `step(closure)` evaluates a population of candidates under `no_grad()` and moves toward
the better ones, so they also minimise losses without a gradient (the accuracy, say). Their
linear algebra is written out in plain Python: `symmetric_eigen` for CMA-ES's covariance, and
`centered_ranks` for the evolution strategy's rank-based gradient estimate.
"""

from __future__ import annotations

import math
import operator
import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from autodiff import Value, no_grad
from nn._checks import check_betas, check_int, check_non_negative, check_number
from nn.optim.closure import (ClosureOptimizer, _check_seed_or_none, _loss_value, _rng_state,
                              _set_rng_state)
from nn.optim.linesearch import dot

__all__ = ["CMAES", "EvolutionStrategy", "symmetric_eigen", "centered_ranks"]


def symmetric_eigen(a: list[list[float]], max_iter: int = 30,
                    deadline: float | None = None) -> tuple[list[float], list[list[float]]]:
    """Eigenvalues and eigenvectors of a symmetric matrix: Householder, then implicit QR.

    Returns (values, vectors) with `vectors[i][k]` the i-th entry of the k-th eigenvector (the
    columns of B in A = B diag(values) B^T). Two stages (Golub & Van Loan, sections 8.3.1 and
    8.3.3): n - 2 Householder reflections Q^T A Q make A tridiagonal, then QR steps with
    Wilkinson's shift, each a chain of plane rotations chasing a bulge down the diagonal,
    drive the off-diagonal to zero; the reflections and rotations together are B. About 9 n^3
    operations, whatever the spread of the eigenvalues: CMA-ES's covariance starts as the
    identity, whose nearly equal eigenvalues cost cyclic Jacobi a dozen sweeps of n^3 each.
    `max_iter` bounds the QR steps per eigenvalue (two or three are usual). Slower than
    LAPACK, but plain Python, exact to rounding, and enough for CMA-ES's matrices. With a
    `deadline` (a `time.monotonic()` time), it raises TimeoutError once that has passed.
    """
    n = len(a)
    a = [[float(x) for x in row] for row in a]
    # qt holds B^T by rows: the reflections and rotations act on two or more of its rows.
    qt = [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]
    d, e = [0.0] * n, [0.0] * max(n - 1, 0)

    # Stage 1: for k = 0 .. n-3, the reflection H = I - 2 v v^T (|v| = 1, acting on rows and
    # columns k+1 ..) that maps column k below the diagonal onto alpha e_1.
    for k in range(n - 2):
        _check_deadline(deadline, "symmetric_eigen")  # O(n^2) work per reflection
        x = [a[i][k] for i in range(k + 1, n)]
        norm = math.sqrt(sum(xi * xi for xi in x))
        alpha = -math.copysign(norm, x[0])
        d[k], e[k] = a[k][k], alpha
        v = x[:]
        v[0] -= alpha
        v_norm = math.sqrt(sum(vi * vi for vi in v))
        if v_norm == 0.0:  # the column is zero already: nothing to reflect
            e[k] = x[0]
            continue
        v = [vi / v_norm for vi in v]
        # H A H = A - 2 v w^T - 2 w v^T on the trailing block, with p = A v, w = p - (v.p) v.
        rows = a[k + 1:]
        p = [sum(map(operator.mul, row[k + 1:], v)) for row in rows]
        vp = sum(map(operator.mul, v, p))
        w = [pi - vp * vi for pi, vi in zip(p, v)]
        for row, vi, wi in zip(rows, v, w):
            row[k + 1:] = [r - 2.0 * (vi * wj + wi * vj)
                           for r, vj, wj in zip(row[k + 1:], v, w)]
        # B^T = H B^T: rows k+1 .. of qt minus 2 v (v^T qt).
        u = [0.0] * n
        for vi, q in zip(v, qt[k + 1:]):
            u = [ui + vi * qj for ui, qj in zip(u, q)]
        for i, vi in enumerate(v, k + 1):
            qt[i] = [qj - 2.0 * vi * uj for qj, uj in zip(qt[i], u)]
    if n >= 2:
        d[n - 2], d[n - 1], e[n - 2] = a[n - 2][n - 2], a[n - 1][n - 1], a[n - 1][n - 2]
    elif n == 1:
        d[0] = a[0][0]

    # Stage 2: QR steps on the tridiagonal (d, e), each on the last block top..m that is not
    # yet split (an e below rounding splits it), shifted by the eigenvalue of the trailing
    # 2 x 2 block that is nearer d[m] (Wilkinson), so that e[m-1] vanishes fast.
    eps = 2.0 ** -52
    m, steps = n - 1, 0
    while m > 0:
        if abs(e[m - 1]) <= eps * (abs(d[m - 1]) + abs(d[m])):
            e[m - 1] = 0.0
            m -= 1
            steps = 0
            continue
        _check_deadline(deadline, "symmetric_eigen")  # O(n^2) work per QR step at most
        steps += 1
        if steps > max_iter:
            raise ArithmeticError(f"symmetric_eigen: no convergence after {max_iter} QR steps "
                                  f"for eigenvalue {m} (is the matrix finite and symmetric?)")
        top = m - 1
        while top > 0 and abs(e[top - 1]) > eps * (abs(d[top - 1]) + abs(d[top])):
            top -= 1
        delta = (d[m - 1] - d[m]) / 2.0
        b = e[m - 1]
        mu = d[m] - b * b / (delta + math.copysign(math.hypot(delta, b), delta))
        x, z = d[top] - mu, e[top]
        for k in range(top, m):
            # The rotation P = [[c, -s], [s, c]] in the plane (k, k+1) that zeroes z against x:
            # for k > top, x and z are the entry (k-1, k) and the bulge (k-1, k+1).
            r = math.hypot(x, z)
            c, s = (1.0, 0.0) if r == 0.0 else (x / r, z / r)
            if k > top:
                e[k - 1] = r
            dk, dk1, ek = d[k], d[k + 1], e[k]
            d[k] = c * c * dk + 2.0 * c * s * ek + s * s * dk1
            d[k + 1] = s * s * dk - 2.0 * c * s * ek + c * c * dk1
            e[k] = c * s * (dk1 - dk) + (c * c - s * s) * ek
            if k < m - 1:  # the bulge moves one row down
                x, z = e[k], s * e[k + 1]
                e[k + 1] *= c
            # B P: columns k and k+1 of B, rows of qt.
            qk, qk1 = qt[k], qt[k + 1]
            qt[k] = [c * y0 + s * y1 for y0, y1 in zip(qk, qk1)]
            qt[k + 1] = [c * y1 - s * y0 for y0, y1 in zip(qk, qk1)]
    return d, [list(column) for column in zip(*qt)]


def _evaluate_value(opt: ClosureOptimizer, closure: Callable[[], Any]) -> Callable[[], tuple]:
    """For gradient-free methods: run the closure under no_grad; return (result, f to minimise)."""
    sign = -1.0 if opt.maximize else 1.0

    def evaluate() -> tuple[Any, float]:
        with no_grad():  # only the value is used, so no graph is built (and it is faster)
            result = closure()
        return result, sign * _loss_value(opt.name, result)

    return evaluate


class CMAES(ClosureOptimizer):
    """CMA-ES: sample a population from a Gaussian, move and reshape it toward the best.

        opt = CMAES(model.parameters(), sigma0=0.5, seed=0)
        def closure():
            return loss_fn(model)        # only the value is used: no backward needed
        opt.step(closure)                # one generation; the parameters hold the new mean

    The covariance matrix adaptation evolution strategy (Hansen, "The CMA Evolution Strategy: A
    Tutorial", 2016) keeps a Gaussian N(m, sigma^2 C) over the parameter vector. One `step` is
    one generation of lambda = `popsize` candidates (default 4 + floor(3 ln n)):

        x_k = m + sigma * B D z_k,  z_k ~ N(0, I)      sample (C = B D^2 B^T, eigen-decomposed)
        m  = sum_i w_i x_(i)                           the mean moves to the weighted best mu
        ps = (1 - cs) ps + sqrt(cs (2 - cs) mueff) C^-1/2 (m - m_old) / sigma
        pc = (1 - cc) pc + h_sig sqrt(cc (2 - cc) mueff) (m - m_old) / sigma
        C  = (1 - c1a - cmu) C + c1 pc pc^T + cmu sum_i w_i y_(i) y_(i)^T   (rank-one, rank-mu)
        sigma = sigma * exp((cs / damps) (|ps| / E|N(0, I)| - 1))

    with x_(i) the i-th best candidate and y_(i) = (x_(i) - m_old) / sigma. The evolution paths
    ps and pc remember where the mean has been going: a long ps (steps in the same direction)
    grows sigma, a short one shrinks it; pc teaches C the direction of progress. Every constant
    is the tutorial's default, computed in `__init__` from n and lambda, with the comment of its
    formula. It only evaluates the loss, under `no_grad()`, so it minimises losses without a
    useful gradient too (an accuracy, a step function). `state["best_loss"]` and
    `state["best_x"]` keep the best candidate seen; `seed` makes runs reproducible.
    """

    hyperparams = ("sigma0", "popsize", "seed", "maximize")
    state_keys = ("generation", "func_evals", "sigma", "pc", "ps", "C", "B", "D",
                  "eigen_evals", "rng", "best_loss", "best_x")
    _whole_state = True
    _state_kinds = {"generation": "count", "func_evals": "count", "sigma": "positive",
                    "pc": "vector", "ps": "vector", "C": "matrix", "B": "matrix",
                    "D": "positive-vector", "eigen_evals": "count", "rng": "rng",
                    "best_loss": "loss?", "best_x": "vector?"}

    def __init__(self, params: Iterable[Value], sigma0: float = 0.5,
                 popsize: int | None = None, seed: int | None = None,
                 maximize: bool = False) -> None:
        super().__init__(params, None, maximize)
        name = self.name
        self.sigma0 = check_number(name, "sigma0", sigma0, finite=True)
        if not self.sigma0 > 0:
            raise ValueError(f"{name}: invalid sigma0={sigma0!r}, it must be a positive number")
        n = len(self.params)
        self.popsize = (4 + int(3 * math.log(n)) if popsize is None
                        else check_int(name, "popsize", popsize, 2))
        self.seed = _check_seed_or_none(name, seed)
        self._rng = random.Random(self.seed)

        # The strategy's constants, from Hansen's tutorial, table 1 (n = dimension).
        lam = self.popsize
        self.mu = lam // 2                                   # parents: the best half
        raw = [math.log((lam + 1) / 2) - math.log(i + 1) for i in range(self.mu)]
        self.weights = [w / sum(raw) for w in raw]           # w_1 > w_2 > ... > 0, sum 1
        self.mueff = 1 / sum(w * w for w in self.weights)    # variance-effective mu
        mueff = self.mueff
        self.cc = (4 + mueff / n) / (n + 4 + 2 * mueff / n)  # time constant of pc
        self.cs = (mueff + 2) / (n + mueff + 5)              # time constant of ps
        self.c1 = 2 / ((n + 1.3) ** 2 + mueff)               # learning rate, rank-one update
        self.cmu = min(1 - self.c1,                          # learning rate, rank-mu update
                       2 * (mueff - 2 + 1 / mueff) / ((n + 2) ** 2 + mueff))
        self.damps = (1 + 2 * max(0.0, math.sqrt((mueff - 1) / (n + 1)) - 1)  # damping of
                      + self.cs)                                             # sigma's update
        self.chi_n = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n))  # E|N(0, I)|

    @property
    def lr(self) -> float:  # type: ignore[override]
        raise AttributeError("CMAES has no learning rate: its step size sigma adapts itself "
                             "(sigma0 sets where it starts)")

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One generation: `popsize` evaluations, then the parameters hold the new mean."""
        closure = self._closure(closure)
        evaluate = _evaluate_value(self, closure)
        n, lam = len(self.params), self.popsize
        # The state changes only once the whole generation has been evaluated.
        state = dict(self.state) or dict(
            generation=0, func_evals=0, sigma=self.sigma0, pc=[0.0] * n, ps=[0.0] * n,
            C=_identity(n), B=_identity(n), D=[1.0] * n, eigen_evals=0, best_loss=None,
            best_x=None, rng=_rng_state(random.Random(self.seed)))
        _set_rng_state(self._rng, state["rng"])
        sigma, B, D = state["sigma"], state["B"], state["D"]
        mean = self._get_x()

        # Sample lambda candidates x_k = m + sigma * B D z_k and evaluate them.
        candidates, first = [], None
        deadline = self.deadline
        try:
            for _ in range(lam):
                _check_deadline(deadline, self.name)  # B D z is n^2 work per candidate
                z = [self._rng.gauss(0.0, 1.0) for _ in range(n)]
                dz = [Dj * zj for Dj, zj in zip(D, z)]
                y = [sum(map(operator.mul, row, dz)) for row in B]  # B D z ~ N(0, C)
                x = [mi + sigma * yi for mi, yi in zip(mean, y)]
                self._set_x(x)
                result, f = evaluate()
                first = result if first is None else first
                candidates.append((f, x, y))
        except BaseException:
            self._set_x(mean)  # a failing closure leaves the parameters where they were
            raise
        if all(f != f for f, _, _ in candidates):
            self._set_x(mean)
            raise _all_nan(self.name, lam)
        for f, x, _ in candidates:
            if state["best_loss"] is None or _rank(f) < _rank(state["best_loss"]):
                state["best_loss"], state["best_x"] = f, x
        state["func_evals"] += lam
        # Best first (stable: ties keep sampling order; a NaN loss ranks last).
        candidates.sort(key=lambda c: _rank(c[0]))

        try:
            first = self._update(state, candidates, first, mean, deadline)
        except BaseException:  # out of time (or interrupted): nothing changed
            self._set_x(mean)
            raise
        return first

    def _update(self, state: dict[str, Any], candidates: list, first: Any,
                mean: list[float], deadline: float | None) -> Any:
        """The generation's updates of the mean, the paths, C, sigma (and B, D), into `state`;
        then `self.state = state`."""
        n, lam, mu, w = len(self.params), self.popsize, self.mu, self.weights
        sigma, B, D, C = state["sigma"], state["B"], state["D"], state["C"]
        best = candidates[:mu]
        # m = sum w_i x_(i): the new mean; y_w = (m - m_old) / sigma, the step it took.
        new_mean = [sum(w[i] * best[i][1][j] for i in range(mu)) for j in range(n)]
        y_w = [sum(w[i] * best[i][2][j] for i in range(mu)) for j in range(n)]
        self._set_x(new_mean)

        # ps = (1 - cs) ps + sqrt(cs (2 - cs) mueff) C^-1/2 y_w, with C^-1/2 = B D^-1 B^T.
        bty = [sum(B[i][k] * y_w[i] for i in range(n)) for k in range(n)]
        c_inv_sqrt_y = [sum(B[i][k] * bty[k] / D[k] for k in range(n)) for i in range(n)]
        a = math.sqrt(self.cs * (2 - self.cs) * self.mueff)
        ps = [(1 - self.cs) * pi + a * ci for pi, ci in zip(state["ps"], c_inv_sqrt_y)]
        ps_norm = math.sqrt(dot(ps, ps))
        # h_sig stalls pc while |ps| is large (sigma about to grow), so C does not over-stretch.
        generation = state["generation"] + 1
        h_sig = (ps_norm / math.sqrt(1 - (1 - self.cs) ** (2 * generation)) / self.chi_n
                 < 1.4 + 2 / (n + 1))
        # pc = (1 - cc) pc + h_sig sqrt(cc (2 - cc) mueff) y_w
        b = math.sqrt(self.cc * (2 - self.cc) * self.mueff) if h_sig else 0.0
        pc = [(1 - self.cc) * pi + b * yi for pi, yi in zip(state["pc"], y_w)]

        # C = (1 - c1a - cmu) C + c1 pc pc^T + cmu sum_i w_i y_(i) y_(i)^T
        c1, cmu = self.c1, self.cmu
        c1a = c1 * (1 - (1 - h_sig) * self.cc * (2 - self.cc))  # makes up for a stalled pc
        decay = 1 - c1a - cmu  # sum(w) = 1
        ys = [best[i][2] for i in range(mu)]
        ys_t = list(zip(*ys))  # ys_t[r][i] = y_(i)[r]
        wys = [[wi * yi for wi, yi in zip(w, column)] for column in ys_t]  # w_i y_(i)[r]
        new_C = []
        for C_r, pc_r, wy_r in zip(C, pc, wys):
            _check_deadline(deadline, self.name)  # mu n work per row, mu n^2 in all
            new_C.append([decay * C_r[s] + c1 * pc_r * pc[s]
                          + cmu * sum(map(operator.mul, wy_r, ys_t[s])) for s in range(n)])
        C = new_C

        # sigma = sigma exp((cs / damps) (|ps| / E|N(0, I)| - 1)), the exponent capped at 1
        # as in purecma, against a blow-up in the first generations.
        sigma *= math.exp(min(1.0, (self.cs / self.damps) * (ps_norm / self.chi_n - 1)))

        # C = B D^2 B^T again, but only every few generations: the eigen-decomposition costs
        # n^3 and C changes slowly (the "lazy" update: purecma's gap of 0.5 lambda / (c1 + cmu)
        # / n evaluations, which keeps the cost O(n^2) per candidate).
        if state["func_evals"] - state["eigen_evals"] > 0.5 * lam / (c1 + cmu) / n:
            eigenvalues, B = symmetric_eigen(C, deadline=deadline)
            D = [math.sqrt(max(ev, 1e-300)) for ev in eigenvalues]  # C is positive definite
            state["eigen_evals"] = state["func_evals"]
        state.update(generation=generation, sigma=sigma, pc=pc, ps=ps, C=C, B=B, D=D,
                     rng=_rng_state(self._rng))
        self.state = state
        return first


def _check_deadline(deadline: float | None, owner: str) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise TimeoutError(f"{owner}: the step ran past its deadline and was abandoned; "
                           "nothing was changed")


def _identity(n: int) -> list[list[float]]:
    return [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]


def _rank(f: float) -> tuple[bool, float]:
    """A loss as a sort key: numbers in order, then NaN (a failed evaluation ranks last).

    sorted() is no order with NaN among the keys: one NaN would scramble all the others.
    """
    return (f != f, f if f == f else 0.0)


def _all_nan(owner: str, count: int) -> FloatingPointError:
    return FloatingPointError(
        f"{owner}.step: the closure returned nan for every one of the {count} evaluations, so "
        "there is nothing to rank; nothing was changed")


def centered_ranks(values: Sequence[float]) -> list[float]:
    """Each value's rank, scaled to [-0.5, 0.5]: the smallest gets -0.5, the largest 0.5.

    Only the order of the losses counts, so one huge outlier cannot dominate the estimate
    (Salimans et al. 2017, section 2.2). Ties keep their order of appearance; NaN ranks last.
    """
    n = len(values)
    order = sorted(range(n), key=lambda i: _rank(values[i]))
    ranks = [0.0] * n
    for rank, i in enumerate(order):
        ranks[i] = rank / (n - 1) - 0.5 if n > 1 else 0.0
    return ranks


class EvolutionStrategy(ClosureOptimizer):
    """The evolution strategy of Salimans et al. (2017): a gradient estimated from the loss alone.

        opt = EvolutionStrategy(model.parameters(), sigma=0.1, popsize=50, lr=0.01, seed=0)
        def closure():
            return loss_fn(model)        # only the value is used: no backward needed
        opt.step(closure)

    Blur the loss with Gaussian noise: f_sigma(x) = E[f(x + sigma eps)], eps ~ N(0, I). Its
    gradient needs no derivative of f, only samples (the log-likelihood trick):

        grad f_sigma(x) = E[f(x + sigma eps) eps] / sigma

    One `step` estimates it from popsize / 2 antithetic pairs (eps and -eps, which cancels the
    noise of the constant part of f), with the losses replaced by their centered ranks u in
    [-0.5, 0.5] (only the order counts):

        g = 1 / (popsize sigma) sum_k (u(x + sigma eps_k) - u(x - sigma eps_k)) eps_k

    and feeds g to an Adam step (torch's formulas, with lr, betas and eps as in `Adam`). The
    closure is evaluated under `no_grad()`, so the method also works on losses without a
    gradient, such as the accuracy; `seed` makes runs reproducible.
    """

    hyperparams = ("lr", "sigma", "popsize", "seed", "betas", "eps", "maximize")
    state_keys = ("step", "func_evals", "exp_avg", "exp_avg_sq", "rng")
    _whole_state = True
    _state_kinds = {"step": "count", "func_evals": "count", "exp_avg": "vector",
                    "exp_avg_sq": "vector", "rng": "rng"}

    def _check_state(self, where: str, state: dict[str, Any]) -> None:
        super()._check_state(where, state)
        if any(v < 0 for v in state.get("exp_avg_sq", ())):
            raise ValueError(f"{where}: state['exp_avg_sq'] must hold numbers >= 0, got "
                             f"{state['exp_avg_sq']!r:.80}")

    def __init__(self, params: Iterable[Value], sigma: float = 0.1, popsize: int = 50,
                 lr: float = 0.01, seed: int | None = None,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, maximize)
        name = self.name
        self.sigma = check_number(name, "sigma", sigma, finite=True)
        if not self.sigma > 0:
            raise ValueError(f"{name}: invalid sigma={sigma!r}, it must be a positive number")
        self.popsize = check_int(name, "popsize", popsize, 2)
        if self.popsize % 2:
            raise ValueError(f"{name}: popsize must be even (antithetic pairs), got {popsize!r}")
        self.seed = _check_seed_or_none(name, seed)
        self._rng = random.Random(self.seed)
        self.betas = check_betas(name, betas)
        self.eps = check_non_negative(name, "eps", eps)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """popsize evaluations around the parameters, then one Adam step on the estimate."""
        closure = self._closure(closure)
        evaluate = _evaluate_value(self, closure)
        n, sigma = len(self.params), self.sigma
        # The state changes only once the whole population has been evaluated.
        state = dict(self.state) or dict(step=0, func_evals=0, exp_avg=[0.0] * n,
                                         exp_avg_sq=[0.0] * n,
                                         rng=_rng_state(random.Random(self.seed)))
        _set_rng_state(self._rng, state["rng"])
        x = self._get_x()

        # Antithetic pairs: evaluate x + sigma eps and x - sigma eps with the same eps.
        noise, losses, first = [], [], None
        try:
            for _ in range(self.popsize // 2):
                e = [self._rng.gauss(0.0, 1.0) for _ in range(n)]
                for sign in (1.0, -1.0):
                    self._set_x([xi + sign * sigma * ei for xi, ei in zip(x, e)])
                    result, f = evaluate()
                    first = result if first is None else first
                    losses.append(f)
                noise.append(e)
        finally:
            self._set_x(x)  # back to the centre (also when the closure raised)
        if all(f != f for f in losses):
            raise _all_nan(self.name, self.popsize)
        state["func_evals"] += self.popsize

        # g = 1 / (popsize sigma) sum_k (u_k+ - u_k-) eps_k, with u the centered ranks.
        u = centered_ranks(losses)
        scale = 1.0 / (self.popsize * sigma)
        g = [scale * sum((u[2 * k] - u[2 * k + 1]) * noise[k][j] for k in range(len(noise)))
             for j in range(n)]

        # Adam on the estimate (the same update as the Adam class, for one whole vector).
        beta1, beta2 = self.betas
        state["step"] += 1
        t = state["step"]
        m = state["exp_avg"] = [beta1 * mj + (1 - beta1) * gj
                                for mj, gj in zip(state["exp_avg"], g)]
        v = state["exp_avg_sq"] = [beta2 * vj + (1 - beta2) * gj * gj
                                   for vj, gj in zip(state["exp_avg_sq"], g)]
        step_size = self.lr / (1 - beta1 ** t)
        bias2 = math.sqrt(1 - beta2 ** t)
        for p, mj, vj in zip(self.params, m, v):
            p.data -= step_size * mj / (math.sqrt(vj) / bias2 + self.eps)
        state["rng"] = _rng_state(self._rng)
        self.state = state
        return first
