"""Task templates on the map (ids 500-599): addresses, hours, coordinates, nearby places, directions.

Distances and times come from `map_data.route`, the same function the directions page shows.
"""

from __future__ import annotations

import random

from sandbox.oracle import Click, Exit, Search, Select, T, Type
from sandbox.sites import map_data as md
from sandbox.taskgen import TaskSpec, Template, exact_match, must_include, sample, url, url_match

PER_TEMPLATE = 24
HOME = url("map", "/")
MODE_LABELS = {"car": "Car", "bike": "Bicycle", "foot": "Foot"}


def open_place(place: dict) -> list:
    return [
        Search(T(testid="search-input"), place["name"]),
        Click(T(testid=f"place-{place['id']}", text=place["name"])),
    ]


def fill_directions(a: dict, b: dict, mode: str) -> list:
    return [
        Click(T(testid="nav-directions", text="Directions")),
        Type(T(testid="from-input", placeholder="From"), a["name"]),
        Type(T(testid="to-input", placeholder="To"), b["name"]),
        Select(T(testid="mode-select"), MODE_LABELS[mode]),
        Click(T(testid="directions-go", text="Go")),
    ]


def _places(world: dict) -> list[dict]:
    places = world["map"]["places"]
    return [places[k] for k in sorted(places, key=int)]


def _findable(world: dict) -> list[dict]:
    """Places whose search by full name lists at most 20 results (one page)."""
    from sandbox.sites.map import find_places

    return [p for p in _places(world) if len(find_places(world["map"], p["name"])) <= 20]


def _inst_places(world: dict, rng: random.Random) -> list[dict]:
    return [
        {"place": p["name"], "_id": p["id"]} for p in sample(_findable(world), rng, PER_TEMPLATE)
    ]


def _place(world: dict, inst: dict, key: str = "_id") -> dict:
    return world["map"]["places"][str(inst[key])]


def _build_500(world: dict, inst: dict) -> TaskSpec:
    p = _place(world, inst)
    return TaskSpec(
        HOME,
        must_include([p["street"], p["town"], p["postcode"]]),
        [*open_place(p), Exit(md.address(p))],
    )


def _build_501(world: dict, inst: dict) -> TaskSpec:
    p = _place(world, inst)
    lat, lon = f"{p['lat']:.5f}", f"{p['lon']:.5f}"
    return TaskSpec(HOME, must_include([lat, lon]), [*open_place(p), Exit(f"{lat}, {lon}")])


def _inst_502(world: dict, rng: random.Random) -> list[dict]:
    out = _inst_places(world, rng)
    for inst in out:
        inst["day"] = md.DAY_NAMES[rng.choice(md.DAYS)]
    return out


def _build_502(world: dict, inst: dict) -> TaskSpec:
    p = _place(world, inst)
    day = next(d for d, name in md.DAY_NAMES.items() if name == inst["day"])
    hours = p["hours"][day]
    return TaskSpec(HOME, exact_match(hours), [*open_place(p), Exit(hours)])


def _inst_pairs(world: dict, rng: random.Random) -> list[dict]:
    places = _places(world)
    out = []
    for _ in range(PER_TEMPLATE):
        a, b = rng.sample(places, 2)
        mode = rng.choice(sorted(md.MODES))
        out.append(
            {
                "origin": a["name"],
                "destination": b["name"],
                "mode": MODE_LABELS[mode].lower(),
                "_a": a["id"],
                "_b": b["id"],
                "_mode": mode,
            }
        )
    return out


def _route(world: dict, inst: dict) -> dict:
    return md.route(_place(world, inst, "_a"), _place(world, inst, "_b"), inst["_mode"])


def _build_503(world: dict, inst: dict) -> TaskSpec:
    answer = f"{_route(world, inst)['minutes']} min"
    plan = [
        *fill_directions(_place(world, inst, "_a"), _place(world, inst, "_b"), inst["_mode"]),
        Exit(answer),
    ]
    return TaskSpec(HOME, exact_match(answer), plan)


def _build_504(world: dict, inst: dict) -> TaskSpec:
    answer = f"{_route(world, inst)['km']} km"
    plan = [
        *fill_directions(_place(world, inst, "_a"), _place(world, inst, "_b"), inst["_mode"]),
        Exit(answer),
    ]
    return TaskSpec(HOME, exact_match(answer), plan)


