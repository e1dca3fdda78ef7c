"""Load for the serving benchmark: the service started on loopback, keep-alive clients, latency summaries.

Only ever sends to 127.0.0.1; every scenario is bounded in time.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Dict, List, Optional, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"  # loopback only


def uptime() -> str:
    """The load average as ``uptime`` prints it (recorded with every figure: the machine is shared)."""
    return os.popen("uptime").read().strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_service(run_dir: str, port: int, settings: Sequence[str] = (), wait: float = 600) -> subprocess.Popen:
    """``run_recbole_paragon.py --stage=serve`` on loopback with ``--serve_*`` ``settings``; returns once /health
    answers (the service's log goes to a temporary file, never to a pipe nobody reads)."""
    environment = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, os.path.join(REPO, "run_recbole_paragon.py"), "--stage=serve",
                                f"--run_dir={run_dir}", f"--host={HOST}", f"--port={port}", *settings],
                               env=environment, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise SystemExit(f"the service exited: {log.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=1) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"the service did not answer /health within {wait:.0f} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live descendants (uvicorn's workers) so far (Linux ``/proc``),
    to report server CPU per request."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            children = [int(child) for child in handle.read().split()]
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") + sum(cpu_seconds(c) for c in children)


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its live descendants (MiB)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            own = next(int(line.split()[1]) for line in handle if line.startswith("VmRSS")) / 1024
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            children = [int(child) for child in handle.read().split()]
    except (OSError, StopIteration):
        return 0.0
    return own + sum(rss_mib(child) for child in children)


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


def scenario(service: subprocess.Popen, port: int, users: List[str], clients: int, seconds: float,
             new_preference: bool) -> Dict[str, float]:
    """One bounded load: latency summary, server CPU ms per request, the load average before and after."""
    before, load = cpu_seconds(service.pid), uptime()
    row = asyncio.run(http_load(port, users, clients, seconds, new_preference))
    row["cpu"] = (cpu_seconds(service.pid) - before) * 1000 / max(1, row["requests"])
    row["rss"] = rss_mib(service.pid)
    row["uptime"] = f"{load.split('load average:')[-1].strip()} -> {uptime().split('load average:')[-1].strip()}"
    return row


def known_users(bundle: str, limit: Optional[int] = None) -> List[str]:
    """User tokens with a history, read from the bundle's catalogue (GET /users is off by default)."""
    import torch

    directory = bundle if os.path.isfile(os.path.join(bundle, "manifest.json")) else os.path.join(bundle, "bundle")
    with open(os.path.join(directory, "catalogue.json"), encoding="utf-8") as handle:
        tokens = json.load(handle)["user_tokens"]
    offsets = torch.load(os.path.join(directory, "catalogue.pt"), weights_only=True)["history_offsets"]
    users = [token for u, token in enumerate(tokens) if u > 0 and offsets[u + 1] > offsets[u]]
    return users[:limit] if limit else users


def stop(service: subprocess.Popen) -> None:
    service.terminate()
    try:
        service.wait(timeout=60)
    except subprocess.TimeoutExpired:
        service.kill()
