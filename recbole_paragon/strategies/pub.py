"""PUB — Parameter Update Balancing (arXiv 2410.05806).

Gradient-balancing methods (MGDA, Nash-MTL, ...) assume that the combined gradient *is* the parameter update; with
Adam it is not (the update is a non-linear function of the gradient and of the moment state). PUB therefore balances
the *updates*: every objective's gradient is passed through the optimiser's update rule with the shared state, and
the Nash bargaining solution is computed over those updates.

One :meth:`PUB.step`, for K objectives and the trainable parameters θ:

1. Per-objective gradients ``g_i = ∂L_i/∂θ`` (K backward passes of the retained graph).
2. Per-objective *would-be* updates ``u_i = rule(g_i; state)`` — what the optimiser would do to θ if it stepped on
   ``g_i`` alone from its current state, computed without mutating that state:

   * Adam (``torch.optim.Adam`` / ``AdamW``), with step count ``t = step + 1``::

         g  ← −g if maximize;   g ← g + λθ   (Adam's L2 weight decay, ``weight_decay=λ``)
         m' = β1·m + (1−β1)·g         v' = β2·v + (1−β2)·g²        (v' ← max(v_max, v') with amsgrad)
         u  = −lr · (m'/(1−β1ᵗ)) / (√(v'/(1−β2ᵗ)) + eps)   (− lr·λ·θ for AdamW's decoupled decay)

     (fresh state: m = v = 0, step = 0 — exactly what ``optimizer.step()`` would compute.)
   * SGD: ``g ← −g if maximize; g ← g + λθ``; with momentum μ, ``b' = g`` on the first step else
     ``b' = μ·b + (1−dampening)·g``; ``d = g + μ·b'`` (Nesterov) or ``b'``; ``u = −lr·d``.

   Other optimisers raise ``TypeError`` (their update rules are not implemented here).
3. Every ``pub_update_interval`` steps (first step included): ``U = [u_1; …; u_K]`` (flattened over all trainable
   parameters), Gram ``G = U Uᵀ`` (float64), raw weights ``α = nash_weights(G)`` — the Nash bargaining solution
   ``α_i (Gα)_i = 1, α > 0``. Between recomputations the last raw ``α`` is reused (the updates ``u_i`` themselves are
   always recomputed, since ``Δθ`` needs them).
4. Preference and normalisation (interpretation: the paper has a single fixed task set; we need a controllable
   strategy): ``a_i = w_i·α_i / Σ_j w_j·α_j``. So ``Σ a_i = 1`` (the step is a convex combination of the
   per-objective updates, of the size of one optimiser step — the raw Nash ``α`` has scale ``~1/‖u‖``), and the
   preference ``w`` scales each objective's share: ``w = e_k`` makes PUB exactly the optimiser trained on ``L_k``
   alone. If every ``w_i·α_i`` is 0 (e.g. all updates are zero) the weights fall back to ``w / Σw``.
5. Apply ``Δθ = Σ_i a_i·u_i`` directly to the parameters (``optimizer.step()`` is *not* called), then advance the
   optimiser's state as if it had stepped on the combined gradient ``g_c = Σ_i a_i·g_i``: step count + 1,
   ``m ← β1·m + (1−β1)·g̃_c``, ``v ← β2·v + (1−β2)·g̃_c²`` (``v_max ← max(v_max, v)`` with amsgrad), or SGD's
   momentum buffer from ``g̃_c`` (``g̃`` = maximize sign and L2 decay applied as above). Because ``Σ a_i = 1``, the
   new first moment equals ``Σ a_i·m'_i`` exactly (m is linear in g), weight decay is counted exactly once, and for
   SGD ``Σ a_i·u_i`` *is* the SGD step on ``g_c``. The second moment follows the combined gradient actually
   followed (not ``Σ a_i·v'_i``). Torch-compatible state entries are created on the first step, so the optimiser can
   keep being used normally (``state_dict``, plain ``step()``) afterwards. After the step ``p.grad`` holds ``g_c``.
   Parameters no objective reaches (all gradients ``None``) are skipped, as ``optimizer.step()`` skips them.
   Optimiser step hooks are not run and LR schedulers may warn that ``optimizer.step()`` was never called.

Degenerate updates (:func:`nash_weights`): objectives whose update is (numerically) zero get weight 0 and are left
out of the bargaining; the rest is solved on ``G/s + ridge·I`` (``s`` = mean squared update norm, ``ridge=1e-8``) so
a rank-deficient Gram (e.g. exactly opposite updates, which have no exact solution) still gives finite positive
weights — for ``u_2 = −u_1`` both weights are equal. The solver never returns NaN (non-finite Gram → zeros, which the
strategy turns into the preference fallback).

Reference-code bugs avoided: its solver name was misspelled (``cp.QSOP``) and the exception swallowed, leaving
``α`` stuck at ``[1, 1]``; the public Adam-update helper we saw also reads a misspelled state key (``exp_avt_sq``)
and bias-corrects with the current instead of the next step count. Here the solver is a small, tested Newton method
(no cvxpy) and the update rule mirrors ``torch.optim.Adam`` line by line (tested against it).

Config keys: ``pub_update_interval`` (int ≥ 1, default 10).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch

from recbole_paragon.settings import setting
from recbole_paragon.strategies.base import Strategy, check_preference, task_gradients, trainable_parameters


# ---------------------------------------------------------------------------------------------------------------
# Nash bargaining solver


def _nash_newton(gram: torch.Tensor, tol: float, max_iter: int) -> torch.Tensor:
    """Minimise ``f(α) = ½ αᵀGα − Σ log α_i`` over ``α > 0`` by damped Newton (``∇f = 0 ⇔ α_i (Gα)_i = 1``).

    ``f`` is strictly convex (``G`` PSD, ``−log`` strictly convex), so Newton with backtracking that keeps ``α > 0``
    converges globally, quadratically near the solution.
    """
    alpha = gram.diagonal().rsqrt()  # exact when G is diagonal

    def objective(a: torch.Tensor) -> float:
        return float(0.5 * a @ gram @ a - torch.log(a).sum())

    eye = torch.eye(len(alpha), dtype=gram.dtype)
    for _ in range(max_iter):
        g_alpha = gram @ alpha
        if float((alpha * g_alpha - 1).abs().max()) < tol:
            break
        grad = g_alpha - 1 / alpha
        hessian = gram + torch.diag(1 / alpha ** 2)
        try:
            direction = -torch.linalg.solve(hessian, grad)
        except RuntimeError:  # numerically singular: fall back to a diagonal (scaled gradient) step
            direction = -grad / (hessian.diagonal() + eye.diagonal() * 1e-12)
        slope = float(grad @ direction)
        if slope >= 0:  # no descent direction left (round-off level)
            break
        f0, t = objective(alpha), 1.0
        while t > 1e-12:
            candidate = alpha + t * direction
            if bool((candidate > 0).all()) and objective(candidate) <= f0 + 1e-4 * t * slope:
                break
            t *= 0.5
        else:
            break
        alpha = candidate
    return alpha


def nash_weights(gram: torch.Tensor, *, ridge: float = 1e-8, tol: float = 1e-10, max_iter: int = 100
                 ) -> torch.Tensor:
    """Raw Nash-bargaining weights: ``α ≥ 0`` with ``α_i (Gα)_i = 1`` for every objective with a non-zero update.

    ``gram`` is the K×K Gram matrix ``U Uᵀ`` of the per-objective updates. Returned unnormalised (scale ``~1/‖u‖``),
    in ``gram``'s floating dtype. Solved by damped Newton (backtracking, α kept > 0) on the strictly convex
    ``f(α) = ½ αᵀGα − Σ_i log α_i``, whose stationarity condition ``Gα = 1/α`` is exactly the bargaining condition;
    converges in a handful of iterations for small K. Degenerate input never gives NaN:

    * objectives whose squared update norm is ``≤ 1e-12 × the largest`` get ``α_i = 0`` and are left out;
    * the rest is solved on ``G/s + ridge·I`` (``s`` = their mean squared norm), so a rank-deficient Gram (exactly
      opposite or otherwise linearly dependent updates, where ``α_i (Gα)_i = 1`` may have no solution) yields finite
      positive weights; on a well-conditioned Gram the ridge changes ``α_i (Gα)_i`` by ``~ridge`` only;
    * an all-zero or non-finite Gram gives all zeros.
    """
    if gram.dim() != 2 or gram.shape[0] != gram.shape[1]:
        raise ValueError(f"gram must be a square matrix, got shape {tuple(gram.shape)}")
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge}")
    out_dtype = gram.dtype if gram.is_floating_point() else torch.float64
    g = gram.detach().to("cpu", torch.float64)
    k = g.shape[0]
    alpha = torch.zeros(k, dtype=torch.float64)
    if k == 0 or not bool(torch.isfinite(g).all()):
        return alpha.to(device=gram.device, dtype=out_dtype)
    g = 0.5 * (g + g.T)
    diag = g.diagonal().clamp(min=0)
    largest = float(diag.max())
    if largest <= 0:
        return alpha.to(device=gram.device, dtype=out_dtype)
    active = diag > 1e-12 * largest
    sub = g[active][:, active]
    scale = float(sub.diagonal().mean())
    sub = sub / scale + ridge * torch.eye(int(active.sum()), dtype=torch.float64)
    solution = _nash_newton(sub, tol, max_iter) / scale ** 0.5
    solution = torch.where(torch.isfinite(solution) & (solution > 0), solution, torch.zeros_like(solution))
    alpha[active] = solution
    return alpha.to(device=gram.device, dtype=out_dtype)


# ---------------------------------------------------------------------------------------------------------------
# Optimiser update rules (would-be update without mutating state, then advance the state)


class _UpdateRule:
    """The update rule of a supported optimiser, for the parameters it owns."""

    def __init__(self, optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor]) -> None:
        if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
            self.kind = "adam"
        elif isinstance(optimizer, torch.optim.SGD):
            self.kind = "sgd"
        else:
            raise TypeError(f"PUB supports torch.optim.Adam, AdamW and SGD, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.decoupled_default = isinstance(optimizer, torch.optim.AdamW)
        self.group_of = {}
        for group in optimizer.param_groups:
            for p in group["params"]:
                self.group_of[id(p)] = group
        missing = [i for i, p in enumerate(params) if id(p) not in self.group_of]
        if missing:
            raise ValueError(f"PUB: parameters at positions {missing} are not managed by the optimizer")
        if any(p.is_complex() for p in params):
            raise TypeError("PUB does not support complex parameters")

    def _prepare(self, p: torch.Tensor, grad: torch.Tensor) -> Tuple[dict, torch.Tensor]:
        group = self.group_of[id(p)]
        if group.get("maximize", False):
            grad = -grad
        decoupled = self.kind == "adam" and (self.decoupled_default or group.get("decoupled_weight_decay", False))
        weight_decay = float(group.get("weight_decay", 0.0))
        if weight_decay != 0 and not decoupled:
            grad = grad + weight_decay * p.detach()
        return group, grad

    def update(self, p: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """The update ``Δp`` the optimiser would apply for gradient ``grad`` from its current state (unchanged)."""
        group, grad = self._prepare(p, grad)
        state = self.optimizer.state.get(p, {})
        lr = float(group["lr"])
        if self.kind == "sgd":
            momentum = float(group.get("momentum", 0.0))
            direction = grad
            if momentum != 0:
                buf = state.get("momentum_buffer")
                buf = grad.clone() if buf is None else momentum * buf + (1 - float(group.get("dampening", 0.0))) * grad
                direction = grad + momentum * buf if group.get("nesterov", False) else buf
            return -lr * direction
        beta1, beta2 = (float(b) for b in group["betas"])
        eps = float(group["eps"])
        t = (float(state["step"]) if "step" in state else 0.0) + 1.0
        m = (1 - beta1) * grad if "exp_avg" not in state else beta1 * state["exp_avg"] + (1 - beta1) * grad
        v = (1 - beta2) * grad * grad if "exp_avg_sq" not in state else \
            beta2 * state["exp_avg_sq"] + (1 - beta2) * grad * grad
        if group.get("amsgrad", False) and "max_exp_avg_sq" in state:
            v = torch.maximum(state["max_exp_avg_sq"], v)
        denom = (v.sqrt() / (1 - beta2 ** t) ** 0.5) + eps
        update = -(lr / (1 - beta1 ** t)) * m / denom
        weight_decay = float(group.get("weight_decay", 0.0))
        if weight_decay != 0 and (self.decoupled_default or group.get("decoupled_weight_decay", False)):
            update = update - lr * weight_decay * p.detach()
        return update

    def advance(self, p: torch.Tensor, grad: torch.Tensor) -> None:
        """Advance the optimiser's state for ``p`` as ``optimizer.step()`` would on gradient ``grad`` (θ untouched).

        Call before changing ``p`` (the L2 decay term uses the pre-step value, as torch does).
        """
        group, grad = self._prepare(p, grad)
        state = self.optimizer.state[p]
        if self.kind == "sgd":
            momentum = float(group.get("momentum", 0.0))
            if momentum != 0:
                buf = state.get("momentum_buffer")
                if buf is None:
                    state["momentum_buffer"] = grad.detach().clone()
                else:
                    buf.mul_(momentum).add_(grad, alpha=1 - float(group.get("dampening", 0.0)))
            return
        beta1, beta2 = (float(b) for b in group["betas"])
        if len(state) == 0:  # torch's lazy initialisation (adam.py, _init_group)
            on_device = group.get("capturable", False) or group.get("fused", False)
            state["step"] = torch.zeros((), dtype=torch.float32, device=p.device if on_device else "cpu")
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if group.get("amsgrad", False):
                state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if torch.is_tensor(state["step"]):
            state["step"] += 1
        else:
            state["step"] = state["step"] + 1
        state["exp_avg"].mul_(beta1).add_(grad, alpha=1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        if group.get("amsgrad", False):
            torch.maximum(state["max_exp_avg_sq"], state["exp_avg_sq"], out=state["max_exp_avg_sq"])


# ---------------------------------------------------------------------------------------------------------------


class PUB(Strategy):
    """Parameter Update Balancing: Nash bargaining over the optimiser's per-objective updates (see module docstring).

    Attributes set by :meth:`step` (for inspection and tests): ``raw_weights`` (solver output ``α``, reused between
    recomputations), ``last_weights`` (normalised, preference-scaled weights ``a`` actually applied, float64),
    ``last_updates`` (``[K, P]`` flattened per-objective updates of the last step), ``solves`` (how many times the
    solver ran).
    """

    name = "pub"
    #: Tikhonov term of the bargaining problem, relative to the mean squared update norm (see :func:`nash_weights`).
    ridge: float = 1e-8

    def __init__(self, config, preference: Sequence[float]) -> None:
        super().__init__(config, preference)
        check_preference(self.preference)
        self.preference64 = torch.as_tensor(preference, dtype=torch.float64).reshape(-1)  # full precision for weights
        self.update_interval = int(setting(config, "pub_update_interval"))
        self.raw_weights: Optional[torch.Tensor] = None
        self.last_weights: Optional[torch.Tensor] = None
        self.last_updates: Optional[torch.Tensor] = None
        self.solves = 0
        self.steps = 0

    def combine_weights(self, raw: torch.Tensor) -> torch.Tensor:
        """``w_i·α_i / Σ_j w_j·α_j`` (float64), or ``w / Σw`` when that sum is not positive and finite."""
        w = self.preference64
        scaled = w * raw.to(torch.float64).cpu()
        total = float(scaled.sum())
        if not (total > 0 and torch.isfinite(scaled).all()):
            return w / w.sum()
        return scaled / total

    def step(self, losses: List[torch.Tensor], optimizer: torch.optim.Optimizer, parameters: List[torch.Tensor],
             rows: Optional[torch.Tensor] = None) -> Dict[str, float]:
        """One PUB step (``rows`` is ignored: PUB balances whole-parameter updates)."""
        self._check_losses(losses)
        params = trainable_parameters(parameters, optimizer)
        rule = _UpdateRule(optimizer, params)
        k = len(losses)
        optimizer.zero_grad()
        per_task = [task_gradients(loss, params, retain_graph=i < k - 1, none_as_zero=False)
                    for i, loss in enumerate(losses)]
        used = [j for j in range(len(params)) if any(per_task[i][j] is not None for i in range(k))]
        params = [params[j] for j in used]
        grads = [[per_task[i][j] if per_task[i][j] is not None else torch.zeros_like(params[n])
                  for n, j in enumerate(used)] for i in range(k)]

        with torch.no_grad():
            updates = [[rule.update(p, grads[i][n]) for n, p in enumerate(params)] for i in range(k)]
            if params:
                flat = torch.stack([torch.cat([u.reshape(-1) for u in updates[i]]) for i in range(k)])
            else:
                flat = torch.zeros(k, 0)
            self.last_updates = flat
            if self.raw_weights is None or self.steps % self.update_interval == 0:
                u64 = flat.to(torch.float64)
                self.raw_weights = nash_weights(u64 @ u64.T, ridge=self.ridge).cpu()
                self.solves += 1
            weights = self.combine_weights(self.raw_weights)
            self.last_weights = weights
            for n, p in enumerate(params):
                a = weights.to(device=p.device, dtype=p.dtype)
                delta = sum(a[i] * updates[i][n] for i in range(k))
                combined = sum(a[i] * grads[i][n] for i in range(k))
                rule.advance(p, combined)  # before θ changes: L2 decay uses the pre-step θ, as torch does
                p.add_(delta)
                p.grad = combined
        self.steps += 1

        w = self.preference.to(losses[0].device)
        logs = {"loss": float(sum(wi * loss.detach() for wi, loss in zip(w, losses)))}
        for i, loss in enumerate(losses):
            logs[f"loss_{i}"] = float(loss.detach())
            logs[f"weight_{i}"] = float(weights[i])
        return logs
