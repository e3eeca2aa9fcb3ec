"""The map over real HTTP: seed determinism, search, place pages, nearby places, directions."""

from __future__ import annotations

import functools
import json
import random

import httpx
import pytest

from sandbox.instance import seed_world
from sandbox.server import WorldThread, free_port_block
from sandbox.sites import map_data as md
from sandbox.sites.map import seed_state


@functools.cache
def seeded() -> dict:
    """The seed world (read-only in these tests), built once."""
    return seed_world(0)


@pytest.fixture(scope="module")
def world():
    with WorldThread(instances=1, port=free_port_block()) as w:
        yield w


@pytest.fixture
def osm(world):
    base = httpx.get(f"{world.url}/instances/0").json()["urls"]["map"]
    with httpx.Client(base_url=base) as client:
        yield client


def _place(name: str) -> dict:
    return next(p for p in seeded()["map"]["places"].values() if p["name"] == name)


def test_seed_is_deterministic_plain_data_with_a_few_hundred_places():
    a, b = seed_state(random.Random("0:map")), seed_state(random.Random("0:map"))
    assert a == b and json.loads(json.dumps(a)) == a
    assert seed_state(random.Random("1:map")) != a
    assert len(a["places"]) >= 250
    names = [p["name"] for p in a["places"].values()]
    assert len(names) == len(set(names))


def test_routes_are_symmetric_and_slower_on_foot():
    places = list(seeded()["map"]["places"].values())
    a, b = places[0], places[-1]
    assert md.route(a, b, "car")["km"] == md.route(b, a, "car")["km"]
    assert (
        md.route(a, b, "foot")["minutes"]
        > md.route(a, b, "bike")["minutes"]
        > md.route(a, b, "car")["minutes"]
    )


def test_search_filters_by_category_and_town_on_a_canonical_url(osm):
    r = osm.get("/search", params={"q": "", "category": "cafe", "town": "Ashford"})
    assert r.status_code == 303 and r.headers["location"] == "/search?category=cafe&town=Ashford"
    page = osm.get(r.headers["location"]).text
    expected = sum(
        1
        for p in seeded()["map"]["places"].values()
        if p["category"] == "cafe" and p["town"] == "Ashford"
    )
    assert f'data-testid="result-count">{expected} results<' in page


def test_a_place_page_shows_address_hours_and_coordinates(osm):
    place = next(iter(seeded()["map"]["places"].values()))
    page = osm.get(f"/place/{place['id']}").text
    assert md.address(place) in page
    assert f"{place['lat']:.5f}, {place['lon']:.5f}" in page
    assert f'data-testid="hours-Sun">{place["hours"]["Sun"]}<' in page
    assert osm.get("/place/999999").status_code == 404


def test_nearby_filtered_by_category_lists_the_closest_first(osm):
    place = next(iter(seeded()["map"]["places"].values()))
    page = osm.get(f"/place/{place['id']}", params={"near": "pharmacy"}).text
    others = [p for p in seeded()["map"]["places"].values() if p["category"] == "pharmacy"]
    closest = min(others, key=lambda p: md.km_between(place, p))
    assert f'data-testid="nearby-0">{closest["name"]}<' in page


def test_directions_by_name_redirect_to_ids_and_show_distance_and_time(osm):
    a, b = list(seeded()["map"]["places"].values())[:2]
    r = osm.get("/directions", params={"from_q": a["name"], "to_q": b["name"], "mode": "bike"})
    assert (
        r.status_code == 303
        and r.headers["location"] == f"/directions?from={a['id']}&to={b['id']}&mode=bike"
    )
    page = osm.get(r.headers["location"]).text
    route = md.route(a, b, "bike")
    assert f'data-testid="route-distance">{route["km"]} km<' in page
    assert f'data-testid="route-duration">{route["minutes"]} min<' in page


def test_directions_to_an_unknown_place_explain_the_problem(osm):
    r = osm.get("/directions", params={"from_q": "Nowhere At All", "to_q": "", "mode": "car"})
    assert r.status_code == 400 and 'data-testid="form-error"' in r.text
    assert (
        osm.get("/directions", params={"from": "x", "to": "y", "mode": "rocket"}).status_code == 200
    )


def test_typical_pages_stay_compact(osm):
    for path in ("/", "/search?category=cafe", "/place/1", "/directions?from=1&to=2&mode=car"):
        assert len(osm.get(path).text) < 14_000, path
