"""The HTTP service (FastAPI + uvicorn) and the preference console; install with ``recbole-paragon[serve]``."""
from recbole_paragon.service.server import build_app, main, serve

__all__ = ["build_app", "main", "serve"]
