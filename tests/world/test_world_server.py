"""The control API, resets after every kind of store mutation, isolation, and the web helpers."""

from __future__ import annotations

import pickle
import threading

import httpx
import pytest

from sandbox.client import WorldClient, WorldError
from sandbox.sites import store_data as sd
from sandbox.web import agent_session_id, paginate

AGENT_SHOP = {"sid_shopping": agent_session_id("shopping")}
AGENT_ADMIN = {"sid_shopping_admin": agent_session_id("shopping_admin")}


def seed(world) -> dict:
    return pickle.loads(world.world.blob)


def live(world, index: int = 0) -> dict:
    return world.world.instances[index].world


def site(world, name: str, index: int = 0) -> str:
    return WorldClient(world.url).site_urls(index)[name]


def test_the_control_api_describes_every_instance(world):
    client = WorldClient(world.url)
    assert client.healthy() and client.instances() == 2
    urls = client.site_urls(1)
    assert urls["shopping"].endswith(str(world.world.port + 20))
    assert urls["shopping_admin"].endswith(str(world.world.port + 21))
    assert sorted(client.allowed_origins(1)) == sorted(urls.values())
    names = {c["name"] for c in client.storage_state(1)["cookies"]}
    assert {"sid_shopping", "sid_shopping_admin"} <= names


def test_unknown_instances_are_a_clear_error(world):
    assert httpx.get(world.url + "/instances/7").status_code == 404
    assert httpx.post(world.url + "/instances/x/reset").status_code == 404
    with pytest.raises(WorldError):
        WorldClient(world.url).reset(9)


def test_an_unreachable_world_is_a_clear_error():
    client = WorldClient("http://127.0.0.1:9")
    assert not client.healthy()
    with pytest.raises(WorldError, match="unreachable"):
        client.instances()


def _first_pending(store: dict) -> dict:
    return next(
        o for o in store["orders"] if o["customer"] == sd.AGENT_EMAIL and o["status"] == "pending"
    )


def _pending_review(store: dict) -> dict:
    return next(r for r in store["reviews"] if r["status"] == "pending")


MUTATIONS = {
    "add to cart": ("shopping", "/product/3/cart", {"qty": "2"}),
    "update the cart": ("shopping", "/cart/update", "cart"),
    "remove from the cart": ("shopping", "/cart/remove", "cart"),
    "check out": ("shopping", "/checkout", {"street": "1 Elm Ct", "city": "Boise", "state": "ID",
                                           "zip": "83702", "shipping_method": "Flat Rate"}),
    "add to the wish list": ("shopping", "/product/5/wishlist", {}),
    "remove from the wish list": ("shopping", "/product/{wish}/wishlist/remove", {}),
    "write a review": ("shopping", "/product/4/review", {"rating": "4", "title": "Nice", "text": "Good."}),
    "cancel an order": ("shopping", "/account/orders/{pending}/cancel", {}),
    "edit the account": ("shopping", "/account/edit", {"name": "Grace H", "phone": "555-000-1111"}),
    "edit the address": ("shopping", "/account/address", {"street": "2 Mill Ln", "city": "Austin",
                                                         "state": "TX", "zip": "78701"}),
    "sign in": ("shopping", "/login", {"username": sd.AGENT_EMAIL, "password": "HarborLane2024!"}),
    "change an order status": ("shopping_admin", "/orders/1001/status", {"status": "closed"}),
    "comment on an order": ("shopping_admin", "/orders/1001/comment", {"comment": "Called"}),
    "edit a product": ("shopping_admin", "/products/7/edit", {"name": "Renamed", "price": "1.00",
                                                             "qty": "3", "status": "disabled"}),
    "change a customer group": ("shopping_admin", "/customers/2", {"group": "VIP"}),
    "approve a review": ("shopping_admin", "/reviews/{review}/approve", {}),
    "reject a review": ("shopping_admin", "/reviews/{review}/reject", {}),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(MUTATIONS))
def test_a_reset_restores_the_seed_after_each_kind_of_mutation(world, kind):
    name, path, data = MUTATIONS[kind]
    store = seed(world)["shopping"]
    cart_pid = store["carts"][sd.AGENT_EMAIL][0]["product_id"]
    if data == "cart":
        data = {"product_id": str(cart_pid), "qty": "5"}
    path = path.format(
        wish=store["wishlists"][sd.AGENT_EMAIL][0],
        pending=_first_pending(store)["id"],
        review=_pending_review(store)["id"],
    )
    client = WorldClient(world.url)
    client.reset(0)
    cookies = AGENT_SHOP if name == "shopping" else AGENT_ADMIN
    response = httpx.post(site(world, name) + path, data=data, cookies=cookies)
    assert response.status_code == 303, response.text[:300]
    assert live(world) != seed(world), f"{kind} changed nothing"
    client.reset(0)
    assert live(world) == seed(world)


