"""Run the HTTP service: ``python run_recbole_paragon.py --stage=serve [--model=M --dataset=D | --run_dir=DIR]
[--port=8000] [--serve_<setting>=VALUE ...]`` or ``recbole-paragon serve ...``. The run directory is found as every
stage finds it: ``--run_dir``, else ``<checkpoint_dir>/<model>-<dataset>`` (defaults ``saved``, ``ParagonSASRec``,
``ml-100k``, as the command line's). Host, port and the rest default to ``properties/overall.yaml``; any
``serve_*`` setting can be given as ``--serve_<name>=value``.

On loopback (the default) it needs no token. Beyond loopback it refuses to start unless an API token is set in
``PARAGON_API_TOKEN`` (or a file named by ``PARAGON_API_TOKEN_FILE``), or ``--insecure`` is given. With
``serve_workers`` > 1 (``--serve_workers=N``) uvicorn runs N worker processes on the port, each loading the bundle
read-only with its own adapter cache and batcher.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, Optional, Sequence

import torch
import yaml

from recbole_paragon.artifacts import run_directory
from recbole_paragon.schema import check_setting
from recbole_paragon.settings import setting, yaml_defaults

#: The settings the command line takes as ``--serve_<name>=value``.
SERVE_SETTINGS = sorted(key for key in yaml_defaults() if key.startswith("serve_"))
#: How the parent process hands a worker process its bundle and settings (``serve_workers`` > 1).
WORKER_VARIABLE = "PARAGON_SERVE_WORKER"


def parse_arguments(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="recbole-paragon serve", description=__doc__)
    parser.add_argument("--run_dir", "--bundle", dest="path", default=None,
                        help="a run directory holding bundle/ (written by --stage=export), or a bundle directory "
                             "(default: <checkpoint_dir>/<model>-<dataset>)")
    parser.add_argument("--model", "-m", default="ParagonSASRec", help="the run's model (default ParagonSASRec)")
    parser.add_argument("--dataset", "-d", default="ml-100k", help="the run's dataset (default ml-100k)")
    parser.add_argument("--checkpoint_dir", default="saved", help="where runs are saved (default saved)")
    parser.add_argument("--host", default=None, help=f"address to listen on (default {setting(None, 'serve_host')})")
    parser.add_argument("--port", type=int, default=None, help=f"port (default {setting(None, 'serve_port')})")
    parser.add_argument("--insecure", action="store_true",
                        help="serve beyond loopback without an API token (anyone who reaches the port gets in)")
    parser.add_argument("--stage", default="serve", help=argparse.SUPPRESS)
    arguments, unknown = parser.parse_known_args(argv)
    arguments.settings = {}
    for argument in unknown:
        key, equals, value = argument[2:].partition("=")
        if not (argument.startswith("--serve_") and equals and key in SERVE_SETTINGS):
            parser.error(f"unknown arguments for the service: {argument} (settings are given as --serve_name=value, "
                         f"one of {', '.join(SERVE_SETTINGS)})")
        try:
            arguments.settings[key] = check_setting(key, yaml.safe_load(value))
        except (KeyError, ValueError, yaml.YAMLError) as error:
            parser.error(str(error).strip("'\""))
    if arguments.stage != "serve":
        parser.error(f"--stage={arguments.stage} is not the service; use --stage=serve")
    if arguments.port is not None and not 0 <= arguments.port <= 65535:
        parser.error(f"--port must be from 0 to 65535, got {arguments.port}")
    if arguments.path is None:
        arguments.path = run_directory({"model": arguments.model, "dataset": arguments.dataset,
                                        "checkpoint_dir": arguments.checkpoint_dir})
    return arguments


def build_app(path: str, settings: Optional[Dict[str, Any]] = None, token: Optional[str] = None,
              host: Optional[str] = None):
    """Load the bundle at ``path`` (``serve_*`` settings: ``settings``, else the yaml); ``(app, recommender)``;
    ``token``: the API token every route but /health then requires."""
    from recbole_paragon.bundle.index import index_threads
    from recbole_paragon.service.app import create_app
    from recbole_paragon.serving import ParagonRecommender

    recommender = ParagonRecommender.load(path, settings=settings)
    threads = int(setting(recommender.bundle.config, "serve_threads"))
    torch.set_num_threads(threads)
    index_threads(threads)
    recommender.warm_up()
    return create_app(recommender, token=token, host=host), recommender


def worker_app():
    """The app of one worker process (uvicorn's factory when ``serve_workers`` > 1)."""
    from recbole_paragon.service.security import api_token

    handed = json.loads(os.environ[WORKER_VARIABLE])
    return build_app(handed["path"], handed["settings"], api_token(), handed["host"])[0]


def serve(path: str, host: Optional[str] = None, port: Optional[int] = None, settings: Optional[Dict] = None,
          insecure: bool = False) -> None:
    """Serve the bundle at ``path`` until interrupted."""
    try:
        import uvicorn
    except ImportError:
        raise SystemExit("the HTTP service needs FastAPI and uvicorn: pip install 'recbole-paragon[serve]'") from None
    from recbole_paragon.service.security import api_token, is_loopback

    settings = dict(settings or {})
    host = host or str(setting(settings, "serve_host"))
    port = int(setting(settings, "serve_port") if port is None else port)
    try:
        token = api_token()
    except ValueError as error:
        raise SystemExit(f"cannot start the service: {error}") from None
    check_exposure(host, token, insecure, is_loopback(host))
    workers = int(setting(settings, "serve_workers"))
    access_log = bool(setting(settings, "serve_access_log"))
    print(f"serving {path} on http://{host}:{port}/ (console), /docs (OpenAPI); {workers} worker process(es); "
          f"API token {'required' if token else 'not set'}", flush=True)
    if workers > 1:
        os.environ[WORKER_VARIABLE] = json.dumps({"path": os.path.abspath(path), "settings": settings, "host": host})
        uvicorn.run("recbole_paragon.service.server:worker_app", factory=True, host=host, port=port,
                    workers=workers, log_level="info", access_log=access_log)
        return
    app, _ = build_app(path, settings, token, host)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log)


def check_exposure(host: str, token: Optional[str], insecure: bool, loopback: bool) -> None:
    """Refuse to serve beyond loopback without a token, unless ``--insecure`` (then warn loudly)."""
    if loopback or token:
        return
    if not insecure:
        raise SystemExit(f"refusing to serve on {host} without an API token: anyone who reaches the port could list "
                         f"and probe every user. Set PARAGON_API_TOKEN (or PARAGON_API_TOKEN_FILE, a file holding it; "
                         f"make one with python -c 'import secrets; print(secrets.token_urlsafe(32))'), bind "
                         f"127.0.0.1, or pass --insecure")
    print(f"WARNING: --insecure: serving on {host} WITHOUT AN API TOKEN. Anyone who reaches this port can query "
          f"every route. Use it only on a network you control.", file=sys.stderr, flush=True)


def main(argv: Optional[Sequence[str]] = None) -> None:
    arguments = parse_arguments(argv)
    serve(arguments.path, arguments.host, arguments.port, arguments.settings, arguments.insecure)
