"""Cross-site templates of W1 (ids 600-649): the store with the forum and the map, reached through
the header's site links (the agent has no "go to URL" action)."""

from __future__ import annotations

import random

from sandbox.oracle import Click, Exit, T
from sandbox.sites import store_data as sd
from sandbox.taskgen import TaskSpec, Template, must_include, program_html, sample, url
from sandbox.tasks import map as map_tasks
from sandbox.tasks import shopping as shop_tasks
from sandbox.tasks import shopping_admin as admin_tasks
from sandbox.tasks.cross_w2 import latest_post_checks, submit_post

CAP = 24
FORUMS = ("books", "deals", "localnews", "diy")
DAYS = {"Mon": "Monday", "Sat": "Saturday", "Sun": "Sunday"}
LABELS = {"reddit": "Postmill", "map": "Map", "shopping": "Shop", "shopping_admin": "Shop admin"}


def go_to(site: str) -> Click:
    return Click(T(testid=f"site-{site}"))


def forums(world: dict) -> list[str]:
    return [f for f in FORUMS if f in world["reddit"]["forums"]] or sorted(
        world["reddit"]["forums"]
    )[:3]


# 601: a product's price shared on the forum ----------------------------------------------------
def inst_601(world: dict, rng: random.Random) -> list[dict]:
    out = []
    for inst in shop_tasks.product_inst(world, rng)[:CAP]:
        out.append({**inst, "forum": rng.choice(forums(world))})
    return out


def build_601(world: dict, inst: dict) -> TaskSpec:
    p = sd.product(world["shopping"], inst["_pid"])
    title = f"{p['name']} - {sd.money(p['price'])}"
    plan = [
        *shop_tasks.open_product(p),
        go_to("reddit"),
        *submit_post(inst["forum"], title),
        Exit(""),
    ]
    ev = program_html(latest_post_checks(inst["forum"], title))
    return TaskSpec(url("shopping", "/"), ev, plan)


# 602: the best seller of a period announced on the forum ---------------------------------------
def inst_602(world: dict, rng: random.Random) -> list[dict]:
    periods = admin_tasks.inst_top_seller(world, rng)
    return [{**p, "forum": rng.choice(forums(world))} for p in sample(periods, rng, CAP)]


def build_602(world: dict, inst: dict) -> TaskSpec:
    period = inst["_year"] + (f"-{inst['_month']}" if inst["_month"] else "")
    name = sd.bestsellers(world["shopping"], period)[0]["name"]
    title = f"Bestseller of {inst['period']}: {name}"
    plan = [*admin_tasks._report_plan(inst), go_to("reddit"), *submit_post(inst["forum"], title)]
    plan.append(Exit(""))
    ev = program_html(latest_post_checks(inst["forum"], title))
    return TaskSpec(url("shopping_admin", "/"), ev, plan)


# 603: a place's opening hours and a product's price in one answer ------------------------------
def inst_603(world: dict, rng: random.Random) -> list[dict]:
    places = sample(map_tasks._findable(world), rng, CAP)
    products = shop_tasks.product_inst(world, rng)
    out = []
    for place, product in zip(places, products, strict=False):
        day = rng.choice(sorted(DAYS))
        out.append({"place": place["name"], "day": DAYS[day], "product": product["product"],
                    "_id": place["id"], "_day": day, "_pid": product["_pid"]})  # fmt: skip
    return out


def build_603(world: dict, inst: dict) -> TaskSpec:
    place = world["map"]["places"][str(inst["_id"])]
    hours = place["hours"][inst["_day"]]
    p = sd.product(world["shopping"], inst["_pid"])
    price = sd.money(p["price"])
    plan = [
        *shop_tasks.open_product(p),
        go_to("map"),
        *map_tasks.open_place(place),
        Exit(f"{place['name']} is open {hours} on {inst['day']}; {p['name']} costs {price}."),
    ]
    return TaskSpec(url("shopping", "/"), must_include([hours, price]), plan)


# 604: a place's address pasted into the store's address book -----------------------------------
def inst_604(world: dict, rng: random.Random) -> list[dict]:
    places = sample(map_tasks._findable(world), rng, CAP)
    return [{"place": p["name"], "_id": p["id"]} for p in places]


def build_604(world: dict, inst: dict) -> TaskSpec:
    from sandbox.oracle import SAVED, Type
    from sandbox.taskgen import check, testid_text

    place = world["map"]["places"][str(inst["_id"])]
    plan = [
        go_to("map"),
        *map_tasks.open_place(place),
        go_to("shopping"),
        Click(T(testid="nav-account")),
        Click(T(testid="edit-address")),
        Type(T(testid="address-street"), place["street"]),
        Type(T(testid="address-city"), place["town"]),
        Type(T(testid="address-state"), "LV"),
        Type(T(testid="address-zip"), place["postcode"]),
        Click(T(testid="save-address")),
        SAVED,
    ]
    expected = f"{place['street']}, {place['town']}, LV {place['postcode']}"
    ev = program_html(
        [check(url("shopping", "/account"), testid_text("default-address"), exact_match=expected)]
    )
    return TaskSpec(url("shopping", "/"), ev, plan)


TEMPLATES = [
    Template(601, ("shopping", "reddit"),
             "Share {{product}} on the {{forum}} forum: create a post whose title is the product "
             'name followed by " - " and its price in the shop (like "Name - $9.99").',
             "state", inst_601, build_601),
    Template(602, ("shopping_admin", "reddit"),
             'Post the top-1 best-selling product of {{period}} to the {{forum}} forum, titled '
             '"Bestseller of {{period}}: " followed by the product name.',
             "state", inst_602, build_602),
    Template(603, ("shopping", "map"),
             "When is {{place}} open on {{day}}, and what does {{product}} cost in the shop?",
             "info", inst_603, build_603),
    Template(604, ("map", "shopping"),
             "Make the address of {{place}} from the map my default shipping address in the shop "
             '(street, town as the city, "LV" as the state, and the postcode as the zip code).',
             "state", inst_604, build_604),
]  # fmt: skip
