"""Where a diffusion generator's fidelity error comes from, on a finished two-objective run of benchmarks/paragon.py.

    cd benchmarks && python generator_diagnostics.py [--run ParagonSASRec-ml-100k] [--noise-seeds 5]

1. The bank in parameter space: distance between the final adapters (first tuning seed) of neighbouring grid
   preferences, as stored and after aligning their hidden units (a permutation leaves the adapter's function
   unchanged), against their norms.
2. Per test preference (in units of the run's seed-noise floor, against the mean of the re-tuned seeds): the
   generated adapter, the metric-space interpolation of the two neighbouring *bank* adapters' test metrics (not an
   adapter: what a generator interpolating smoothly between its bank neighbours' behaviour would score), and the sd
   of the generated metrics over other sampling seeds.
"""
import argparse
import json
import os

import numpy as np
import torch
from common import BENCH_DIR, machine, print_table
from scipy.optimize import linear_sum_assignment

from recbole_paragon import pipeline
from recbole_paragon.generators.generated import GeneratedAdapters
from recbole_paragon.model.adapter import split_adapter_vectors
from recbole_paragon.preference import matches_any
from recbole_paragon.quick_start import build_config, prepare_data
from recbole_paragon.store import load_generator
from recbole_paragon.training.bank import AdapterBank
from recbole_paragon.training.bank_interpolation import neighbour_weights

METRICS = ("ndcg@10", "alphandcg@10")


def hidden_units(vector: torch.Tensor, hidden: int, adapter_dim: int):
    """``[adapter_dim, 2·hidden + 1]`` rows (W1 row, b1, W2 column) and b2: the permutable parts of an adapter."""
    w1, b1, w2, b2 = split_adapter_vectors(vector, hidden, adapter_dim)
    return torch.cat([w1, b1[:, None], w2.T], 1), b2


def aligned_distance(a: torch.Tensor, b: torch.Tensor, hidden: int, adapter_dim: int) -> float:
    """Distance between two adapters after the permutation of ``b``'s hidden units closest to ``a``'s."""
    units_a, bias_a = hidden_units(a, hidden, adapter_dim)
    units_b, bias_b = hidden_units(b, hidden, adapter_dim)
    _, order = linear_sum_assignment(torch.cdist(units_a, units_b).numpy())
    return float(torch.cat([(units_a - units_b[order]).flatten(), bias_a - bias_b]).norm())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="ParagonSASRec-ml-100k", help="run directory under saved/benchmarks")
    parser.add_argument("--model", default="ParagonSASRec")
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--noise-seeds", type=int, default=5, help="other sampling seeds per test preference")
    args = parser.parse_args()
    run_dir = os.path.join(BENCH_DIR, args.run)
    report = json.load(open(os.path.join(run_dir, "report.json")))
    if len(report["objectives"]) != 2:
        raise SystemExit("generator_diagnostics.py reads two-objective runs only")
    config = build_config(args.model, args.dataset, None, {"checkpoint_dir": BENCH_DIR, "state": "WARNING",
                                                           "run_dir": run_dir, "objectives": report["objectives"]})
    pipeline.add_objective_metrics(config)
    _, splits = prepare_data(config)
    trainer = pipeline.adapter_trainer(config, pipeline.backbone_stage(config, *splits)["model"], *splits)
    hidden, adapter_dim = trainer.model.adapter.hidden_size, trainer.model.adapter.adapter_dim

    def test_metrics(vector):
        result = trainer.evaluate_vector(vector, "test")
        return np.array([result[k] for k in METRICS])

    tensors = AdapterBank.load(run_dir).tensors()
    final = (tensors["steps"] == tensors["steps"].max()) & (tensors["seeds"] == tensors["seeds"].min())
    preferences, vectors = tensors["preferences"][final], tensors["vectors"][final]
    order = torch.argsort(preferences[:, 0])
    preferences, vectors = preferences[order], vectors[order]
    bank_metrics = np.stack([test_metrics(v) for v in vectors])
    rows = [[f"{float(preferences[i, 0]):.2f} -> {float(preferences[i + 1, 0]):.2f}", f"{float((vectors[i + 1] - vectors[i]).norm()):.2f}",
             f"{aligned_distance(vectors[i], vectors[i + 1], hidden, adapter_dim):.2f}",
             f"{float(vectors[i].norm()):.2f}"] for i in range(len(vectors) - 1)]
    print(f"machine: {machine()}; {args.run}: final bank adapters of its first tuning seed ({len(vectors)} "
          "preferences)")
    print_table(rows, ["neighbours (w1)", "distance", "aligned distance", "norm of the first"])

    floor = np.array([report["noise_floor"][k] for k in METRICS])
    generated = GeneratedAdapters(*load_generator(run_dir, kind="diffusion"))
    table, errors = [], {"generated": [], "bank interpolation": []}
    for entry in report["methods"]["retune"]:
        w = torch.tensor(entry["preference"])
        reference = np.array([entry["metrics"][k] for k in METRICS])
        mine = test_metrics(generated.vectors(w[None])[0])
        others = np.stack([test_metrics(generated.vectors(w[None], seed=1000 + s)[0])
                           for s in range(args.noise_seeds)])
        others_in_bank = ~matches_any(preferences, w[None])  # w's own bank adapter is held out, as in training
        weights, found = neighbour_weights(preferences[others_in_bank], w[None])
        interpolation = (weights[0].numpy() @ bank_metrics[others_in_bank.numpy()] if bool(found[0])
                         else np.full(len(METRICS), np.nan))  # a held-out vertex: nothing to interpolate from
        errors["generated"].append((mine - reference) / floor)
        errors["bank interpolation"].append((interpolation - reference) / floor)
        table.append([f"{float(w[0]):.2f}", *[f"{x:+.1f}" for x in (mine - reference) / floor],
                      *[f"{x:+.1f}" for x in (interpolation - reference) / floor],
                      *[f"{x:.2f}" for x in others.std(0) / floor]])
    print(f"\nper test preference, in floors ({', '.join(f'{k} {f:.4f}' for k, f in zip(METRICS, floor))}), "
          "error = value - mean of the re-tuned seeds")
    print_table(table, ["w1", *[f"generated {k}" for k in METRICS], *[f"bank interpolation {k}" for k in METRICS],
                        *[f"sampling sd {k}" for k in METRICS]])
    interior = ~np.isnan(np.array(errors["bank interpolation"])[:, 0])
    for name, values in errors.items():
        values = np.abs(np.array(values))
        for label, rows in (("every test preference", slice(None)), ("between two bank neighbours", interior)):
            if name == "bank interpolation" and label == "every test preference":
                continue
            print(f"mean |error| / floor, {name}, {label}: "
                  + ", ".join(f"{k} {values[rows, i].mean():.3f}" for i, k in enumerate(METRICS)))

if __name__ == "__main__":
    main()
