"""The HTTP service's request and response bodies as its OpenAPI schema at ``/docs``.

A request body is checked by :class:`recbole_paragon.serving.requests.Requests` (the Python API's own checks), not by
these models: :class:`RecommendRequest` only documents it."""
from __future__ import annotations

from typing import Dict, List, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

Token = Union[StrictStr, StrictInt]


class RecommendRequest(BaseModel):
    """Who to recommend for (a known ``user`` or a free ``history``), under which preference, how many items."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"user": "196", "preference": [0.7, 0.3], "k": 10},
        {"history": ["242", "302", "377"], "preference": {"accuracy": 1, "diversity": 1}, "k": 5}]})

    user: Optional[Token] = Field(None, description="a user token of the dataset (e.g. ml-100k's user_id)")
    history: Optional[List[Token]] = Field(None, description="item tokens, oldest first, for a user the bundle "
                                                             "does not know")
    preference: Union[List[Union[StrictFloat, StrictInt]], Dict[str, Union[StrictFloat, StrictInt]], StrictStr] = Field(
        description="one non-negative weight per objective (a list in the order of GET /objectives, a map by "
                    "name, or a string like \"0.3,0.7\"); normalised to sum to 1")
    k: Optional[StrictInt] = Field(None, description="number of items, an integer from 1 to serve_max_k (default "
                                                     "serve_default_k)")
    exclude_seen: StrictBool = Field(True, description="leave out the items of the user's history")


class Item(BaseModel):
    item: str
    score: float
    title: Optional[str]
    categories: List[str]


class Validation(BaseModel):
    """The validation metrics of the bundle's grid adapter nearest to the preference used."""

    preference: List[float]
    metrics: Dict[str, Optional[float]]


class RecommendResponse(BaseModel):
    user: Optional[str]
    items: List[Item]
    preference: List[float] = Field(description="the normalised preference the adapter was generated for")
    objectives: List[str]
    cached: bool = Field(description="whether the preference's adapter was already generated")
    latency_ms: float
    validation: Validation


class Objective(BaseModel):
    name: str
    metric: str
    bigger_is_better: bool


class GridPoint(BaseModel):
    preference: List[float]
    metrics: Dict[str, Optional[float]]


class ObjectivesResponse(BaseModel):
    objectives: List[Objective]
    grid: List[GridPoint]
    default_k: int
    max_k: int


class UsersResponse(BaseModel):
    users: List[str]
    total: int


class HealthResponse(BaseModel):
    status: str
    model: str
    dataset: str
    generator: str
    users: int
    items: int
    cached_adapters: int
