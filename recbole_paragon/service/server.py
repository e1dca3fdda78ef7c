"""Run the HTTP service: ``python run_recbole_paragon.py --stage=serve [--model=M --dataset=D | --run_dir=DIR]
[--port=8000]`` or ``recbole-paragon serve ...``. The run directory is found as every stage finds it: ``--run_dir``, else
``<checkpoint_dir>/<model>-<dataset>`` (defaults ``saved``, ``ParagonSASRec``, ``ml-100k``, as the command line's).
Host, port and the rest default to ``properties/overall.yaml``."""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

import torch

from recbole_paragon.artifacts import run_directory
from recbole_paragon.settings import setting


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
    parser.add_argument("--stage", default="serve", help=argparse.SUPPRESS)
    arguments, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.error(f"unknown arguments for the service: {' '.join(unknown)}")
    if arguments.stage != "serve":
        parser.error(f"--stage={arguments.stage} is not the service; use --stage=serve")
    if arguments.port is not None and not 0 <= arguments.port <= 65535:
        parser.error(f"--port must be from 0 to 65535, got {arguments.port}")
    if arguments.path is None:
        arguments.path = run_directory({"model": arguments.model, "dataset": arguments.dataset,
                                        "checkpoint_dir": arguments.checkpoint_dir})
    return arguments


def build_app(path: str):
    """Load the bundle at ``path`` and return ``(app, recommender)``."""
    from recbole_paragon.service.app import create_app
    from recbole_paragon.serving import ParagonRecommender

    recommender = ParagonRecommender.load(path)
    torch.set_num_threads(int(setting(recommender.bundle.config, "serve_threads")))
    recommender.warm_up()
    return create_app(recommender), recommender


def serve(path: str, host: Optional[str] = None, port: Optional[int] = None) -> None:
    """Serve the bundle at ``path`` until interrupted."""
    try:
        import uvicorn
    except ImportError:
        raise SystemExit("the HTTP service needs FastAPI and uvicorn: pip install 'recbole-paragon[serve]'") from None
    app, recommender = build_app(path)
    config = recommender.bundle.config
    host = host or str(setting(config, "serve_host"))
    port = int(setting(config, "serve_port") if port is None else port)
    print(f"serving {recommender.bundle.directory} on http://{host}:{port}/ (console), /docs (OpenAPI)")
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=bool(setting(config, "serve_access_log")))


def main(argv: Optional[Sequence[str]] = None) -> None:
    arguments = parse_arguments(argv)
    serve(arguments.path, arguments.host, arguments.port)
