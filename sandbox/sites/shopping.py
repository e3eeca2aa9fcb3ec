"""`shopping`: the store front (categories, search, product pages, cart, checkout, account).

Its state is the store shared with `shopping_admin` (see `store_data`).
"""

from __future__ import annotations

import random

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.sites import store_data as sd
from sandbox.web import (
    auth_routes,
    ctx,
    current_user,
    form,
    int_param,
    login_required,
    not_found,
    page_links,
    paginate,
    redirect,
    render,
)

SITE = "shopping"
AGENT_USER = sd.AGENT_EMAIL
SORTS = {
    "name": ("Name: A to Z", lambda p: p["name"]),
    "price_asc": ("Price: Low to High", lambda p: (p["price"], p["name"])),
    "price_desc": ("Price: High to Low", lambda p: (-p["price"], p["name"])),
}


def seed_state(rng: random.Random) -> dict:
    return sd.store_seed(rng)


def _page(request: Request, template: str, context: dict, status: int = 200) -> Response:
    return render(request, f"shopping/{template}", context, status=status)


def _pid(request: Request) -> dict | None:
    try:
        return sd.product(ctx(request).state, int(request.path_params["pid"]))
    except ValueError:
        return None


async def home(request: Request) -> Response:
    store = ctx(request).state
    featured = [p for p in store["products"] if p["status"] == "enabled"][::37][:8]
    return _page(request, "home.html", {"featured": featured})


def _listing(request: Request, products: list[dict], base: str, params: dict) -> dict:
    sort = request.query_params.get("sort", "name")
    if sort not in SORTS:
        sort = "name"
    products = sorted(products, key=SORTS[sort][1])
    page = paginate(products, int_param(request, "page"), per_page=12)
    store = ctx(request).state
    ratings = {p["id"]: sd.rating(store, p["id"]) for p in page["items"]}
    return {
        "page": page,
        "sort": sort,
        "sorts": {k: v[0] for k, v in SORTS.items()},
        "ratings": ratings,
        **page_links(base, {**params, "sort": sort if sort != "name" else None}, page),
    }


async def category(request: Request) -> Response:
    store = ctx(request).state
    slug = request.path_params["slug"]
    cat = next((c for c in store["categories"] if c["slug"] == slug), None)
    if cat is None:
        return not_found(request, "Category")
    products = [p for p in store["products"] if p["category"] == slug and p["status"] == "enabled"]
    listing = _listing(request, products, f"/category/{slug}", {})
    return _page(request, "listing.html", {"title": cat["name"], "category": cat, **listing})


async def search(request: Request) -> Response:
    query = request.query_params.get("q", "").strip()
    products = sd.search_products(ctx(request).state, query) if query else []
    listing = _listing(request, products, "/search", {"q": query})
    title = f"Search results for '{query}'" if query else "Search"
    return _page(request, "listing.html", {"title": title, "query": query, **listing})


async def product(request: Request) -> Response:
    p = _pid(request)
    if p is None or p["status"] != "enabled":
        return not_found(request, "Product")
    store = ctx(request).state
    reviews = sd.approved_reviews(store, p["id"])
    avg, count = sd.rating(store, p["id"])
    cat = next(c for c in store["categories"] if c["slug"] == p["category"])
    context = {"p": p, "reviews": reviews, "avg": avg, "count": count, "category": cat}
    return _page(request, "product.html", context)


async def add_to_cart(request: Request) -> Response:
    p = _pid(request)
    if p is None or p["status"] != "enabled":
        return not_found(request, "Product")
    if (deny := login_required(request)) is not None:
        return deny
    data = await form(request)
    try:
        qty = int(data.get("qty", "1"))
    except ValueError:
        qty = 0
    if qty < 1 or qty > 99:
        return redirect(f"/product/{p['id']}", flash="Please enter a quantity from 1 to 99.")
    options = {}
    for name, values in p["options"].items():
        chosen = data.get(f"opt_{name}", "")
        if chosen not in values:
            return redirect(f"/product/{p['id']}", flash=f"Please choose a {name.lower()}.")
        options[name] = chosen
    cart = ctx(request).state["carts"].setdefault(current_user(request)["email"], [])
    line = next((item for item in cart if item["product_id"] == p["id"]), None)
    if line is None:
        cart.append({"product_id": p["id"], "qty": qty, "options": options})
    else:
        line["qty"] = min(99, line["qty"] + qty)
        line["options"] = options
    return redirect(f"/product/{p['id']}", flash=f"You added {p['name']} to your shopping cart.")


