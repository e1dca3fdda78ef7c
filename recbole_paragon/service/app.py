"""The HTTP service: FastAPI routes over one :class:`ParagonRecommender`, the preference console at ``/`` and the
OpenAPI UI at ``/docs``, both from files the package ships (no CDN).

Every request passes :class:`~recbole_paragon.service.security.Guard` first (Host, token, body size, headers). A
``POST /recommend`` body is read as plain JSON and checked by the recommender's own :class:`Requests` — the checks
and the words of the Python API. Bad input is a 4xx whose ``detail`` names the problem: 404 for an unknown user or
item token, 413 for a body over ``serve_max_body_bytes``, 415 for a body that is not JSON, 422 for anything else.
"""
from __future__ import annotations

import os
import time
from typing import Any, Dict, Optional

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from recbole_paragon import __version__
from recbole_paragon.bundle import UnknownIdError
from recbole_paragon.rules import as_names
from recbole_paragon.service.schemas import (HealthResponse, ObjectivesResponse, RecommendRequest,
                                             RecommendResponse, UsersResponse)
from recbole_paragon.service.security import Guard, RequestError, allowed_hosts, read_json_body
from recbole_paragon.serving import ParagonRecommender
from recbole_paragon.serving.requests import Query as Checked
from recbole_paragon.settings import setting

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MAX_USERS_PAGE = 1000
USERS_OFF = "GET /users is off (it lists every user of the dataset): set serve_list_users: True to turn it on"


def swagger_ui_dir() -> str:
    """The Swagger UI files of the pinned ``swagger-ui-py`` package (installed with the service)."""
    try:
        import swagger_ui
    except ImportError:
        raise SystemExit("the OpenAPI page needs swagger-ui-py: pip install 'recbole-paragon[serve]'") from None
    return os.path.join(os.path.dirname(os.path.abspath(swagger_ui.__file__)), "static")


def create_app(recommender: ParagonRecommender, token: Optional[str] = None, host: Optional[str] = None) -> FastAPI:
    """The service's app for a loaded recommender; ``token`` (if any) is required on every route but /health,
    ``host`` is the address the service binds (answered besides ``serve_allowed_hosts``)."""
    config = recommender.bundle.config
    manifest = recommender.bundle.manifest
    app = FastAPI(title="recbole-paragon", version=__version__, docs_url=None, redoc_url=None,
                  description=f"Controllable recommendations from {manifest['model']} on {manifest['dataset']}: "
                              f"one weight per objective ({', '.join(recommender.objectives)}).")
    max_body = int(setting(config, "serve_max_body_bytes"))
    app.add_middleware(Guard, token=token, hosts=allowed_hosts(as_names(setting(config, "serve_allowed_hosts")), host),
                       max_body=max_body)
    _error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_dir()), name="docs-assets")

    @app.get("/", include_in_schema=False)
    def console() -> FileResponse:
        return FileResponse(os.path.join(STATIC_DIR, "console.html"), media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(os.path.join(STATIC_DIR, "docs.html"), media_type="text/html")

    @app.get("/health", response_model=HealthResponse)
    def health() -> Dict[str, Any]:
        return {"status": "ok", "model": manifest["model"], "dataset": manifest["dataset"],
                "generator": manifest["generator"], "users": manifest["users"], "items": manifest["items"],
                "cached_adapters": len(recommender.adapters)}

    @app.get("/objectives", response_model=ObjectivesResponse)
    def objectives() -> Dict[str, Any]:
        requests = recommender.requests
        return {"objectives": recommender.bundle.objectives, "grid": recommender.bundle.grid,
                "default_k": requests.default_k, "max_k": requests.max_k}

    @app.get("/users", response_model=UsersResponse, include_in_schema=bool(setting(config, "serve_list_users")))
    def users(offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=MAX_USERS_PAGE)) -> Dict[str, Any]:
        if not setting(config, "serve_list_users"):
            raise RequestError(404, USERS_OFF)
        tokens = recommender.catalogue.user_tokens[1:]  # id 0 is RecBole's padding
        return {"users": tokens[offset:offset + limit], "total": len(tokens)}

    @app.post("/recommend", response_model=RecommendResponse, openapi_extra={"requestBody": {
        "required": True, "content": {"application/json": {"schema": RecommendRequest.model_json_schema()}}}})
    async def recommend(request: Request) -> Dict[str, Any]:
        """A cached adapter over exact scoring of a small catalogue costs well under a millisecond: answered on the
        event loop. A new preference waits for a sampling pass, and a search of the item index takes milliseconds
        (faiss and torch release the GIL): both answered from the thread pool, where concurrent new preferences
        share a pass and searches use every core."""
        body = await read_json_body(request, max_body)
        query = recommender.requests.from_body(body)
        user = body.get("user")
        if recommender.index is None and recommender.is_cached(query.preference):
            return recommendation(recommender, query, user)
        return await run_in_threadpool(recommendation, recommender, query, user)

    return app


def recommendation(recommender: ParagonRecommender, query: Checked, user: Any = None) -> Dict[str, Any]:
    """One checked request's top-K, the preference used, whether its adapter was cached, the latency."""
    start = time.perf_counter()
    ranking = recommender.rank_query(query)
    return {"user": None if user is None else str(user), "items": recommender.described(ranking)[0],
            "preference": list(ranking.preference.values), "objectives": recommender.objectives,
            "cached": ranking.cached, "validation": recommender.grid_point(ranking.preference),
            "latency_ms": (time.perf_counter() - start) * 1000}


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(UnknownIdError)
    def unknown_id(_: Request, error: UnknownIdError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(error)})

    @app.exception_handler(RequestError)
    def refused(_: Request, error: RequestError) -> JSONResponse:
        return JSONResponse(status_code=error.status, content={"detail": str(error)})

    @app.exception_handler(ValueError)
    def bad_value(_: Request, error: ValueError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(error)})

    @app.exception_handler(RequestValidationError)
    def malformed(_: Request, error: RequestValidationError) -> JSONResponse:
        """FastAPI's own 422 (query parameters), without echoing the input."""
        details = [{"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", "")),
                    "type": str(e.get("type", ""))} for e in error.errors()]
        return JSONResponse(status_code=422, content={"detail": details})
