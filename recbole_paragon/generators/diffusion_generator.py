"""The diffusion generator: tokenizer + normaliser + DiT + Gaussian diffusion + EMA behind one small API.

    gen = DiffusionGenerator(hidden_size=64, adapter_dim=8, cond_dim=2)
    gen.fit_normalizer(bank_vectors)                       # [N, 1096]
    opt = torch.optim.AdamW(gen.parameters(), lr=1e-3)
    for step in range(steps):
        loss = gen.training_loss(vectors_batch, cond_batch)  # cond [B, 2] = (w_acc, w_div) (+ step fraction)
        opt.zero_grad(); loss.backward(); opt.step(); gen.update_ema()
    adapters = gen.generate(torch.tensor([[0.3, 0.7]]), steps=20, sampler="ddim", seed=0)   # [1, 1096]
    gen2 = DiffusionGenerator.from_state(gen.state_dict_plain())       # plain tensors: weights_only loading

Flat adapter vectors are ordered as :mod:`recbole_paragon.model.adapter` writes them (``W1, b1, W2, b2``).
"""
from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, Optional

import torch
from torch import nn

from recbole_paragon.generators.conditions import as_condition
from recbole_paragon.generators.diffusion import GaussianDiffusion
from recbole_paragon.generators.dit import DiT
from recbole_paragon.generators.ema import EMA
from recbole_paragon.generators.state import STATE_FORMAT, PlainStateFile, plain
from recbole_paragon.generators.tokens import AdapterTokenizer, Normalizer
from recbole_paragon.settings import setting, torch_threads


@contextlib.contextmanager
def sampling_mode(module: nn.Module, num_threads: Optional[int]) -> Iterator[None]:
    """Inference mode, ``module`` in eval mode and ``num_threads`` torch threads (None: unchanged) for a block; the
    mode is switched (and restored) only where it differs: walking a module tree costs ~1 ms per call."""
    was_training = module.training
    if was_training:
        module.eval()
    try:
        with torch_threads(num_threads), torch.inference_mode():
            yield
    finally:
        if was_training:
            module.train()


