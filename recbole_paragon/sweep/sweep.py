"""Hyper-parameter sweeps on Ray Tune, for Paragon models and plain RecBole models alike.

    python -m recbole_paragon.sweep --model=SASRec --dataset=ml-100k --params_file=properties/hyper_example.test \\
        [--config_files=a.yaml,b.yaml] [--num_samples=8] [--max_concurrent=2] [--ray_address=local] \\
        [--output=saved/sweep-SASRec-ml-100k] [--key=value ...]
    python run_recbole_paragon.py --sweep --params_file=properties/hyper_example.test [same options]

``--params_file`` uses RecBole's hyper-parameter file format, one parameter per line::

    learning_rate loguniform -8,0        # exp(uniform(-8, 0)): natural-log bounds, as RecBole's HyperTuning
    embedding_size choice [64,96]        # a Python list literal
    dropout_prob uniform 0.1,0.5
    hidden_size quniform 16,64,16        # low,high,q: multiples of q (all integers: a choice of 16, 32, 48, 64)

Blank lines and ``#`` comments are skipped; any other malformed line raises ``ValueError`` naming it. Every other
``--key=value`` is a RecBole setting shared by all trials.

Each trial trains the model with RecBole's trainer (for ``Paragon<Backbone>``: the backbone stage, written to
``<output>/runs/<trial>/<model>-<dataset>``, reusable as ``run_dir``) and reports ``valid_metric`` after every epoch
(RecBole's ``callback_fn``), so the ASHA scheduler stops bad trials early (``sweep_grace_period`` epochs at least,
default 1; ``sweep_reduction_factor``, default 2). The mode follows ``valid_metric_bigger``.

``sweep_stage: adapter`` sweeps Paragon's adapter settings instead (``adapter_*``, ``strategy``, ``pub_*``, ``pmtrec_*``,
objective temperatures...): every trial tunes one adapter at ``preference`` on the backbone already trained in
``run_dir`` (train it first with ``--stage=backbone``) and reports that adapter's ``valid_metric``.

Outputs in ``--output`` (default ``<checkpoint_dir>/sweep-<model>-<dataset>``): ``best.yaml`` (the best trial's
settings, usable with ``--config_files``), ``trials.csv`` (one row per trial) and Ray Tune's own files in ``ray/``.
Logs are quiet by default (RecBole ``state: WARNING``, Ray's trial table); pass ``--state=INFO`` for RecBole's logs.
Ray: ``--ray_address`` (or config ``ray_address``) as for the bank (``local``, ``auto``, ``ray://host:port``);
null means a local Ray with ``num_workers`` CPUs. One trial uses one CPU.
"""
from __future__ import annotations

import argparse
import ast
import csv
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

import yaml

from recbole_paragon.artifacts import run_directory, to_jsonable
from recbole_paragon.settings import setting
from recbole_paragon.sweep.params import parse_params_file

BEST_FILE = "best.yaml"
TRIALS_FILE = "trials.csv"
#: Config keys each trial sets for itself (never written to best.yaml).
_PLUMBING_KEYS = {"checkpoint_dir", "run_dir", "state", "show_progress"}


# -- configs of trials -----------------------------------------------------------------------------------------------
def _command_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _trial(params: Dict[str, Any], base: Dict[str, Any]) -> None:
    """One trial (runs in a Ray worker): RecBole training reporting ``valid_metric`` after every epoch."""
    import torch
    from ray.air import session
    from recbole.utils import init_logger, init_seed

    from recbole_paragon import pipeline
    from recbole_paragon.model.paragon import PREFIX
    from recbole_paragon.quick_start import build_config, prepare_data, run_stages

    torch.set_num_threads(1)
    if os.path.isdir(base["cwd"]):
        os.chdir(base["cwd"])  # relative data_path and config files, as on the command line
    metric = base["metric"]
    trial_dir = os.path.join(base["output"], "runs", session.get_trial_id())
    config_dict = {**base["config_dict"], **params}
    cmd_args = base["cmd_args"]
    if base["stage"] == "backbone":  # a folder per trial: concurrent trials never share a checkpoint
        config_dict.update(checkpoint_dir=trial_dir,
                           run_dir=os.path.join(trial_dir, f"{base['model']}-{base['dataset']}"))
        cmd_args = [a for a in cmd_args if a[2:].split("=", 1)[0] not in ("checkpoint_dir", "run_dir")]
    config = build_config(base["model"], base["dataset"], base["config_files"], config_dict, command_line=cmd_args)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    dataset, (train_data, valid_data, test_data) = prepare_data(config)

    if base["stage"] == "adapter":
        config["stage"] = "tune_one"
        adapter = run_stages(config, dataset, train_data, valid_data, test_data)["adapter"]
        valid, test = dict(adapter["valid_result"]), dict(adapter["test_result"])
        session.report({metric: float(valid[metric]), "final": True,
                        **{f"valid_{k}": float(v) for k, v in valid.items()},
                        **{f"test_{k}": float(v) for k, v in test.items()}})
        return

    def report(epoch_idx: int, valid_score: float) -> None:
        session.report({metric: float(valid_score), "epoch": int(epoch_idx), "final": False})

    if str(config["model"]).startswith(PREFIX):
        result = pipeline.train_backbone(config, train_data, valid_data, test_data, callback_fn=report)
    else:
        result = pipeline.train_and_test(config, train_data, valid_data, test_data, saved=True, callback_fn=report)
    session.report({metric: float(result["best_valid_score"]), "final": True,
                    **{f"valid_{k}": float(v) for k, v in (result["best_valid_result"] or {}).items()},
                    **{f"test_{k}": float(v) for k, v in (result["test_result"] or {}).items()}})


