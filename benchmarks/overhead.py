"""Seconds per training epoch of plain SASRec vs ParagonSASRec (adapter on), same config, same run.

    python benchmarks/overhead.py [--epochs 3] [--dataset ml-100k]

Epochs alternate between the two models so that machine load affects both alike; the ratio of medians is printed.
Target: ParagonSASRec / SASRec <= 1.05.
"""
import argparse
import statistics
import time

from common import machine, print_table

from recbole.utils import init_seed

from recbole_paragon.quick_start import build_config, prepare_data
from recbole_paragon.registry import get_model, get_trainer


def make_trainer(name, dataset_name, train_data, overrides):
    config = build_config(name, dataset_name, None, overrides)
    init_seed(config["seed"], config["reproducibility"])
    model = get_model(name)(config, train_data._dataset)
    return get_trainer(config["MODEL_TYPE"], name)(config, model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--dataset", default="ml-100k")
    args = parser.parse_args()
    # plain SASRec gets exactly the backbone settings of ParagonSASRec; the adapter trains with it ("adapter on")
    base = {"state": "WARNING", "n_layers": 1, "n_heads": 2, "hidden_size": 64, "inner_size": 128,
            "hidden_dropout_prob": 0.2, "attn_dropout_prob": 0.2, "train_adapter_with_backbone": True}
    config = build_config("ParagonSASRec", args.dataset, None, base)
    _, (train_data, _, _) = prepare_data(config)
    trainers = {name: make_trainer(name, args.dataset, train_data, base) for name in ("SASRec", "ParagonSASRec")}
    seconds = {name: [] for name in trainers}
    for epoch in range(args.epochs):
        for name, trainer in trainers.items():
            start = time.perf_counter()
            trainer._train_epoch(train_data, epoch)
            seconds[name].append(time.perf_counter() - start)
    plain, paragon = (statistics.median(seconds[n]) for n in ("SASRec", "ParagonSASRec"))
    print(f"machine: {machine()}; dataset {args.dataset}; {args.epochs} alternating epochs each")
    print_table([[n, " ".join(f"{s:.2f}" for s in seconds[n]), f"{statistics.median(seconds[n]):.2f}"] for n in seconds],
                ["model", "seconds per epoch", "median"])
    print(f"ratio ParagonSASRec / SASRec = {paragon / plain:.3f} (target <= 1.05)")


if __name__ == "__main__":
    main()
