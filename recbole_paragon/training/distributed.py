"""Adapter-bank collection on Ray: one Ray task per (preference x seed) tuning run.

Config keys:

* ``ray_address``: ``~`` (null) collects in-process with :func:`recbole_paragon.training.bank.collect_bank`; ``local`` starts a
  private local Ray with ``num_workers`` CPUs (and stops it afterwards); ``auto``, ``host:port`` or
  ``ray://host:port`` connects to a running cluster (``ray start --head``; ``ray://`` is Ray Client, default port
  10001). An address that does not answer within ``ray_connect_timeout`` seconds (default 10) raises
  ``ConnectionError`` before anything is written.
* ``num_workers``: tuning runs in flight at a time (the local Ray gets that many CPUs).

The frozen backbone's cached states (``trainer.caches``), the objectives, the model, the config and RecBole's evaluator
are put in Ray's object store once (``ray.put``); every task gets the reference and each worker process deserialises
it once, then reuses it for every run it is given. Tasks return ``(preference, seed, [(step, vector)], [valid
metrics], tuning seconds)``; the driver adds them to the bank in grid order and saves the bank after each run it
adds, so the result is the bank the serial collection builds (same seeds, same adapters) and an interrupted
collection resumes like ``collect_bank``: runs already in the bank are skipped.
"""
from __future__ import annotations

import socket
import time
from contextlib import contextmanager
from logging import getLogger
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

import torch

from recbole_paragon.settings import setting
from recbole_paragon.training.bank import AdapterBank, collect_bank, pending_runs
from recbole_paragon.training.progress import progress_bar

#: Trainer attributes that stay on the driver (open files, wandb handle, optimiser of the backbone, and RecBole's
#: dataloaders: the whole dataset, which tuning and evaluating on cached states never reads).
_NOT_SHIPPED = frozenset({"logger", "tensorboard", "wandblogger", "optimizer", "loaders"})

#: (preference, seed, [(step, vector)], [valid metrics per vector], seconds the tuning took on the worker)
RunResult = Tuple[List[float], int, List[Tuple[int, torch.Tensor]], List[Dict[str, float]], float]


# -- connecting --------------------------------------------------------------------------------------------------------
def _check_reachable(address: str, timeout: float) -> None:
    """Raise ``ConnectionError`` unless something accepts TCP connections at ``address`` within ``timeout`` s."""
    parsed = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parsed.hostname, parsed.port
    except ValueError:  # port out of range or not a number
        host, port = None, None
    if not host:
        raise ValueError(f"ray_address {address!r} is not 'local', 'auto', 'host:port' or 'ray://host:port'")
    if port is None:
        port = 10001 if parsed.scheme == "ray" else 6379
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as error:
        raise ConnectionError(
            f"no Ray cluster answers at ray_address={address!r} ({host}:{port}: {error}). Start one with "
            "`ray start --head` (Ray Client listens on port 10001), fix ray_address, use ray_address=local for a "
            "local Ray, or ray_address=~ (null) to run in-process.") from None


@contextmanager
def ray_connection(address: str, num_workers: int, timeout: float) -> Iterator[Any]:
    """Ray for ``address`` (see the module doc) for the duration of the block; yields the ``ray`` module.

    A Ray this process already initialised is used as it is (and left running; a cluster address is still checked to
    answer). Otherwise the local Ray started here, or the connection made here, is shut down when the block ends.
    """
    import ray

    address = str(address).strip()
    if address == "local":
        kwargs: Dict[str, Any] = {"address": "local", "num_cpus": max(1, int(num_workers))}
    elif address == "auto":
        kwargs = {"address": "auto"}
    else:
        _check_reachable(address, timeout)  # seconds, not Ray's minutes of retries
        kwargs = {"address": address}
    if ray.is_initialized():
        yield ray
        return
    try:
        ray.init(include_dashboard=False if address == "local" else None, log_to_driver=False,
                 ignore_reinit_error=True, logging_level="ERROR", **kwargs)
    except ConnectionError as error:
        raise ConnectionError(f"could not connect to the Ray cluster at ray_address={address!r}: {error}") from error
    try:
        yield ray
    finally:
        ray.shutdown()


# -- the task ----------------------------------------------------------------------------------------------------------
_WORKER_TRAINERS: Dict[str, Any] = {}