def _check_adapter_sweep(config, space: Dict[str, Any], build) -> None:
    """``sweep_stage: adapter`` trials share the run directory's backbone: they may only sweep non-backbone settings.

    ``build(overrides)`` is the trials' config with ``overrides``; a swept key whose values change
    :func:`~recbole_paragon.store.backbone_config_fingerprint` is a backbone setting.
    """
    from ray.tune.search import sample

    from recbole_paragon.model.paragon import PREFIX
    from recbole_paragon.store import backbone_config_fingerprint, saved_backbone_matches

    if not str(config["model"]).startswith(PREFIX):
        raise ValueError("sweep_stage=adapter sweeps Paragon adapter settings: it needs a Paragon<Backbone> model")
    if config["preference"] is None:
        raise ValueError("sweep_stage=adapter needs --preference=w1,w2,... (the adapter each trial tunes)")
    fingerprint = backbone_config_fingerprint(config)
    backbone_keys = []
    for name, domain in space.items():
        values = list(domain.categories) if isinstance(domain, sample.Categorical) else [domain.lower, domain.upper]
        if any(backbone_config_fingerprint(build({name: v})) != fingerprint for v in values):
            backbone_keys.append(name)
    if backbone_keys:
        raise ValueError(f"sweep_stage=adapter cannot sweep backbone settings ({', '.join(backbone_keys)}); "
                         "sweep them with sweep_stage=backbone")
    if not saved_backbone_matches(config):
        raise ValueError(f"sweep_stage=adapter needs a trained backbone in {run_directory(config)}: run "
                         "--stage=backbone with the same settings first")


# -- the sweep ---------------------------------------------------------------------------------------------------------
def sweep(model: str, dataset: str, params_file: str, config_file_list: Optional[List[str]] = None,
          config_dict: Optional[Dict[str, Any]] = None, num_samples: Optional[int] = None,
          max_concurrent: Optional[int] = None, ray_address: Optional[str] = None, output: Optional[str] = None,
          cmd_args: Sequence[str] = (), verbose: int = 1) -> Dict[str, Any]:
    """Run a sweep; return the best config and score, the paths of ``best.yaml`` and ``trials.csv``, and the trials.

    ``config_dict`` and ``cmd_args`` (``--key=value`` strings) are settings shared by every trial.
    """
    from ray import tune
    from ray.air import RunConfig
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    from recbole_paragon.model.paragon import PREFIX
    from recbole_paragon.quick_start import build_config
    from recbole_paragon.training.distributed import ray_connection

    space = parse_params_file(params_file)
    cmd_args = [a for a in cmd_args if a.startswith("--") and "=" in a]
    shared = {"state": "WARNING", "show_progress": False, **(config_dict or {})}
    config_files = [os.path.abspath(f) for f in config_file_list or []]

    def build(overrides: Dict[str, Any]):
        return build_config(model, dataset, config_files, {**shared, **overrides}, command_line=cmd_args)

    config = build({})  # checks model, dataset and settings before Ray starts
    stage = str(setting(config, "sweep_stage"))
    if stage == "adapter":
        _check_adapter_sweep(config, space, build)
    metric = str(config["valid_metric"]).lower()
    mode = "max" if config["valid_metric_bigger"] else "min"
    epochs = int(config["epochs"])
    if output is None:
        output = os.path.join(config["checkpoint_dir"] or "saved", f"sweep-{config['model']}-{config['dataset']}")
    output = os.path.abspath(output)
    os.makedirs(output, exist_ok=True)
    address = ray_address or setting(config, "ray_address") or "local"
    num_workers = int(setting(config, "num_workers"))
    base = {"model": model, "dataset": dataset, "config_files": config_files, "config_dict": shared,
            "cmd_args": cmd_args, "cwd": os.getcwd(), "output": output, "metric": metric, "stage": stage}
    scheduler = ASHAScheduler(time_attr="training_iteration", max_t=max(1, epochs) + 1,
                              grace_period=int(setting(config, "sweep_grace_period")),
                              reduction_factor=float(setting(config, "sweep_reduction_factor")))
    trainable = tune.with_resources(tune.with_parameters(_trial, base=base), {"cpu": 1})
    with ray_connection(address, num_workers, float(setting(config, "ray_connect_timeout"))):
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            tune_config=tune.TuneConfig(
                metric=metric, mode=mode, scheduler=scheduler, num_samples=int(num_samples or setting(config, "sweep_num_samples")),
                max_concurrent_trials=int(max_concurrent or num_workers), chdir_to_trial_dir=False,
                search_alg=BasicVariantGenerator(random_state=int(config["seed"]))),
            run_config=RunConfig(name="ray", storage_path=output, verbose=verbose),
        )
        results = tuner.fit()
    rows = trial_rows(results, metric, mode, list(space))
    write_rows(os.path.join(output, TRIALS_FILE), rows)
    scored = [r for r in rows if r["best_" + metric] is not None]
    if not scored:
        errors = "; ".join(str(r["error"]) for r in rows if r["error"]) or "no trial reported a score"
        raise RuntimeError(f"every trial failed ({errors}); see {os.path.join(output, 'ray')}")
    best = (max if mode == "max" else min)(scored, key=lambda r: r["best_" + metric])
    best_params = {name: best[f"config/{name}"] for name in space}
    settings = {k: v for k, v in {**shared, **{a[2:].split("=", 1)[0]: _command_value(a.split("=", 1)[1])
                                               for a in cmd_args}}.items() if k not in _PLUMBING_KEYS}
    best_path = os.path.join(output, BEST_FILE)
    with open(best_path, "w", encoding="utf-8") as handle:
        handle.write(f"# best of {len(rows)} trials of {model} on {dataset}: {metric} = {best['best_' + metric]} "
                     f"(trial {best['trial_id']}, {mode}imised)\n"
                     f"# use: python run_recbole_paragon.py --model={model} --dataset={dataset} --config_files="
                     f"{','.join(config_files + [best_path])}\n")
        if stage == "adapter":
            handle.write(f"#   --run_dir={run_directory(config)} (the backbone every trial used)\n")
        elif str(model).startswith(PREFIX):
            handle.write(f"#   --run_dir={os.path.join(output, 'runs', best['trial_id'], f'{model}-{dataset}')} "
                         "(reuses the best trial's backbone)\n")
        yaml.safe_dump(to_jsonable({**settings, **best_params}), handle, sort_keys=False)
    return {"best_config": best_params, "best_score": best["best_" + metric], "best_trial": best["trial_id"],
            "metric": metric, "mode": mode, "best_yaml": best_path, "trials_csv": os.path.join(output, TRIALS_FILE),
            "trials": rows, "output": output}


