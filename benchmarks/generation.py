"""Generation speed vs tuning on ml-100k, measured side by side in one run.

    python benchmarks/generation.py
    python benchmarks/generation.py --run-dir saved/benchmarks/<a run> [--repeats 200]

Uses (or builds) the run's backbone, adapter bank and diffusion generator under saved/benchmarks, then prints:
milliseconds to generate one adapter (DDIM, the default ``sampling_steps``), seconds for 101 preferences in one
batch, the same with DDIM-20 and full DDPM, and seconds to tune one adapter, with the tune / generate ratio.
Targets (2 CPU cores): one preference <= 5 ms, 101 batched <= 0.2 s, tune / generate >= 500x.

``--run-dir``: every generator stored in that run directory (any K: e.g. a many-objective run), one adapter per
call at a fresh uniform preference each time: median and 90th percentile milliseconds per kind, with the run's
sampling settings. No backbone or data is loaded.
"""
import argparse
import os
import statistics
import time

import numpy as np
import torch
from common import backbone_run, machine, print_table

from recbole_paragon import pipeline
from recbole_paragon.generators import GENERATORS, GeneratedAdapters
from recbole_paragon.store import generator_exists, load_generator


def best_of(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def stored_generators_speed(run_dir: str, repeats: int) -> None:
    """Milliseconds per adapter of every generator stored in ``run_dir``, one fresh uniform preference per call."""
    rows = []
    for kind in GENERATORS:
        if not generator_exists(run_dir, kind):
            continue
        generator, metadata = load_generator(run_dir, kind=kind)
        adapters = GeneratedAdapters(generator, metadata)
        count = len(adapters.objectives)
        preferences = torch.distributions.Dirichlet(torch.ones(count)).sample((repeats + 1,))
        adapters.vectors(preferences[:1])  # warm: a deployed generator has answered before
        times = []
        for preference in preferences[1:]:
            start = time.perf_counter()
            adapters.vectors(preference[None])
            times.append(time.perf_counter() - start)
        milliseconds = np.array(times) * 1000
        rows.append([kind, count, f"{np.median(milliseconds):.2f}", f"{np.percentile(milliseconds, 90):.2f}"])
    if not rows:
        raise SystemExit(f"no generator stored in {run_dir}: run its generator stage first")
    print(f"machine: {machine()}; load {os.getloadavg()[0]:.1f}; {run_dir}; {repeats} preferences")
    print_table(rows, ["generator", "K", "median ms per adapter", "p90 ms"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", default=None, help="time the generators stored there instead")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    if args.run_dir:
        return stored_generators_speed(args.run_dir, args.repeats)
    config, _, splits, backbone = backbone_run()
    pipeline.add_objective_metrics(config)
    trainer = pipeline.adapter_trainer(config, backbone["model"], *splits)
    bank = pipeline.bank_stage(config, trainer)
    adapters = pipeline.generator_stage(config, trainer, bank)
    one = torch.tensor([[0.3, 0.7]])
    many = torch.stack([torch.tensor([i / 100, 1 - i / 100]) for i in range(101)])
    ddpm_steps = adapters.generator.diffusion.timesteps
    single = best_of(lambda: adapters.vectors(one), 10)
    batched = best_of(lambda: adapters.vectors(many), 3)
    adapters.sampling["steps"] = 20
    single_20 = best_of(lambda: adapters.vectors(one), 10)
    batched_20 = best_of(lambda: adapters.vectors(many), 3)
    adapters.sampling["sampler"] = "ddpm"
    single_ddpm = best_of(lambda: adapters.vectors(one), 3)
    batched_ddpm = best_of(lambda: adapters.vectors(many), 1)
    tune = best_of(lambda: trainer.tune([0.3, 0.7]), 3)
    steps = config["sampling_steps"]
    print(f"machine: {machine()}; generator {adapters.generator.num_parameters} adapter parameters, "
          f"{sum(p.numel() for p in adapters.generator.parameters())} denoiser parameters")
    print_table([
        [f"generate 1 adapter, DDIM-{steps} (default)", f"{single * 1000:.1f} ms", "target <= 5 ms"],
        [f"generate 101 adapters batched, DDIM-{steps} (default)", f"{batched:.3f} s", "target <= 0.2 s"],
        ["generate 1 adapter, DDIM-20", f"{single_20 * 1000:.1f} ms", ""],
        ["generate 101 adapters batched, DDIM-20", f"{batched_20:.3f} s", ""],
        [f"generate 1 adapter, DDPM-{ddpm_steps}", f"{single_ddpm * 1000:.1f} ms", ""],
        [f"generate 101 adapters batched, DDPM-{ddpm_steps}", f"{batched_ddpm:.3f} s", ""],
        [f"tune 1 adapter ({trainer.steps} steps, cached states)", f"{tune:.2f} s", ""],
        [f"tune / generate (DDIM-{steps}, 1 adapter)", f"{tune / single:.0f}x", "target >= 500x"],
    ], ["what", "time", "note"])


if __name__ == "__main__":
    main()
