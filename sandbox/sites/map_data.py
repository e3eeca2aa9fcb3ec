"""Seed data for the map: named places in a synthetic valley, with addresses, hours and coordinates.

Routing is computed, not stored: straight-line distance times a per-mode detour factor.
"""

import math
import random

AGENT_USER = "mapwalker"
REGION = "Larkspur Valley"
TOWNS = [
    ("Ashford", 47.512, 8.214),
    ("Brookmere", 47.561, 8.302),
    ("Calder Bridge", 47.478, 8.351),
    ("Dunmore", 47.603, 8.198),
    ("Elmstead", 47.455, 8.251),
    ("Fairhaven", 47.534, 8.412),
    ("Glenrock", 47.622, 8.367),
    ("Hollins", 47.497, 8.148),
]
STREETS = [
    "High Street",
    "Mill Lane",
    "Station Road",
    "Church Street",
    "Orchard Way",
    "River Walk",
    "Market Square",
    "Hill Road",
    "Park Avenue",
    "Quarry Lane",
    "Bridge Street",
    "Meadow Close",
]
CATEGORIES = {
    "cafe": ["Bean There", "The Daily Grind", "Copper Kettle", "Morning Ritual", "Steam & Co"],
    "restaurant": [
        "The Olive Tree",
        "Harbour Kitchen",
        "Saffron House",
        "The Hungry Fox",
        "Golden Wok",
    ],
    "pharmacy": ["Valley Pharmacy", "Wellcare Chemist", "Green Cross Pharmacy"],
    "supermarket": ["FreshMart", "Valley Foods", "Corner Grocer", "PriceWise"],
    "library": ["Public Library", "Reading Room"],
    "museum": ["Heritage Museum", "Museum of Mills", "Railway Museum"],
    "park": ["Memorial Park", "Riverside Park", "Oak Meadow", "Jubilee Gardens"],
    "school": ["Primary School", "Academy", "Grammar School"],
    "hospital": ["General Hospital", "Community Clinic"],
    "hotel": ["The Grand Hotel", "Riverside Inn", "Willow Lodge", "The Station Hotel"],
    "bakery": ["Crumbs", "The Rolling Pin", "Rise & Shine Bakery"],
    "bank": ["Valley Savings", "Northern Bank", "Union Credit"],
    "post office": ["Post Office"],
    "fuel": ["QuickFuel", "Valley Petrol", "Roadstar"],
    "bar": ["The Red Lion", "The Crown", "The Fox & Hound", "Barrel House"],
}
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
DAY_NAMES = {
    "Mon": "Monday",
    "Tue": "Tuesday",
    "Wed": "Wednesday",
    "Thu": "Thursday",
    "Fri": "Friday",
    "Sat": "Saturday",
    "Sun": "Sunday",
}
MODES = {"car": (1.35, 45.0), "bike": (1.25, 16.0), "foot": (1.2, 4.8)}  # detour factor, km/h
MODE_WORDS = {"car": "drive", "bike": "cycle", "foot": "walk"}


def _hours(rng: random.Random, category: str) -> dict:
    if category in ("park",):
        return {d: "06:00-22:00" for d in DAYS}
    if category in ("hospital", "fuel"):
        return {d: "00:00-24:00" for d in DAYS}
    open_h = rng.choice([6, 7, 8, 9, 10, 11])
    close_h = rng.choice([16, 17, 18, 19, 20, 22, 23])
    hours = {d: f"{open_h:02d}:00-{close_h:02d}:00" for d in DAYS[:5]}
    hours["Sat"] = rng.choice([f"{open_h + 1:02d}:00-{close_h - 2:02d}:00", "closed", hours["Fri"]])
    hours["Sun"] = rng.choice(["closed", "closed", f"10:00-{min(close_h, 16):02d}:00"])
    return hours


def seed_state(rng: random.Random) -> dict:
    """Build the map's places from `rng` (plain data only)."""
    places: dict[str, dict] = {}
    names_seen: set[str] = set()
    pid = 0
    for town, lat0, lon0 in TOWNS:
        for category, bases in CATEGORIES.items():
            for base in rng.sample(bases, min(len(bases), rng.randint(2, 4))):
                name = (
                    f"{town} {base}"
                    if category in ("library", "museum", "school", "hospital", "post office")
                    else base
                )
                if name in names_seen:
                    name = f"{base} {town}"
                if name in names_seen:
                    continue
                names_seen.add(name)
                pid += 1
                places[str(pid)] = {
                    "id": pid,
                    "name": name,
                    "category": category,
                    "street": f"{rng.randint(1, 120)} {rng.choice(STREETS)}",
                    "town": town,
                    "postcode": f"LV{TOWNS.index((town, lat0, lon0)) + 1} {rng.randint(1, 9)}{rng.choice('ABDEFGHJ')}{rng.choice('LNPQRSTW')}",
                    "lat": round(lat0 + rng.uniform(-0.018, 0.018), 5),
                    "lon": round(lon0 + rng.uniform(-0.025, 0.025), 5),
                    "hours": _hours(rng, category),
                    "phone": f"+41 {rng.randint(20, 99)} {rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
                }
    return {
        "places": places,
        "towns": [t for t, _, _ in TOWNS],
        "users": {
            AGENT_USER: {"username": AGENT_USER, "name": "Map Walker", "password": "pw-mapwalker"}
        },
    }


def km_between(a: dict, b: dict) -> float:
    """Great-circle distance in km (haversine)."""
    r = 6371.0
    p1, p2 = math.radians(a["lat"]), math.radians(b["lat"])
    dp, dl = p2 - p1, math.radians(b["lon"] - a["lon"])
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(h))


def route(a: dict, b: dict, mode: str) -> dict:
    """Distance (km, one decimal) and duration (whole minutes, at least 1) by travel mode."""
    factor, speed = MODES[mode]
    km = round(km_between(a, b) * factor, 1)
    minutes = max(1, round(km / speed * 60))
    return {"km": km, "minutes": minutes}


def address(place: dict) -> str:
    return f"{place['street']}, {place['town']} {place['postcode']}"