def _cart_lines(store: dict, email: str) -> list[dict]:
    lines = []
    for item in store["carts"].get(email, []):
        p = sd.product(store, item["product_id"])
        lines.append({**item, "p": p, "total": p["price"] * item["qty"]})
    return lines


async def cart(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    lines = _cart_lines(ctx(request).state, current_user(request)["email"])
    subtotal = sum(line["total"] for line in lines)
    return _page(request, "cart.html", {"lines": lines, "subtotal": subtotal})


async def cart_update(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    data = await form(request)
    cart_items = ctx(request).state["carts"].setdefault(current_user(request)["email"], [])
    try:
        pid, qty = int(data.get("product_id", "")), int(data.get("qty", ""))
    except ValueError:
        return redirect("/cart", flash="Please enter a valid quantity.")
    line = next((item for item in cart_items if item["product_id"] == pid), None)
    if line is None:
        return redirect("/cart", flash="That item is not in your cart.")
    if request.url.path.endswith("/remove") or qty == 0:
        cart_items.remove(line)
        return redirect("/cart", flash="The item was removed from your cart.")
    if not 1 <= qty <= 99:
        return redirect("/cart", flash="Please enter a quantity from 1 to 99.")
    line["qty"] = qty
    return redirect("/cart", flash="Your shopping cart was updated.")


async def cart_remove(request: Request) -> Response:
    return await cart_update(request)


async def checkout(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    store = ctx(request).state
    user = current_user(request)
    lines = _cart_lines(store, user["email"])
    if request.method == "GET":
        if not lines:
            return redirect("/cart", flash="Your cart is empty.")
        subtotal = sum(line["total"] for line in lines)
        context = {"lines": lines, "subtotal": subtotal, "methods": sd.SHIPPING_CENTS}
        return _page(request, "checkout.html", context)
    data = await form(request)
    method = data.get("shipping_method", "")
    if method not in sd.SHIPPING_CENTS:
        return redirect("/checkout", flash="Please choose a shipping method.")
    if not lines:
        return redirect("/cart", flash="Your cart is empty.")
    address = {k: data.get(k, "").strip() for k in ("street", "city", "state", "zip")}
    if not all(address.values()):
        return redirect("/checkout", flash="Please fill in the whole shipping address.")
    order_id = store["next_ids"]["order"]
    store["next_ids"]["order"] += 1
    items = [
        {
            "product_id": line["p"]["id"],
            "name": line["p"]["name"],
            "sku": line["p"]["sku"],
            "qty": line["qty"],
            "price": line["p"]["price"],
            "options": dict(line["options"]),
        }
        for line in lines
    ]
    subtotal = sum(i["qty"] * i["price"] for i in items)
    store["orders"].append(
        {
            "id": order_id,
            "customer": user["email"],
            "date": "2024-01-15",
            "status": "pending",
            "items": items,
            "shipping_method": method,
            "subtotal": subtotal,
            "shipping": sd.SHIPPING_CENTS[method],
            "total": subtotal + sd.SHIPPING_CENTS[method],
            "address": address,
            "comments": [],
        }
    )
    store["carts"][user["email"]] = []
    return redirect(
        f"/account/orders/{order_id}", flash=f"Thank you! Your order #{order_id} was placed."
    )


async def account(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    store = ctx(request).state
    email = current_user(request)["email"]
    recent = sd.customer_orders(store, email)[:3]
    subscribed = store["newsletter"].get(email, False)
    return _page(request, "account.html", {"recent": recent, "subscribed": subscribed})


async def orders(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    mine = sd.customer_orders(ctx(request).state, current_user(request)["email"])
    page = paginate(mine, int_param(request, "page"), per_page=10)
    return _page(request, "orders.html", {"page": page, **page_links("/account/orders", {}, page)})


def _my_order(request: Request) -> dict | None:
    store = ctx(request).state
    try:
        oid = int(request.path_params["oid"])
    except ValueError:
        return None
    order = next((o for o in store["orders"] if o["id"] == oid), None)
    if order is None or order["customer"] != current_user(request)["email"]:
        return None
    return order


async def order_detail(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    order = _my_order(request)
    if order is None:
        return not_found(request, "Order")
    return _page(request, "order.html", {"order": order})


async def order_cancel(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    order = _my_order(request)
    if order is None:
        return not_found(request, "Order")
    if order["status"] != "pending":
        return redirect(
            f"/account/orders/{order['id']}", flash="Only pending orders can be canceled."
        )
    order["status"] = "canceled"
    return redirect(f"/account/orders/{order['id']}", flash=f"Order #{order['id']} was canceled.")


async def wishlist(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    store = ctx(request).state
    ids = store["wishlists"].get(current_user(request)["email"], [])
    items = [sd.product(store, pid) for pid in ids]
    return _page(request, "wishlist.html", {"items": items})


async def wishlist_change(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    p = _pid(request)
    if p is None:
        return not_found(request, "Product")
    ids = ctx(request).state["wishlists"].setdefault(current_user(request)["email"], [])
    if request.url.path.endswith("/remove"):
        if p["id"] in ids:
            ids.remove(p["id"])
        return redirect("/account/wishlist", flash=f"{p['name']} was removed from your wish list.")
    if p["id"] not in ids:
        ids.append(p["id"])
    return redirect("/account/wishlist", flash=f"{p['name']} was added to your wish list.")


async def write_review(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    p = _pid(request)
    if p is None or p["status"] != "enabled":
        return not_found(request, "Product")
    data = await form(request)
    title, text = data.get("title", "").strip(), data.get("text", "").strip()
    try:
        stars = int(data.get("rating", ""))
    except ValueError:
        stars = 0
    if not 1 <= stars <= 5 or not title or not text:
        return redirect(f"/product/{p['id']}", flash="Please give a rating, a title and a review.")
    store = ctx(request).state
    store["reviews"].append(
        {
            "id": store["next_ids"]["review"],
            "product_id": p["id"],
            "author": current_user(request)["name"],
            "author_email": current_user(request)["email"],
            "rating": stars,
            "title": title,
            "text": text,
            "status": "pending",
            "date": "2024-01-15",
        }
    )
    store["next_ids"]["review"] += 1
    return redirect(
        "/account/reviews", flash="Thank you, your review was submitted for moderation."
    )


async def my_reviews(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    store = ctx(request).state
    email = current_user(request)["email"]
    mine = [r for r in store["reviews"] if r.get("author_email") == email]
    rows = [{**r, "product": sd.product(store, r["product_id"])} for r in reversed(mine)]
    return _page(request, "my_reviews.html", {"reviews": rows})


async def account_edit(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    user = current_user(request)
    if request.method == "GET":
        return _page(request, "account_edit.html", {})
    data = await form(request)
    name, phone = data.get("name", "").strip(), data.get("phone", "").strip()
    if not name or not phone:
        return redirect("/account/edit", flash="Name and phone number are required.")
    user["name"], user["phone"] = name, phone
    store = ctx(request).state
    store["newsletter"][user["email"]] = data.get("newsletter") == "on"
    return redirect("/account", flash="You saved the account information.")


async def address_edit(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    user = current_user(request)
    if request.method == "GET":
        return _page(request, "address.html", {})
    data = await form(request)
    address = {k: data.get(k, "").strip() for k in ("street", "city", "state", "zip")}
    if not all(address.values()):
        return redirect("/account/address", flash="Please fill in every address field.")
    user["address"] = address
    return redirect("/account", flash="You saved the address.")


def routes() -> list[Route]:
    return [
        Route("/", home),
        Route("/category/{slug}", category),
        Route("/search", search),
        Route("/product/{pid}", product),
        Route("/product/{pid}/cart", add_to_cart, methods=["POST"]),
        Route("/product/{pid}/review", write_review, methods=["POST"]),
        Route("/product/{pid}/wishlist", wishlist_change, methods=["POST"]),
        Route("/product/{pid}/wishlist/remove", wishlist_change, methods=["POST"]),
        Route("/cart", cart),
        Route("/cart/update", cart_update, methods=["POST"]),
        Route("/cart/remove", cart_remove, methods=["POST"]),
        Route("/checkout", checkout, methods=["GET", "POST"]),
        Route("/account", account),
        Route("/account/orders", orders),
        Route("/account/orders/{oid}", order_detail),
        Route("/account/orders/{oid}/cancel", order_cancel, methods=["POST"]),
        Route("/account/wishlist", wishlist),
        Route("/account/reviews", my_reviews),
        Route("/account/edit", account_edit, methods=["GET", "POST"]),
        Route("/account/address", address_edit, methods=["GET", "POST"]),
        *auth_routes("shopping/login.html", home="/account"),
    ]
