"""Gaussian diffusion over adapter tokens: training loss (x0 / eps / v) and DDIM / DDPM sampling with guidance.

The denoiser is any module of the :class:`Denoiser` shape; :class:`~recbole_paragon.generators.dit.DiT` is the one
Paragon trains.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, Dict, Iterator, List, Optional, Protocol, Sequence, Tuple

import torch
from torch import nn

from recbole_paragon.generators.conditions import PREDICTIONS, SAMPLERS, SCHEDULES, check_choice
from recbole_paragon.settings import with_defaults


class Denoiser(Protocol):
    """What :class:`GaussianDiffusion` needs of a denoiser.

    ``num_tokens``, ``token_dim``: the token shape; ``embed_condition(cond | None, drop [B] | None, batch)``: the
    condition embedding (a null embedding where dropped or ``None``, for classifier-free guidance);
    ``forward(x [B, T, D], t [B], cond, drop, cond_embedding=None) -> [B, T, D]``. Optionally
    ``step_functions(times, cond_embedding)``: one ``x -> output`` callable per sampling step, for denoisers that
    can precompute their per-step conditioning.
    """

    num_tokens: int
    token_dim: int

    def embed_condition(self, cond: Optional[torch.Tensor], drop_cond: Optional[torch.Tensor],
                        batch: int) -> torch.Tensor: ...

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: Optional[torch.Tensor] = None,
                 drop_cond: Optional[torch.Tensor] = None,
                 cond_embedding: Optional[torch.Tensor] = None) -> torch.Tensor: ...


def _alphas_cumprod(timesteps: int, schedule: str, beta_start: float, beta_end: float) -> torch.Tensor:
    if schedule == "linear":
        betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
    else:  # cosine (Nichol & Dhariwal 2021)
        s = 0.008
        steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    return torch.cumprod(1 - betas, dim=0)


class GaussianDiffusion(nn.Module):
    """Gaussian diffusion over token tensors ``[B, T, D]`` with any denoiser of the :class:`Denoiser` shape.

    * ``schedule``: "cosine" (default) or "linear" (betas ``beta_start..beta_end``; reference 1e-5..0.02 with
      T=500 -- with T=200 a linear schedule leaves ``ᾱ_T ≈ 0.13``, i.e. not fully noised).
    * ``prediction``: what the denoiser outputs -- "x0" (default; worked best on CPU), "eps" or "v".
    * ``clip_x0``: if set, predicted x0 is clamped to ``[-clip_x0, clip_x0]`` during sampling (normalised units).
    """

    def __init__(
        self,
        denoiser: nn.Module,
        timesteps: Optional[int] = None,
        schedule: Optional[str] = None,
        prediction: Optional[str] = None,
        beta_start: Optional[float] = None,
        beta_end: Optional[float] = None,
        clip_x0: Optional[float] = None,
    ) -> None:
        """Settings left ``None`` take the ``diffusion_<name>`` default of ``properties/overall.yaml``
        (``clip_x0=None`` is off)."""
        super().__init__()
        timesteps, schedule, prediction, beta_start, beta_end = with_defaults(
            "diffusion_", timesteps=timesteps, schedule=schedule, prediction=prediction, beta_start=beta_start,
            beta_end=beta_end).values()
        check_choice("schedule", schedule, SCHEDULES)
        check_choice("prediction", prediction, PREDICTIONS)
        if int(timesteps) != timesteps or timesteps < 1:
            raise ValueError(f"timesteps must be a positive integer, got {timesteps}")
        if schedule == "linear" and not (0.0 < beta_start <= beta_end < 1.0):
            raise ValueError(f"linear betas need 0 < beta_start <= beta_end < 1, got {beta_start}, {beta_end}")
        if clip_x0 is not None and not (math.isfinite(clip_x0) and clip_x0 > 0):
            raise ValueError(f"clip_x0 must be None or a positive number, got {clip_x0}")
        self.denoiser = denoiser
        self.timesteps = int(timesteps)
        self.schedule, self.prediction = schedule, prediction
        self.beta_start, self.beta_end, self.clip_x0 = float(beta_start), float(beta_end), clip_x0
        ab = _alphas_cumprod(self.timesteps, schedule, beta_start, beta_end)
        ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])
        betas = 1 - ab / ab_prev
        buffers = {
            "alphas_cumprod": ab,
            "alphas_cumprod_prev": ab_prev,
            "sqrt_ab": ab.sqrt(),
            "sqrt_one_minus_ab": (1 - ab).sqrt(),
            # DDPM posterior q(x_{t-1} | x_t, x0)
            "posterior_variance": betas * (1 - ab_prev) / (1 - ab),
            "posterior_coef_x0": betas * ab_prev.sqrt() / (1 - ab),
            "posterior_coef_xt": (1 - ab_prev) * (1 - betas).sqrt() / (1 - ab),
        }
        for name, value in buffers.items():
            self.register_buffer(name, value.float(), persistent=False)
        self._schedules: Dict[Tuple, Tuple[List[int], List[Tuple[torch.Tensor, ...]]]] = {}

    @property
    def token_shape(self) -> Tuple[int, int]:
        return self.denoiser.num_tokens, self.denoiser.token_dim

    @staticmethod
    def _at(buffer: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return buffer[t].view(-1, 1, 1)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Noised ``x_t = √ᾱ_t x0 + √(1-ᾱ_t) ε``."""
        return self._at(self.sqrt_ab, t) * x0 + self._at(self.sqrt_one_minus_ab, t) * noise

    def _split_prediction(self, output: torch.Tensor, x_t: torch.Tensor, a: torch.Tensor, s: torch.Tensor,
                          clip: bool):
        """Model output -> (predicted x0, predicted ε), given ``a = √ᾱ_t`` and ``s = √(1-ᾱ_t)``."""
        if self.prediction == "x0":
            x0 = output
        elif self.prediction == "eps":
            x0 = (x_t - s * output) / a
        else:  # v = √ᾱ ε − √(1−ᾱ) x0
            x0 = a * x_t - s * output
        clipped = clip and self.clip_x0 is not None
        if clipped:
            x0 = x0.clamp(-self.clip_x0, self.clip_x0)
        if self.prediction == "eps" and not clipped:
            return x0, output
        if self.prediction == "v" and not clipped:
            return x0, s * x_t + a * output
        return x0, (x_t - a * x0) / s

    def loss(self, x0: torch.Tensor, cond: Optional[torch.Tensor], p_uncond: float = 0.1,
             mask: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Mean squared error of the denoiser's target at uniformly drawn timesteps (scalar).

        ``x0 [B, T, D]`` clean tokens; ``cond [B, Kc]``; each sample's condition is replaced by the null embedding
        with probability ``p_uncond``; ``mask [T, D]`` (1 = real value) excludes padding from the loss.
        """
        if not 0.0 <= p_uncond <= 1.0:
            raise ValueError(f"p_uncond must be in [0, 1], got {p_uncond}")
        b = x0.shape[0]
        device = x0.device
        t = torch.randint(0, self.timesteps, (b,), device=device, generator=generator)
        noise = torch.randn(x0.shape, device=device, generator=generator, dtype=x0.dtype)
        x_t = self.q_sample(x0, t, noise)
        drop = torch.rand(b, device=device, generator=generator) < p_uncond if p_uncond > 0 else None
        output = self.denoiser(x_t, t, cond, drop)
        if self.prediction == "x0":
            target = x0
        elif self.prediction == "eps":
            target = noise
        else:
            target = self._at(self.sqrt_ab, t) * noise - self._at(self.sqrt_one_minus_ab, t) * x0
        error = (output - target) ** 2
        if mask is None:
            return error.mean()
        mask = mask.to(error)
        return (error * mask).sum() / (mask.sum() * b)

    @staticmethod
    def _condition_embedding(denoiser: nn.Module, cond: torch.Tensor, guidance_scale: float) -> torch.Tensor:
        """Condition embeddings for the whole sampling run: ``[B]`` rows, or ``[2B]`` (conditional, null)."""
        b = cond.shape[0]
        if guidance_scale == 1.0:
            return denoiser.embed_condition(cond, None, b)
        if guidance_scale == 0.0:
            return denoiser.embed_condition(None, None, b)
        return torch.cat([denoiser.embed_condition(cond, None, b), denoiser.embed_condition(None, None, b)])

    @staticmethod
    def _guided_output(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                       guidance_scale: float) -> torch.Tensor:
        """``model`` (one step's denoiser) at ``x``, both branches in one batch unless s is 1 or 0 (one branch)."""
        if guidance_scale in (0.0, 1.0):
            return model(x)
        b = x.shape[0]
        both = model(torch.cat([x, x]))
        conditional, unconditional = both[:b], both[b:]
        return unconditional + guidance_scale * (conditional - unconditional)

    @staticmethod
    def _step_models(denoiser: nn.Module, times: Sequence[int],
                     cond_embedding: torch.Tensor) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
        """The denoiser at each timestep of ``times`` in turn, as ``x -> output``: its own ``step_functions``
        where it has them (:class:`~recbole_paragon.generators.dit.DiT` precomputes its conditioning), else plain
        calls of ``denoiser(x, t, cond_embedding=...)``."""
        own = getattr(denoiser, "step_functions", None)
        if own is not None:
            yield from own(times, cond_embedding)
            return
        rows, device = cond_embedding.shape[0], cond_embedding.device
        for step in times:
            t = torch.full((rows,), step, dtype=torch.long, device=device)
            yield functools.partial(denoiser, t=t, cond_embedding=cond_embedding)

    def _schedule(self, sampler: str, steps: int, eta: float) -> Tuple[List[int], List[Tuple[torch.Tensor, ...]]]:
        """The timesteps of a sampling run and per step the 0-dim float32 tensors ``(√ᾱ_t, √(1-ᾱ_t), coefficient
        of x0, coefficient of ε (DDIM) or x_t (DDPM), noise std)``; cached per (sampler, steps, eta, device).
        Tensors, not Python floats: a float operand costs a dtype conversion in every op."""
        device = self.alphas_cumprod.device
        key = (sampler, steps, eta, device) if sampler == "ddim" else (sampler, device)
        if key not in self._schedules:
            with torch.inference_mode(False):  # plain tensors: differentiable sampling reads the same cache
                self._schedules[key] = self._build_schedule(sampler, steps, eta, device)
        return self._schedules[key]

    def _build_schedule(self, sampler: str, steps: int, eta: float, device
                        ) -> Tuple[List[int], List[Tuple[torch.Tensor, ...]]]:
        if sampler == "ddim":
            times = self.ddim_timesteps(steps).to(device)
            ab = self.alphas_cumprod[times]
            ab_prev = torch.cat([ab[1:], ab.new_ones(1)])
            sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).clamp_min(0).sqrt()
            coefficients = (ab_prev.sqrt(), (1 - ab_prev - sigma ** 2).clamp_min(0).sqrt(), sigma)
        else:
            times = torch.arange(self.timesteps - 1, -1, -1, device=device)
            coefficients = (self.posterior_coef_x0[times], self.posterior_coef_xt[times],
                            self.posterior_variance[times].sqrt())
        columns = torch.stack([self.sqrt_ab[times], self.sqrt_one_minus_ab[times], *coefficients], dim=1)
        return times.tolist(), [tuple(row) for row in columns]

    def ddim_timesteps(self, steps: int) -> torch.Tensor:
        """``steps`` evenly spaced timesteps, descending, from ``T-1`` ("trailing" spacing: ends at ``T/steps-1``)."""
        return (self.timesteps - torch.arange(steps, dtype=torch.float64) * self.timesteps / steps).round().long() - 1

    def validate_sampling(self, steps: int, sampler: str, guidance_scale: float, eta: float) -> None:
        check_choice("sampler", sampler, SAMPLERS)
        if isinstance(steps, bool) or int(steps) != steps or not 1 <= steps <= self.timesteps:
            raise ValueError(f"steps must be an integer in [1, {self.timesteps}], got {steps}")
        if not (isinstance(guidance_scale, (int, float)) and math.isfinite(guidance_scale) and guidance_scale >= 0):
            raise ValueError(f"guidance_scale must be a finite number >= 0, got {guidance_scale}")
        if not (isinstance(eta, (int, float)) and math.isfinite(eta) and eta >= 0):
            raise ValueError(f"eta must be a finite number >= 0, got {eta}")

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, **options: Any) -> torch.Tensor:
        """:meth:`sample_with_grad` without autograd (what generation calls)."""
        return self.sample_with_grad(cond, **options)

    def sample_with_grad(
        self,
        cond: torch.Tensor,
        steps: int = 20,
        sampler: str = "ddim",
        guidance_scale: float = 1.0,
        eta: float = 0.0,
        generator: Optional[torch.Generator] = None,
        denoiser: Optional[nn.Module] = None,
        shared_noise: bool = False,
    ) -> torch.Tensor:
        """Clean tokens ``[B, T, D]`` for conditions ``cond [B, Kc]``, differentiable in the denoiser's weights
        (objective fine-tuning trains through the sampler).

        * ``sampler="ddim"``: ``steps`` evenly spaced timesteps, stochasticity ``eta`` (0 = deterministic DDIM).
        * ``sampler="ddpm"``: ancestral sampling over all ``T`` timesteps (``steps`` and ``eta`` are ignored).
        * ``guidance_scale`` s: ``out = uncond + s·(cond − uncond)``; s = 1 is the plain conditional model (one
          pass), s = 0 the unconditional one (one pass), otherwise both branches run as one batch.
        * ``generator``: all noise is drawn from it, so the same seed gives identical samples.
        * ``denoiser``: use another network with the same interface (e.g. the EMA copy) instead of ``self.denoiser``.
        * ``shared_noise``: one noise draw for every row, so a row's sample depends on its condition alone (not on
          the other rows of the batch) and varies smoothly with it (deterministic DDIM: a continuous map).
        """
        self.validate_sampling(steps, sampler, guidance_scale, eta)
        guidance_scale = float(guidance_scale)
        denoiser = self.denoiser if denoiser is None else denoiser
        device = self.sqrt_ab.device
        cond = cond.to(device)
        rows = 1 if shared_noise else cond.shape[0]
        x = torch.randn((rows, *self.token_shape), generator=generator, device=device)
        x = x.expand(cond.shape[0], -1, -1).contiguous()
        times, coefficients = self._schedule(sampler, int(steps), float(eta))
        models = self._step_models(denoiser, times, self._condition_embedding(denoiser, cond, guidance_scale))
        stochastic = sampler == "ddpm" or eta > 0
        for index, ((a, s, coef_x0, coef_other, std), model) in enumerate(zip(coefficients, models)):
            x0, eps = self._split_prediction(self._guided_output(model, x, guidance_scale), x, a, s, True)
            x = coef_x0 * x0 + coef_other * (x if sampler == "ddpm" else eps)
            if stochastic and index + 1 < len(times):
                x = x + std * torch.randn((rows, *x.shape[1:]), generator=generator, device=device)
        return x

