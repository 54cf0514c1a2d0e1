"""The OpenAPI document says every answer an operation can give, and 405s say the truth.

FastAPI documents a route's success and its 422. The refusals that come from the shared
machinery — an unreadable or oversized body, a missing planner, an id that does not exist, a
change the domain refuses, a database too busy — are the same for every route that can meet
them, so they are added here from what each route is (its methods, path parameters, body and
dependencies) rather than repeated by hand on forty routes. A route that documents a code
itself keeps its own wording. The contract check (`tests/contract.py`) holds the document to
what the live server answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.exception_handlers import http_exception_handler
from fastapi.params import Form
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from api.deps import current_admin, current_planner
from api.schemas import Invalid, Refusal

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _refusal(description: str) -> dict[str, Any]:
    return {"model": Refusal, "description": description}


BAD_BODY = _refusal("The body is not JSON (or not the form) this operation reads.")
NOT_SIGNED_IN = _refusal("No planner signed in: send a bearer token or an API key.")
NOT_FOUND = _refusal(
    "No such id in the regions this account plans, or a link or token that is not (or no "
    "longer) valid."
)
FORBIDDEN = _refusal("Only an administrator may do this.")
REFUSED = _refusal(
    "The domain refuses the change as things stand: a window that went, a job already done, "
    "a plan changed meanwhile, a change that would lose a promise. Nothing was written."
)
TOO_LARGE = _refusal("The body is larger than this operation takes.")
BUSY = _refusal("The database stayed busy too long; nothing was written. Retry after a moment.")
INVALID = {"model": Invalid, "description": "A field is missing or not acceptable."}


def document_refusals(*routers: APIRouter) -> None:
    """Add the shared refusals to every route of these routers (before they are included:
    an included router's routes are read from the router itself)."""
    for route in _api_routes(routers):
        if route.include_in_schema:
            for code, response in _refusals_of(route).items():
                route.responses.setdefault(code, _as_json(response, route))


def _api_routes(routers: Iterable[APIRouter]) -> Iterator[APIRoute]:
    for router in routers:
        yield from (route for route in router.routes if isinstance(route, APIRoute))


def _as_json(response: dict[str, Any], route: APIRoute) -> dict[str, Any]:
    """FastAPI files a `model` response under the route's own media type; a calendar route's
    refusals are JSON all the same, so theirs name the schema themselves."""
    response_class = route.response_class
    media_type = getattr(response_class, "media_type", None)
    if isinstance(response_class, DefaultPlaceholder) or media_type == "application/json":
        return response
    schema = {"$ref": f"#/components/schemas/{response['model'].__name__}"}
    return {
        "description": response["description"],
        "content": {"application/json": {"schema": schema}},
    }


def _refusals_of(route: APIRoute) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {422: INVALID, 503: BUSY}
    if route.body_field is not None:
        found |= {400: BAD_BODY, 413: TOO_LARGE}
    calls = {d.call for d in _dependencies(route.dependant)}
    if current_planner in calls:
        found[401] = NOT_SIGNED_IN
    if current_admin in calls:
        found[403] = FORBIDDEN
    if route.dependant.path_params or any(name.endswith("_id") for name in _inputs(route)):
        found[404] = NOT_FOUND
    if (route.methods or set()) & CHANGES:
        found[409] = REFUSED
    return found


def _inputs(route: APIRoute) -> Iterator[str]:
    """The names a request fills: query parameters and the fields of a JSON body (a form's
    are credentials: OAuth2's `client_id` names no row)."""
    yield from (param.name for param in route.dependant.query_params)
    if route.body_field is not None and not isinstance(route.body_field.field_info, Form):
        model = route.body_field.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            yield from model.model_fields


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def install_allow(app: FastAPI, *routers: APIRouter) -> None:
    """A 405 lists every method the path has. Starlette names only the methods of the first
    route whose path matched, so `/appointments/{id}` (PUT and DELETE on two routes)
    answered a GET with `Allow: PUT`."""
    routes = list(_api_routes(routers))

    async def handle(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if error.status_code == 405:
            methods: set[str] = set()
            for route in routes:
                match, _ = route.matches({**request.scope, "method": "GET"})
                if match is not Match.NONE:
                    methods |= route.methods or set()
            if methods:
                error.headers = {**(error.headers or {}), "Allow": ", ".join(sorted(methods))}
        return await http_exception_handler(request, error)

    app.add_exception_handler(StarletteHTTPException, handle)


def link(method: str, path: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link from an answer to the operation it makes possible (clients and the
    contract check's stateful phase follow them: book, then move, cancel, fetch the invite)."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return {"operationRef": f"#/paths/{pointer}/{method.lower()}", "parameters": parameters}
