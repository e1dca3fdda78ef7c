"""The HTTP service: FastAPI routes over one :class:`ParagonRecommender`, and the preference console at ``/``.

Bad input is a 4xx whose ``detail`` names the problem: 404 for an unknown user or item token, 422 for anything
else (wrong number of weights, negative / NaN / all-zero weights, k out of range, malformed body).
"""
from __future__ import annotations

import os
import time
from typing import Any, Dict

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from recbole_paragon import __version__
from recbole_paragon.bundle import UnknownIdError
from recbole_paragon.service.schemas import (HealthResponse, ObjectivesResponse, RecommendRequest,
                                             RecommendResponse, UsersResponse)
from recbole_paragon.serving import ParagonRecommender

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MAX_USERS_PAGE = 1000


def create_app(recommender: ParagonRecommender) -> FastAPI:
    """The service's app for a loaded recommender."""
    manifest = recommender.bundle.manifest
    app = FastAPI(title="recbole-paragon", version=__version__,
                  description=f"Controllable recommendations from {manifest['model']} on {manifest['dataset']}: "
                              f"one weight per objective ({', '.join(recommender.objectives)}).")
    _error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def console() -> FileResponse:
        return FileResponse(os.path.join(STATIC_DIR, "console.html"), media_type="text/html")

    @app.get("/health", response_model=HealthResponse)
    def health() -> Dict[str, Any]:
        return {"status": "ok", "model": manifest["model"], "dataset": manifest["dataset"],
                "generator": manifest["generator"], "users": manifest["users"], "items": manifest["items"],
                "cached_adapters": len(recommender.adapters)}

    @app.get("/objectives", response_model=ObjectivesResponse)
    def objectives() -> Dict[str, Any]:
        return {"objectives": recommender.bundle.objectives, "grid": recommender.bundle.grid,
                "default_k": recommender.default_k, "max_k": recommender.max_k}

    @app.get("/users", response_model=UsersResponse)
    def users(offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=MAX_USERS_PAGE)) -> Dict[str, Any]:
        tokens = recommender.catalogue.user_tokens[1:]  # id 0 is RecBole's padding
        return {"users": tokens[offset:offset + limit], "total": len(tokens)}

    @app.post("/recommend", response_model=RecommendResponse)
    async def recommend(request: RecommendRequest) -> Dict[str, Any]:
        """A cached adapter costs well under a millisecond: answered on the event loop. A new preference waits for
        a sampling pass: answered from the thread pool, where concurrent ones share a pass."""
        if recommender.is_cached(request.preference):
            return recommendation(recommender, request)
        return await run_in_threadpool(recommendation, recommender, request)

    return app


def recommendation(recommender: ParagonRecommender, request: RecommendRequest) -> Dict[str, Any]:
    """One request's top-K, the preference used, whether its adapter was cached, the latency."""
    start = time.perf_counter()
    if (request.user is None) == (request.history is None):
        raise ValueError("give either \"user\" (a user token) or \"history\" (a list of item tokens), not both")
    users = None if request.user is None else [request.user]
    histories = None if request.history is None else [request.history]
    ranking = recommender.rank(users, histories, request.preference, request.k, request.exclude_seen)
    describe = recommender.catalogue.describe
    items = [describe(i, s) for i, s in zip(ranking.items[0], ranking.scores[0])]
    return {"user": None if request.user is None else str(request.user), "items": items,
            "preference": [round(w, 6) for w in ranking.preference.tolist()], "objectives": recommender.objectives,
            "cached": ranking.cached, "validation": recommender.grid_point(ranking.preference),
            "latency_ms": (time.perf_counter() - start) * 1000}


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(UnknownIdError)
    def unknown_id(_: Request, error: UnknownIdError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(error)})

    @app.exception_handler(ValueError)
    def bad_value(_: Request, error: ValueError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(error)})

    @app.exception_handler(RequestValidationError)
    def malformed(_: Request, error: RequestValidationError) -> JSONResponse:
        """FastAPI's own 422, without echoing the input (it may hold NaN, which JSON cannot carry)."""
        details = [{"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", "")),
                    "type": str(e.get("type", ""))} for e in error.errors()]
        return JSONResponse(status_code=422, content={"detail": details})