def test_a_reset_restores_what_the_pages_show(world):
    client = WorldClient(world.url)
    shop = site(world, "shopping")
    before = httpx.get(shop + "/account/wishlist", cookies=AGENT_SHOP).text
    httpx.post(shop + "/product/9/wishlist", cookies=AGENT_SHOP)
    assert httpx.get(shop + "/account/wishlist", cookies=AGENT_SHOP).text != before
    client.reset(0)
    assert httpx.get(shop + "/account/wishlist", cookies=AGENT_SHOP).text == before


def test_two_instances_mutated_in_parallel_do_not_see_each_other(world):
    client = WorldClient(world.url)
    client.reset(0)
    client.reset(1)
    products = {0: [10, 11, 12, 13, 14], 1: [20, 21, 22, 23, 24]}

    def shop(index: int) -> None:
        base = site(world, "shopping", index)
        with httpx.Client(cookies=AGENT_SHOP) as http:
            for pid in products[index]:
                assert http.post(f"{base}/product/{pid}/wishlist").status_code == 303

    threads = [threading.Thread(target=shop, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seeded = seed(world)["shopping"]["wishlists"][sd.AGENT_EMAIL]
    for index in (0, 1):
        mine = live(world, index)["shopping"]["wishlists"][sd.AGENT_EMAIL]
        assert mine == seeded + products[index]
    client.reset(0)
    client.reset(1)


def test_pages_need_a_login_and_come_back_after_it(world):
    shop = site(world, "shopping")
    response = httpx.get(shop + "/account/orders")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Faccount%2Forders"
    bad = httpx.post(shop + "/login", data={"username": sd.AGENT_EMAIL, "password": "nope"})
    assert bad.status_code == 401 and "Invalid login" in bad.text
    good = httpx.post(
        shop + "/login",
        data={"username": sd.AGENT_EMAIL, "password": "HarborLane2024!", "next": "/account/orders"},
    )
    assert good.status_code == 303 and good.headers["location"] == "/account/orders"
    page = httpx.get(
        shop + "/account/orders", cookies={"sid_shopping": good.cookies["sid_shopping"]}
    )
    assert page.status_code == 200 and "My Orders" in page.text
    WorldClient(world.url).reset(0)


def test_a_flash_is_shown_once(world):
    shop = site(world, "shopping")
    with httpx.Client(cookies=AGENT_SHOP, follow_redirects=True) as http:
        first = http.post(shop + "/product/6/wishlist")
        assert 'data-testid="flash"' in first.text and "wish list" in first.text
        assert 'data-testid="flash"' not in http.get(shop + "/account/wishlist").text
    WorldClient(world.url).reset(0)


def test_bad_input_gives_a_message_not_an_error(world):
    shop = site(world, "shopping")
    with httpx.Client(cookies=AGENT_SHOP, follow_redirects=True) as http:
        assert (
            "quantity from 1 to 99"
            in http.post(shop + "/product/3/cart", data={"qty": "lots"}).text
        )
        assert "choose a color" in http.post(shop + "/product/151/cart", data={"qty": "1"}).text
        assert http.get(shop + "/product/99999").status_code == 404
        assert http.get(shop + "/product/abc").status_code == 404
        assert http.get(shop + "/category/kitchen?page=zzz").status_code == 200
    with httpx.Client(cookies=AGENT_ADMIN, follow_redirects=True) as http:
        admin = site(world, "shopping_admin")
        edit = http.post(admin + "/products/7/edit", data={"price": "free"})
        assert "must be numbers" in edit.text
    assert live(world) == seed(world)


def test_pages_stay_compact(world):
    shop, admin = site(world, "shopping"), site(world, "shopping_admin")
    for url in (shop + "/category/clothing", shop + "/account/orders", admin + "/orders",
                admin + "/products", admin + "/reviews"):  # fmt: skip
        cookies = AGENT_SHOP if url.startswith(shop) else AGENT_ADMIN
        assert len(httpx.get(url, cookies=cookies).text) < 14_000, url


def test_paginate_clamps_the_page_and_reports_neighbours():
    page = paginate(list(range(45)), 3)
    assert page["items"] == list(range(40, 45)) and page["pages"] == 3
    assert page["has_prev"] and not page["has_next"]
    assert paginate(list(range(45)), 99)["page"] == 3
    assert paginate([], 0) == {"items": [], "page": 1, "pages": 1, "total": 0,
                               "has_prev": False, "has_next": False}  # fmt: skip
