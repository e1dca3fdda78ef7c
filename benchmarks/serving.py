"""Serving load on loopback: the HTTP service and the Python API on an ml-100k bundle.

    python benchmarks/serving.py --run_dir=saved/ParagonSASRec-ml-100k [--clients 8] [--seconds 20]

Starts ``run_recbole_paragon.py --stage=serve`` on 127.0.0.1 (a free port), then for ``--seconds`` each:
(a) ``--clients`` concurrent keep-alive clients, one cached preference, random known users;
(b) the same with a new preference per request (every request generates an adapter);
(c) batched Python API calls (``ParagonRecommender.recommend`` on ``--batch`` users, new preference per call).
Prints p50 / p99 latency, requests/s and errors; the load is bounded in time and only ever sent to 127.0.0.1.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine, print_table  # noqa: E402

HOST = "127.0.0.1"  # loopback only
TARGETS = {"a": ("p99", 20.0), "b": ("p99", 50.0)}
MIN_RATE_A = 300.0
LOAD_BEFORE = ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_service(run_dir: str, port: int) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen([sys.executable, os.path.join(REPO, "run_recbole_paragon.py"), "--stage=serve",
                                f"--run_dir={run_dir}", f"--host={HOST}", f"--port={port}"], env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the service exited: {process.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=1) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the service did not answer /health within 120 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``), to report server CPU per request."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def random_preference(rng: random.Random) -> List[float]:
    a = rng.random()
    return [round(a, 6), round(1 - a, 6)]


async def client(port: int, users: List[str], seconds: float, new_preference: bool, seed: int,
                 latencies: List[float], errors: List[str]) -> None:
    """One keep-alive connection sending requests back to back until the deadline."""
    rng = random.Random(seed)
    reader, writer = await asyncio.open_connection(HOST, port)
    deadline = time.perf_counter() + seconds
    try:
        while time.perf_counter() < deadline:
            preference = random_preference(rng) if new_preference else [0.7, 0.3]
            body = json.dumps({"user": rng.choice(users), "preference": preference, "k": 10}).encode()
            request = (f"POST /recommend HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            payload = await reader.readexactly(length)
            latencies.append((time.perf_counter() - start) * 1000)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(head.split(b"\r\n")[0].decode() + " " + payload[:200].decode(errors="replace"))
    finally:
        writer.close()


async def http_load(port: int, users: List[str], clients: int, seconds: float, new_preference: bool
                    ) -> Dict[str, float]:
    latencies, errors = [], []
    start = time.perf_counter()
    await asyncio.gather(*(client(port, users, seconds, new_preference, seed, latencies, errors)
                           for seed in range(clients)))
    return summary(latencies, errors, time.perf_counter() - start)


def summary(latencies: List[float], errors: List[str], seconds: float) -> Dict[str, float]:
    ordered = sorted(latencies)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")  # noqa: E731
    if errors:
        print(f"  first error: {errors[0]}")
    return {"requests": len(ordered), "errors": len(errors), "rate": len(ordered) / seconds, "p50": pick(0.50),
            "p99": pick(0.99)}


def python_api_load(run_dir: str, batch: int, seconds: float) -> Dict[str, float]:
    import torch

    from recbole_paragon import ParagonRecommender

    torch.set_num_threads(1)
    recommender = ParagonRecommender.load(run_dir)
    users = recommender.catalogue.user_tokens[1:]
    rng = random.Random(0)
    recommender.recommend(users=users[:batch], preference=[0.5, 0.5])  # warm: every user's state once
    latencies, errors = [], []
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        chosen = rng.sample(users, batch)
        begin = time.perf_counter()
        result = recommender.recommend(users=chosen, preference=random_preference(rng), k=10)
        latencies.append((time.perf_counter() - begin) * 1000)
        if len(result) != batch or any(len(items) != 10 for items in result):
            errors.append("short result")
    return summary(latencies, errors, time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run_dir", default=os.path.join(REPO, "saved", "ParagonSASRec-ml-100k"))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="per scenario (three scenarios)")
    parser.add_argument("--batch", type=int, default=64, help="users per Python API call in (c)")
    args = parser.parse_args()
    if not 1 <= args.clients <= 64 or not 0 < args.seconds <= 120:
        parser.error("keep the load bounded: 1-64 clients, at most 120 s per scenario")
    global LOAD_BEFORE
    LOAD_BEFORE = " ".join(open("/proc/loadavg").read().split()[:3])
    port = free_port()
    service = start_service(args.run_dir, port)
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/users?limit=1000") as response:
            users = json.load(response)["users"]
        asyncio.run(http_load(port, users, 1, 1.0, False))  # warm: adapter for (a) cached, code paths hot
        rows = {}
        for key, new_preference in (("a", False), ("b", True)):
            before = cpu_seconds(service.pid)
            rows[key] = asyncio.run(http_load(port, users, args.clients, args.seconds, new_preference))
            rows[key]["cpu"] = (cpu_seconds(service.pid) - before) * 1000 / max(1, rows[key]["requests"])
    finally:
        service.terminate()
        service.wait(timeout=30)
    rows["c"] = python_api_load(args.run_dir, args.batch, args.seconds)
    print(f"machine: {machine()}; {args.clients} clients, {args.seconds:.0f} s per scenario, bundle {args.run_dir}")
    names = {"a": "(a) HTTP, cached preference", "b": "(b) HTTP, new preference per request",
             "c": f"(c) Python API, {args.batch} users per call, new preference"}
    table = [[names[key], r["requests"], r["errors"], f"{r['rate']:.1f}", f"{r['p50']:.2f}", f"{r['p99']:.2f}",
              f"{r['cpu']:.2f}" if "cpu" in r else "-"] for key, r in rows.items()]
    print_table(table, ["scenario", "requests", "errors", "req/s", "p50 ms", "p99 ms", "server CPU ms / req"])
    print(f"load average before / after: {LOAD_BEFORE} / {' '.join(open('/proc/loadavg').read().split()[:3])}")
    verdicts = [f"(a) p99 {rows['a']['p99']:.1f} ms (target <= 20)",
                f"(a) {rows['a']['rate']:.0f} req/s (target >= 300)",
                f"(b) p99 {rows['b']['p99']:.1f} ms (target <= 50)", f"errors {sum(r['errors'] for r in rows.values())}"]
    met = [rows["a"]["p99"] <= 20, rows["a"]["rate"] >= MIN_RATE_A, rows["b"]["p99"] <= 50,
           not any(r["errors"] for r in rows.values())]
    for verdict, ok in zip(verdicts, met):
        print(("met   " if ok else "MISSED") + f" {verdict}")


if __name__ == "__main__":
    main()