def trial_rows(results, metric: str, mode: str, names: List[str]) -> List[Dict[str, Any]]:
    """One row per trial: swept values, best and last ``metric``, epochs reported, test metrics, status."""
    rows = []
    for result in results:
        history = result.metrics_dataframe
        last = result.metrics or {}
        scores = [] if history is None or metric not in history else [
            float(v) for v in history[metric].tolist() if v == v]
        row = {"trial_id": last.get("trial_id") or os.path.basename(str(result.log_dir or "")),
               **{f"config/{n}": to_jsonable(result.config.get(n)) for n in names},
               "best_" + metric: (max if mode == "max" else min)(scores) if scores else None,
               "last_" + metric: scores[-1] if scores else None,
               "reports": len(scores),
               "status": "error" if result.error else ("completed" if last.get("final") else "stopped early"),
               "error": str(result.error).splitlines()[0] if result.error else ""}
        row.update({k: v for k, v in last.items() if k.startswith(("valid_", "test_"))})
        rows.append(row)
    return rows


def write_rows(path: str, rows: List[Dict[str, Any]]) -> None:
    columns: List[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


# -- command line ------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m recbole_paragon.sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    parser.add_argument("--model", "-m", default="ParagonSASRec", help="model name (Paragon<Backbone> or RecBole's)")
    parser.add_argument("--dataset", "-d", default="ml-100k", help="dataset name")
    parser.add_argument("--params_file", required=True, help="hyper-parameter file (RecBole's format)")
    parser.add_argument("--config_files", default=None, help="comma-separated yaml files")
    parser.add_argument("--num_samples", type=int, default=None, help="number of trials (default: sweep_num_samples)")
    parser.add_argument("--max_concurrent", type=int, default=None, help="trials at a time (default: num_workers)")
    parser.add_argument("--ray_address", default=None,
                        help="local | auto | ray://host:port (default: config ray_address, else local)")
    parser.add_argument("--output", default=None,
                        help="output folder (default: <checkpoint_dir>/sweep-<model>-<dataset>)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args, rest = build_parser().parse_known_args(list(sys.argv[1:] if argv is None else argv))
    config_files = [f for f in args.config_files.split(",") if f] if args.config_files else None
    summary = sweep(args.model, args.dataset, args.params_file, config_files, None, args.num_samples,
                    args.max_concurrent, args.ray_address, args.output, cmd_args=rest)
    print(f"best {summary['metric']} = {summary['best_score']} ({summary['mode']}): {summary['best_config']}")
    print(f"best config: {summary['best_yaml']}\nall trials: {summary['trials_csv']}")
    return summary