def _build_505(world: dict, inst: dict) -> TaskSpec:
    a, b = inst["_a"], inst["_b"]
    plan = [
        *fill_directions(_place(world, inst, "_a"), _place(world, inst, "_b"), inst["_mode"]),
        Exit(""),
    ]
    return TaskSpec(
        HOME, url_match(url("map", f"/directions?from={a}&to={b}&mode={inst['_mode']}")), plan
    )


def _build_506(world: dict, inst: dict) -> TaskSpec:
    p = _place(world, inst)
    return TaskSpec(HOME, url_match(url("map", f"/place/{p['id']}")), [*open_place(p), Exit("")])


def _nearest_unique(world: dict, place: dict, category: str) -> dict | None:
    from sandbox.sites.map import nearest

    two = nearest(world["map"], place, category, limit=2)
    if len(two) < 2 or two[0]["km"] == two[1]["km"]:
        return None
    return two[0]


def _inst_507(world: dict, rng: random.Random) -> list[dict]:
    categories = sorted(md.CATEGORIES)
    out = []
    for p in sample(_findable(world), rng, 200):
        category = rng.choice(categories)
        if category != p["category"] and _nearest_unique(world, p, category) is not None:
            out.append({"category": category, "place": p["name"], "_id": p["id"]})
        if len(out) >= PER_TEMPLATE:
            break
    return out


def _build_507(world: dict, inst: dict) -> TaskSpec:
    p = _place(world, inst)
    near = _nearest_unique(world, p, inst["category"])
    plan = [
        *open_place(p),
        Select(T(testid="near-category"), inst["category"]),
        Click(T(testid="near-apply", text="Show nearby")),
        Exit(near["name"]),
    ]
    return TaskSpec(HOME, exact_match(near["name"]), plan)


def _inst_508(world: dict, rng: random.Random) -> list[dict]:
    pairs = [(c, t) for c in sorted(md.CATEGORIES) for t in world["map"]["towns"]]
    return [{"category": c, "town": t} for c, t in sample(pairs, rng, PER_TEMPLATE)]


def _build_508(world: dict, inst: dict) -> TaskSpec:
    n = sum(
        1 for p in _places(world) if p["category"] == inst["category"] and p["town"] == inst["town"]
    )
    plan = [
        Click(T(testid=f"category-{inst['category']}")),
        Select(T(testid="filter-town"), inst["town"]),
        Click(T(testid="filter-apply", text="Search")),
        Exit(str(n)),
    ]
    return TaskSpec(HOME, exact_match(str(n)), plan)


def _build_509(world: dict, inst: dict) -> TaskSpec:
    p = _place(world, inst)
    return TaskSpec(HOME, must_include([p["phone"]]), [*open_place(p), Exit(p["phone"])])


def _t(tid, intent, kind, inst, build) -> Template:
    return Template(tid, ("map",), intent, kind, inst, build)


TEMPLATES: list[Template] = [
    _t(500, "What is the address of {{place}}?", "info", _inst_places, _build_500),
    _t(501, "What are the coordinates of {{place}}?", "info", _inst_places, _build_501),
    _t(502, "What are the opening hours of {{place}} on {{day}}?", "info", _inst_502, _build_502),
    _t(
        503,
        "How long does it take to travel by {{mode}} from {{origin}} to {{destination}}?",
        "info",
        _inst_pairs,
        _build_503,
    ),
    _t(
        504,
        "What is the route distance by {{mode}} from {{origin}} to {{destination}}?",
        "info",
        _inst_pairs,
        _build_504,
    ),
    _t(
        505,
        "Show me the directions by {{mode}} from {{origin}} to {{destination}}.",
        "nav",
        _inst_pairs,
        _build_505,
    ),
    _t(506, "Open the map page of {{place}}.", "nav", _inst_places, _build_506),
    _t(507, "Which {{category}} is closest to {{place}}?", "info", _inst_507, _build_507),
    _t(
        508,
        'How many places of the category "{{category}}" are there in {{town}}?',
        "info",
        _inst_508,
        _build_508,
    ),
    _t(509, "What is the phone number of {{place}}?", "info", _inst_places, _build_509),
]
