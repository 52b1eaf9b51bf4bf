"""One strong-Wolfe line search, shared by every optimizer that needs one (LBFGS, CG).

Given a point x, a descent direction d and the loss along the line, phi(t) = f(x + t d), a line
search picks a step length t. The one idea: a good t is neither too long nor too short, and two
inequalities say exactly that (the strong Wolfe conditions, Nocedal & Wright, eq. 3.7):

    sufficient decrease (Armijo):  phi(t) <= phi(0) + c1 * t * phi'(0)
    curvature (strong):            |phi'(t)| <= c2 * |phi'(0)|         (0 < c1 < c2 < 1)

The first forbids steps that overshoot (the loss did not fall in proportion to the step), the
second steps that stop short (the slope is still steep). The search first walks outward until
an interval must contain such a t (bracketing), then shrinks that interval by cubic
interpolation until a point inside satisfies both (zoom). It follows torch.optim.LBFGS's
`_strong_wolfe` (itself a port of minFunc) step for step, so LBFGS here computes the same numbers
as PyTorch's on smooth losses; everything runs on Python floats and lists.

Kinks and flat pieces (abs, maximum, clamp, ReLU networks, a linear loss) break the cubic's
assumptions: two trial points can coincide, the curvature along the line can be exactly zero, and
a direction can go downhill forever. Then the cubic has no finite minimiser: on a straight piece
the trial step goes to the downhill end of the interval allowed (as torch's tensor arithmetic
gives), and where no side is downhill it is the middle (bisection, as scipy's
`scalar_search_wolfe2` falls back to). A trial point whose loss or gradient is not finite counts
as an overshoot, so the search backs off towards the last finite point instead of accepting it;
and the search always stops, after `max_ls` evaluations at the latest, at the lowest point it
has seen.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

__all__ = ["cubic_interpolate", "strong_wolfe", "dot"]

#: phi(t) and the gradient at x + t d: what the line search asks of the objective.
Objective = Callable[[float], tuple[float, list[float]]]


def dot(u: Sequence[float], v: Sequence[float]) -> float:
    """The inner product sum_i u_i v_i of two lists of floats."""
    return sum(a * b for a, b in zip(u, v))


def cubic_interpolate(x1: float, f1: float, g1: float, x2: float, f2: float, g2: float,
                      bounds: tuple[float, float] | None = None) -> float:
    """The minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1 and g2.

    The cubic is the one polynomial of degree 3 with these two values and two slopes; its
    minimiser (Nocedal & Wright, eq. 3.59) is

        d1 = g1 + g2 - 3 (f1 - f2) / (x1 - x2)
        d2 = sqrt(d1^2 - g1 g2)
        t  = x2 - (x2 - x1) (g2 + d2 - d1) / (g2 - g1 + 2 d2)

    clipped to `bounds` (by default the interval between x1 and x2). With zero curvature (a
    straight line: the last denominator vanishes) the minimiser is infinitely far downhill, so
    the bound on that side is returned. When the cubic has no minimiser at all, the middle of
    the bounds is returned (a bisection step): when d1^2 < g1 g2, when x1 = x2, on a flat line,
    or when a value is not finite.
    """
    if bounds is not None:
        lo, hi = bounds
    else:
        lo, hi = (x1, x2) if x1 <= x2 else (x2, x1)
    middle = lo / 2.0 + hi / 2.0  # halves first: no overflow for huge bounds
    try:
        d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
        d2_square = d1 * d1 - g1 * g2
        if not d2_square >= 0:  # no minimum (or a NaN): bisect
            return middle
        d2 = math.sqrt(d2_square)
        if x1 <= x2:
            t = x2 - (x2 - x1) * _ratio(g2 + d2 - d1, g2 - g1 + 2 * d2)
        else:
            t = x1 - (x1 - x2) * _ratio(g1 + d2 - d1, g1 - g2 + 2 * d2)
    except ZeroDivisionError:  # equal points: bisect
        return middle
    if math.isnan(t):
        return middle
    return min(max(t, lo), hi)


def _ratio(num: float, den: float) -> float:
    """num / den, with IEEE's answer for den = 0: +-inf, or NaN for 0 / 0.

    A zero denominator is zero curvature along a straight piece of the loss: the cubic's
    minimiser is infinitely far on the downhill side, and clipping puts the trial step at that
    end of the bounds (torch's tensors give the same); 0 / 0 leaves no side, so bisect.
    """
    if den != 0:
        return num / den
    if num == 0 or math.isnan(num):
        return math.nan
    return math.copysign(math.inf, num) * math.copysign(1.0, den)


def strong_wolfe(phi: Objective, d: Sequence[float], t: float, f: float, g: list[float],
                 gtd: float, c1: float = 1e-4, c2: float = 0.9, tolerance_change: float = 1e-9,
                 max_ls: int = 25) -> tuple[float, list[float], float, int]:
    """Search along d for a step t that satisfies the strong Wolfe conditions.

    `phi(t)` returns the loss and the gradient (a list) at x + t d; `t` is the first step to
    try, `f`, `g` and `gtd` = g . d are the loss, gradient and slope phi'(0) at t = 0 (gtd < 0:
    d goes downhill). Stops after the first trial and `max_ls` more evaluations, or when the
    bracket has shrunk below `tolerance_change` (measured as its length times max |d_i|).
    Returns (loss, gradient, t, evaluations) at the best step found: the one satisfying the
    conditions when there is one, else the lowest point seen (t = 0 when no trial point was
    lower than the start).

    A trial point with a loss or gradient that is not finite (inf, -inf, NaN: the step went too
    far for floats, or into a pole) is treated as a failed Armijo test, with loss +inf, so the
    search backs off instead of handing a non-finite point to the optimizer.
    """
    d_norm = max(abs(di) for di in d)

    def evaluate(t: float) -> tuple[float, list[float], float]:
        f_t, g_t = phi(t)
        gtd_t = dot(g_t, d)
        if not (math.isfinite(f_t) and math.isfinite(gtd_t)):
            return math.inf, g_t, math.nan  # too far: an overshoot (see the docstring)
        return f_t, g_t, gtd_t

    f_new, g_new, gtd_new = evaluate(t)
    evals = 1

    # Bracketing: walk outward from t_prev = 0 until [t_prev, t] must hold an acceptable step.
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        # Armijo fails (overshot), or the loss rose again: the minimum is behind t.
        if f_new > f + c1 * t * gtd or (ls_iter > 1 and f_new >= f_prev):
            bracket = [t_prev, t]
            bracket_f, bracket_g, bracket_gtd = [f_prev, f_new], [g_prev, g_new], [gtd_prev,
                                                                                  gtd_new]
            break
        # Both conditions hold: |phi'(t)| <= c2 |phi'(0)| (and Armijo, checked above).
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        # The slope turned uphill: a minimum lies between t_prev and t.
        if gtd_new >= 0:
            bracket = [t_prev, t]
            bracket_f, bracket_g, bracket_gtd = [f_prev, f_new], [g_prev, g_new], [gtd_prev,
                                                                                  gtd_new]
            break
        # Still going downhill steeply: extrapolate, at least a little and at most 10x further.
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        t_next = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                                   bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, g_new, gtd_new
        t = t_next
        f_new, g_new, gtd_new = evaluate(t)
        evals += 1
        ls_iter += 1
    if ls_iter >= max_ls:  # out of evaluations: take the better end of [0, t]
        bracket, bracket_f, bracket_g = [0.0, t], [f, f_new], [g, g_new]

    # Zoom: shrink the bracket around the lower end until a point satisfies both conditions.
    insufficient_progress = False
    low, high = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        # The bracket is too small for the step to change anything measurable.
        width = abs(bracket[1] - bracket[0])
        if width * d_norm < tolerance_change or width == 0:
            break
        t = cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                              bracket[1], bracket_f[1], bracket_gtd[1])
        # A trial hugging one end of the bracket shrinks it very little. If that happens
        # twice in a row, or t lands on an end, move it to 10% of the bracket from that end.
        lo_end, hi_end = min(bracket), max(bracket)
        eps = 0.1 * (hi_end - lo_end)
        if min(hi_end - t, t - lo_end) < eps:
            if insufficient_progress or t >= hi_end or t <= lo_end:
                t = hi_end - eps if abs(t - hi_end) < abs(t - lo_end) else lo_end + eps
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False

        f_new, g_new, gtd_new = evaluate(t)
        evals += 1
        ls_iter += 1

        if f_new > f + c1 * t * gtd or f_new >= bracket_f[low]:
            # Armijo fails, or no lower than the low end: t becomes the new high end.
            bracket[high], bracket_f[high], bracket_g[high] = t, f_new, g_new
            bracket_gtd[high] = gtd_new
            low, high = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True  # the curvature condition holds too: accept t
            elif gtd_new * (bracket[high] - bracket[low]) >= 0:
                # The slope at t points toward the high end: keep the side beyond the low end.
                bracket[high], bracket_f[high] = bracket[low], bracket_f[low]
                bracket_g[high], bracket_gtd[high] = bracket_g[low], bracket_gtd[low]
            # t is the lowest point so far: it becomes the low end.
            bracket[low], bracket_f[low], bracket_g[low] = t, f_new, g_new
            bracket_gtd[low] = gtd_new

    return bracket_f[low], bracket_g[low], bracket[low], evals