def worker_state(trainer) -> Dict[str, Any]:
    """What a worker needs to tune and evaluate adapters: the trainer's attributes minus driver-only handles."""
    if not trainer.caches or trainer.objectives is None:
        raise ValueError("call trainer.prepare(train, valid, test) before collecting a bank on Ray")
    return {key: value for key, value in vars(trainer).items() if key not in _NOT_SHIPPED}


def _worker_trainer(state_ref):
    """The worker process's copy of the trainer (deserialised from the object store on its first run only)."""
    import ray

    key = state_ref.hex()
    trainer = _WORKER_TRAINERS.get(key)
    if trainer is None:
        from recbole_paragon.training.adapter_trainer import AdapterTrainer

        torch.set_num_threads(1)  # one core per task; Ray runs num_workers tasks side by side
        trainer = AdapterTrainer.__new__(AdapterTrainer)  # no RecBole Trainer.__init__: no log dirs on workers
        vars(trainer).update(ray.get(state_ref))
        trainer.logger = getLogger()
        _WORKER_TRAINERS.clear()  # one bank at a time: drop a previous collection's states
        _WORKER_TRAINERS[key] = trainer
    return trainer


def tune_run(boxed_state_ref: Sequence[Any], preference: List[float], seed: int,
             checkpoints: List[int]) -> RunResult:
    """One tuning run (body of the Ray task). The state reference comes in a list so Ray passes it unresolved."""
    trainer = _worker_trainer(boxed_state_ref[0])
    start = time.perf_counter()
    vectors = [(int(step), vector.detach().cpu()) for step, vector in
               trainer.tune(preference, seed=seed, checkpoints=checkpoints)]
    seconds = time.perf_counter() - start
    metrics = [{k: float(v) for k, v in trainer.evaluate_selection(vector).items()} for _, vector in vectors]
    return preference, seed, vectors, metrics, seconds


# -- the driver --------------------------------------------------------------------------------------------------------
def collect_bank_ray(trainer, config, directory: str, show_progress: bool = True,
                     grid: Optional[torch.Tensor] = None) -> AdapterBank:
    """:func:`~recbole_paragon.training.bank.collect_bank` with every tuning run as a Ray task (``ray_address``,
    ``num_workers``); in-process when ``ray_address`` is null."""
    address = setting(config, "ray_address")
    if address is None or str(address).strip() in ("", "~", "None", "null"):
        return collect_bank(trainer, config, directory, show_progress=show_progress, grid=grid)
    num_workers = int(setting(config, "num_workers"))
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}")
    timeout = float(setting(config, "ray_connect_timeout"))

    bank, todo, checkpoints = pending_runs(trainer, config, directory, grid)
    if not todo:
        return bank

    logger = getLogger()
    with ray_connection(str(address), num_workers, timeout) as ray:
        start = time.perf_counter()
        state_ref = ray.put(worker_state(trainer))  # once; tasks get the reference, not the tensors
        logger.info(f"adapter bank on Ray ({address}): {len(todo)} tuning runs, {num_workers} at a time, "
                    f"state shipped in {time.perf_counter() - start:.2f}s")
        task = ray.remote(num_cpus=1, max_retries=0)(tune_run)
        pending: Dict[Any, int] = {}  # object ref -> index in todo
        finished: Dict[int, RunResult] = {}
        submitted = added = 0
        bar = progress_bar(len(todo), "adapter bank (ray)", show_progress)
        try:
            while added < len(todo):
                while submitted < len(todo) and len(pending) < num_workers:
                    preference, seed = todo[submitted]
                    pending[task.remote([state_ref], preference, seed, checkpoints)] = submitted
                    submitted += 1
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    finished[pending.pop(ref)] = ray.get(ref)
                while added in finished:  # grid order: the bank is the one the serial collection builds
                    preference, seed, vectors, metrics, seconds = finished.pop(added)
                    for (step, vector), result in zip(vectors, metrics):
                        bank.add(vector, preference.tolist(), step, seed, result, seconds)
                    bank.save(directory)
                    added += 1
                    bar.update(1)
        finally:
            bar.close()
            for ref in pending:
                ray.cancel(ref, force=True)
    return bank
