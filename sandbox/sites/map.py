"""The map (OpenStreetMap's image): search places, place details, nearby places, directions by mode.

Directions URLs are canonical (`/directions?from=<id>&to=<id>&mode=<mode>`) so navigation tasks can
match them exactly.
"""

from __future__ import annotations

import random
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.sites import map_data as data
from sandbox.web import (
    auth_routes,
    ctx,
    int_param,
    not_found,
    page_links,
    paginate,
    redirect,
    render,
)

SITE = "map"
AGENT_USER = data.AGENT_USER
SEARCH_FIELDS = ["q", "category", "town"]


def seed_state(rng: random.Random) -> dict:
    return data.seed_state(rng)


def _categories(state: dict) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for p in state["places"].values():
        counts[p["category"]] = counts.get(p["category"], 0) + 1
    return sorted(counts.items())


async def home(request: Request) -> Response:
    state = ctx(request).state
    context = {"categories": _categories(state), "towns": state["towns"], "region": data.REGION}
    return render(request, "map/home.html", context)


def find_places(state: dict, q: str, category: str = "", town: str = "") -> list[dict]:
    """Places whose name, category or town contains `q`, filtered by category and town, by name."""
    q = q.lower()
    return sorted(
        (
            p
            for p in state["places"].values()
            if (not q or q in p["name"].lower() or q in p["category"] or q in p["town"].lower())
            and (not category or p["category"] == category)
            and (not town or p["town"] == town)
        ),
        key=lambda p: (p["name"], p["id"]),
    )


async def search(request: Request) -> Response:
    state = ctx(request).state
    qp = request.query_params
    raw = {k: qp.get(k, "").strip() for k in SEARCH_FIELDS}
    canonical = {k: v for k, v in raw.items() if v}
    if [k for k in qp.keys() if k != "page"] != list(canonical):
        query = {**canonical, **({"page": qp["page"]} if qp.get("page") else {})}
        return redirect("/search?" + urlencode(query))
    page = paginate(find_places(state, **raw), int_param(request, "page"))
    context = {
        "page": page,
        "filters": raw,
        "categories": _categories(state),
        "towns": state["towns"],
        **page_links("/search", canonical, page),
    }
    return render(request, "map/search.html", context)


def nearest(state: dict, place: dict, category: str = "", limit: int = 5) -> list[dict]:
    """The closest other places (optionally of one category), with straight-line km."""
    others = [
        {**p, "km": round(data.km_between(place, p), 2)}
        for p in state["places"].values()
        if p["id"] != place["id"] and (not category or p["category"] == category)
    ]
    return sorted(others, key=lambda p: (p["km"], p["id"]))[:limit]


async def place_page(request: Request) -> Response:
    state = ctx(request).state
    place = state["places"].get(str(request.path_params["place_id"]))
    if place is None:
        return not_found(request, "Place")
    near = request.query_params.get("near", "")
    near = near if near in dict(_categories(state)) else ""
    context = {
        "place": place,
        "address": data.address(place),
        "days": data.DAYS,
        "day_names": data.DAY_NAMES,
        "near": near,
        "nearby": nearest(state, place, near),
        "categories": _categories(state),
    }
    return render(request, "map/place.html", context)


def resolve(state: dict, text: str) -> dict | None:
    """A place by id, exact name (case-insensitive), or a name fragment that matches only one place."""
    text = text.strip()
    if text.isdigit():
        return state["places"].get(text)
    exact = [p for p in state["places"].values() if p["name"].lower() == text.lower()]
    if len(exact) == 1:
        return exact[0]
    partial = [p for p in state["places"].values() if text and text.lower() in p["name"].lower()]
    return partial[0] if len(partial) == 1 else None


async def directions(request: Request) -> Response:
    state = ctx(request).state
    qp = request.query_params
    mode = qp.get("mode", "car")
    mode = mode if mode in data.MODES else "car"
    if "from_q" in qp or "to_q" in qp:
        start, end = resolve(state, qp.get("from_q", "")), resolve(state, qp.get("to_q", ""))
        if start is None or end is None:
            missing = qp.get("from_q", "") if start is None else qp.get("to_q", "")
            context = {
                "start": start,
                "end": end,
                "mode": mode,
                "modes": data.MODES,
                "route": None,
                "from_q": qp.get("from_q", ""),
                "to_q": qp.get("to_q", ""),
                "error": f'No single place matches "{missing}". Use the full name.',
            }
            return render(request, "map/directions.html", context, status=400)
        return redirect(
            "/directions?" + urlencode({"from": start["id"], "to": end["id"], "mode": mode})
        )
    start = state["places"].get(qp.get("from", ""))
    end = state["places"].get(qp.get("to", ""))
    route = data.route(start, end, mode) if start and end else None
    context = {
        "start": start,
        "end": end,
        "mode": mode,
        "modes": data.MODES,
        "mode_words": data.MODE_WORDS,
        "route": route,
        "from_q": start["name"] if start else "",
        "to_q": end["name"] if end else "",
        "error": None,
    }
    return render(request, "map/directions.html", context)


def routes() -> list[Route]:
    return [
        Route("/", home),
        Route("/search", search),
        Route("/place/{place_id:int}", place_page),
        Route("/directions", directions),
        *auth_routes("map/login.html"),
    ]