class DiffusionGenerator(PlainStateFile):
    """Tokenizer + normaliser + :class:`DiT` + :class:`GaussianDiffusion` + :class:`EMA` for adapter vectors.

    ``cond_dim`` is the length of the condition vector: the preference ``w`` (K values), plus one if a
    checkpoint-step fraction in ``[0, 1]`` is appended (built by
    :func:`~recbole_paragon.generators.conditions.condition_vectors`). Hyperparameters (all JSON-able) are
    :attr:`HYPERPARAMETERS`; each one not given takes the value of its setting (``dit_<name>`` or ``diffusion_<name>``) in
    ``properties/overall.yaml``.

    Not an ``nn.Module``: :meth:`parameters` yields the trainable denoiser weights only (the EMA copy is separate).
    """

    kind = "diffusion"
    training = "bank"  # learnt from the adapter bank (then fine-tuned on the objectives): GeneratorTrainer
    #: the settings its stored state depends on (its fingerprint, pipeline.generator_stage)
    settings_prefixes = ("generator_", "diffusion_", "finetune_", "dit_")
    #: hyper-parameter -> its setting: the denoiser's sizes are ``dit_<name>``, the diffusion's ``diffusion_<name>``
    HYPERPARAMETERS = {**{name: f"dit_{name}" for name in (
        "token_mode", "token_size", "d_model", "n_layers", "n_heads", "mlp_ratio", "condition_mode",
        "fourier_features", "dropout")}, **{name: f"diffusion_{name}" for name in (
            "timesteps", "schedule", "prediction", "beta_start", "beta_end", "clip_x0", "p_uncond", "ema_decay",
            "normalizer_floor")}}

    def __init__(self, hidden_size: int, adapter_dim: int, cond_dim: int, **hyperparams: Any) -> None:
        unknown = set(hyperparams) - set(self.HYPERPARAMETERS)
        if unknown:
            raise ValueError(f"unknown DiffusionGenerator hyperparameters: {sorted(unknown)}")
        hp = {name: setting(None, key) if hyperparams.get(name) is None else hyperparams[name]
              for name, key in self.HYPERPARAMETERS.items()}
        if not 0.0 <= hp["p_uncond"] <= 1.0:
            raise ValueError(f"p_uncond must be in [0, 1], got {hp['p_uncond']}")
        if not 0.0 < hp["normalizer_floor"] <= 1.0:
            raise ValueError(f"normalizer_floor must be in (0, 1], got {hp['normalizer_floor']}")
        self.config: Dict[str, Any] = dict(hidden_size=int(hidden_size), adapter_dim=int(adapter_dim),
                                           cond_dim=int(cond_dim), **hp)
        self.hidden_size, self.adapter_dim, self.cond_dim = int(hidden_size), int(adapter_dim), int(cond_dim)
        self.tokenizer = AdapterTokenizer(hidden_size, adapter_dim, hp["token_mode"], hp["token_size"])
        self.denoiser = DiT(
            self.tokenizer.num_tokens, self.tokenizer.token_dim, cond_dim, d_model=hp["d_model"],
            n_layers=hp["n_layers"], n_heads=hp["n_heads"], mlp_ratio=hp["mlp_ratio"],
            condition_mode=hp["condition_mode"], fourier_features=hp["fourier_features"], dropout=hp["dropout"],
        )
        self.diffusion = GaussianDiffusion(
            self.denoiser, timesteps=hp["timesteps"], schedule=hp["schedule"], prediction=hp["prediction"],
            beta_start=hp["beta_start"], beta_end=hp["beta_end"], clip_x0=hp["clip_x0"],
        )
        self.ema = EMA(self.denoiser, decay=hp["ema_decay"])
        self.normalizer: Optional[Normalizer] = None

    # ---- bookkeeping ------------------------------------------------------------------------------------------
    @property
    def num_parameters(self) -> int:
        """Length ``P`` of the adapter vectors this generator produces."""
        return self.tokenizer.num_parameters

    def parameters(self):
        """Trainable parameters (the denoiser's), for the optimiser."""
        return self.denoiser.parameters()

    def train(self, mode: bool = True) -> "DiffusionGenerator":
        self.denoiser.train(mode)
        return self

    def eval(self) -> "DiffusionGenerator":
        return self.train(False)

    def to(self, device) -> "DiffusionGenerator":
        self.denoiser.to(device)
        self.diffusion.to(device)
        self.ema.module.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return self.diffusion.sqrt_ab.device

    def _require_normalizer(self) -> Normalizer:
        if self.normalizer is None:
            raise RuntimeError("call fit_normalizer(bank_vectors) (or load a state) before training or generating")
        return self.normalizer

    def _check_vectors(self, vectors) -> torch.Tensor:
        vectors = torch.as_tensor(vectors, dtype=torch.float32)
        if vectors.dim() != 2 or vectors.shape[1] != self.num_parameters:
            raise ValueError(f"expected adapter vectors [N, {self.num_parameters}], got {tuple(vectors.shape)}")
        if not torch.isfinite(vectors).all():
            raise ValueError("adapter vectors contain NaN or inf")
        return vectors

    # ---- training ---------------------------------------------------------------------------------------------
    def fit_normalizer(self, vectors) -> Normalizer:
        """Fit the per-parameter mean/std on the bank ``[N, P]`` (call once, before training)."""
        self.normalizer = Normalizer.fit(self._check_vectors(vectors), floor=self.config["normalizer_floor"])
        return self.normalizer

    def training_loss(self, vectors, cond, p_uncond: Optional[float] = None,
                      generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Scalar diffusion loss for a batch of adapter vectors ``[N, P]`` and their conditions ``[N, Kc]``.

        The condition of each sample is dropped with probability ``p_uncond`` (default: the configured value).
        """
        normalizer = self._require_normalizer()
        vectors = self._check_vectors(vectors).to(self.device)
        cond = as_condition(cond, self.cond_dim).to(self.device)
        if cond.shape[0] != vectors.shape[0]:
            raise ValueError(f"{vectors.shape[0]} vectors but {cond.shape[0]} conditions")
        tokens = self.tokenizer.tokens(normalizer.normalize(vectors))
        p = self.config["p_uncond"] if p_uncond is None else p_uncond
        return self.diffusion.loss(tokens, cond, p_uncond=p, mask=self.tokenizer.mask.to(self.device),
                                   generator=generator)

    def update_ema(self) -> None:
        """Fold the current denoiser weights into the EMA (call after every optimiser step)."""
        self.ema.update(self.denoiser)

    # ---- generation -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, cond, steps: int = 20, sampler: str = "ddim", guidance_scale: float = 1.0,
                 seed: Optional[int] = None, eta: float = 0.0, use_ema: bool = True,
                 num_threads: Optional[int] = None, shared_noise: bool = False) -> torch.Tensor:
        """Adapter vectors ``[B, P]`` (denormalised, on CPU) for conditions ``cond [B, Kc]``.

        Uses the EMA weights unless ``use_ema=False``. ``seed`` (int) makes the result reproducible; ``None`` draws
        from torch's global generator. See :meth:`GaussianDiffusion.sample` for ``steps/sampler/guidance/eta``.
        ``num_threads``: torch intra-op threads for this call only (restored afterwards); ``None`` leaves the
        global setting. The denoiser is tiny, so 1 thread is fastest on CPU, and on a busy 2-core machine 2 threads
        can be ~100x slower (OpenMP spin-waiting) -- pass ``num_threads=1`` when timing generation.
        ``shared_noise``: one noise draw for the whole batch (a preference's adapter then ignores the other rows).
        """
        normalizer = self._require_normalizer()
        cond = as_condition(cond, self.cond_dim)
        self.diffusion.validate_sampling(steps, sampler, guidance_scale, eta)
        if num_threads is not None and (isinstance(num_threads, bool) or int(num_threads) != num_threads
                                        or num_threads < 1):
            raise ValueError(f"num_threads must be None or a positive integer, got {num_threads}")
        generator = None
        if seed is not None:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(int(seed))
        denoiser = self.ema.module if use_ema else self.denoiser
        with sampling_mode(denoiser, num_threads):
            tokens = self.diffusion.sample(cond, steps=steps, sampler=sampler, guidance_scale=guidance_scale,
                                           eta=eta, generator=generator, denoiser=denoiser,
                                           shared_noise=shared_noise)
        return normalizer.denormalize(self.tokenizer.vectors(tokens)).cpu()

    def generate_with_grad(self, cond, steps: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Adapter vectors ``[B, P]`` from the (trainable) denoiser by deterministic DDIM, differentiable in its
        weights: objective fine-tuning trains through this sampler."""
        normalizer = self._require_normalizer()
        cond = as_condition(cond, self.cond_dim).to(self.device)
        tokens = self.diffusion.sample_with_grad(cond, steps=steps, sampler="ddim", generator=generator)
        return normalizer.denormalize(self.tokenizer.vectors(tokens))

    def restart_ema(self, decay: float) -> None:
        """A fresh EMA of the denoiser's current weights (no warm-up), averaging with ``decay`` from now on."""
        self.ema = EMA(self.denoiser, decay=decay, warmup=False)

    def start_from_ema(self) -> None:
        """Load the EMA weights into the denoiser (fine-tuning starts from the generator that sampling used)."""
        self.ema.copy_to(self.denoiser)

    # ---- persistence ------------------------------------------------------------------------------------------
    def state_dict_plain(self) -> Dict[str, Any]:
        """Everything as plain tensors / numbers / strings (safe for ``torch.load(weights_only=True)``)."""
        return {
            "format": STATE_FORMAT,
            "kind": "diffusion",
            "config": dict(self.config),
            "denoiser": plain(self.denoiser.state_dict()),
            "ema": {**self.ema.state_dict(), "module": plain(self.ema.module.state_dict())},
            "normalizer": None if self.normalizer is None else self.normalizer.state_dict(),
        }

    @classmethod
    def from_state(cls, state: Dict[str, Any]) -> "DiffusionGenerator":
        """Rebuild a generator from :meth:`state_dict_plain` output."""
        if state.get("format") != STATE_FORMAT or state.get("kind") != "diffusion":
            raise ValueError(f"not a diffusion generator state (format={state.get('format')!r})")
        config = dict(state["config"])
        generator = cls(config.pop("hidden_size"), config.pop("adapter_dim"), config.pop("cond_dim"), **config)
        generator.denoiser.load_state_dict(state["denoiser"])
        generator.ema.load_state_dict(state["ema"])
        if state["normalizer"] is not None:
            generator.normalizer = Normalizer.from_state_dict(state["normalizer"])
        return generator

