"""`shopping_admin`: the store's back office (orders, products, customers, reports, reviews).

It reads and writes the store in world["shopping"]; its own state holds only admin users.
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
    form,
    int_param,
    login_required,
    not_found,
    page_links,
    paginate,
    redirect,
    render,
)

SITE = "shopping_admin"
AGENT_USER = "storeadmin"
GROUPS = ["General", "Wholesale", "VIP"]
REVIEW_STATUSES = ["pending", "approved", "rejected"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]  # fmt: skip


def seed_state(rng: random.Random) -> dict:
    return {
        "users": {
            AGENT_USER: {
                "username": AGENT_USER,
                "name": "Store Admin",
                "password": "AdminHarbor#2024",
            },
            "ops.lead": {
                "username": "ops.lead",
                "name": "Ops Lead",
                "password": f"Ops{rng.randint(1000, 9999)}!",
            },
        },
        "sessions": {},
    }


def store(request: Request) -> dict:
    return ctx(request).state if ctx(request).site == "shopping" else ctx(request).world["shopping"]


def _page(request: Request, template: str, context: dict, status: int = 200) -> Response:
    return render(request, f"shopping_admin/{template}", context, status=status)


def _customer_by_email(st: dict) -> dict:
    return {u["email"]: u for u in st["users"].values()}


async def dashboard(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    st = store(request)
    counts = {s: sum(1 for o in st["orders"] if o["status"] == s) for s in sd.ORDER_STATUSES}
    pending_reviews = sum(1 for r in st["reviews"] if r["status"] == "pending")
    low_stock = sum(1 for p in st["products"] if p["qty"] < 5)
    context = {"counts": counts, "pending_reviews": pending_reviews, "low_stock": low_stock}
    return _page(request, "dashboard.html", context)


async def orders(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    st = store(request)
    status = request.query_params.get("status", "")
    query = request.query_params.get("q", "").strip()
    people = _customer_by_email(st)
    rows = sorted(st["orders"], key=lambda o: o["id"], reverse=True)
    if status in sd.ORDER_STATUSES:
        rows = [o for o in rows if o["status"] == status]
    if query:
        q = query.casefold()
        rows = [
            o for o in rows
            if q in str(o["id"]) or q in people[o["customer"]]["name"].casefold()
            or q in o["customer"]
        ]  # fmt: skip
    page = paginate(rows, int_param(request, "page"))
    context = {
        "page": page,
        "status": status,
        "query": query,
        "statuses": sd.ORDER_STATUSES,
        "people": people,
        **page_links("/orders", {"status": status, "q": query}, page),
    }
    return _page(request, "orders.html", context)


def _order(request: Request) -> dict | None:
    try:
        oid = int(request.path_params["oid"])
    except ValueError:
        return None
    return next((o for o in store(request)["orders"] if o["id"] == oid), None)


async def order_detail(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    order = _order(request)
    if order is None:
        return not_found(request, "Order")
    customer = _customer_by_email(store(request))[order["customer"]]
    context = {"order": order, "customer": customer, "statuses": sd.ORDER_STATUSES}
    return _page(request, "order.html", context)


async def order_update(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    order = _order(request)
    if order is None:
        return not_found(request, "Order")
    data = await form(request)
    back = f"/orders/{order['id']}"
    if request.url.path.endswith("/comment"):
        text = data.get("comment", "").strip()
        if not text:
            return redirect(back, flash="The comment is empty.")
        order["comments"].append(text)
        return redirect(back, flash="The comment was added to the order history.")
    status = data.get("status", "")
    if status not in sd.ORDER_STATUSES:
        return redirect(back, flash="Please choose a valid status.")
    order["status"] = status
    return redirect(back, flash=f"Order #{order['id']} is now {status.capitalize()}.")


async def products(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    st = store(request)
    query = request.query_params.get("q", "").strip()
    rows = sd.search_products(st, query, include_disabled=True) if query else st["products"]
    page = paginate(rows, int_param(request, "page"))
    context = {"page": page, "query": query, **page_links("/products", {"q": query}, page)}
    return _page(request, "products.html", context)


def _product(request: Request) -> dict | None:
    try:
        return sd.product(store(request), int(request.path_params["pid"]))
    except ValueError:
        return None


async def product_edit(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    p = _product(request)
    if p is None:
        return not_found(request, "Product")
    if request.method == "GET":
        return _page(request, "product_edit.html", {"p": p})
    data = await form(request)
    back = f"/products/{p['id']}/edit"
    name = data.get("name", "").strip()
    try:
        price = round(float(data.get("price", "").replace("$", "").replace(",", "")) * 100)
        qty = int(data.get("qty", ""))
    except ValueError:
        return redirect(back, flash="Price and quantity must be numbers.")
    status = data.get("status", "")
    if not name or price < 0 or qty < 0 or status not in ("enabled", "disabled"):
        return redirect(back, flash="Please check the name, price, quantity and status.")
    p.update(name=name, price=price, qty=qty, status=status)
    return redirect(back, flash="You saved the product.")


async def customers(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    st = store(request)
    query = request.query_params.get("q", "").strip().casefold()
    rows = sorted(st["users"].values(), key=lambda u: u["customer_id"])
    if query:
        rows = [u for u in rows if query in u["name"].casefold() or query in u["email"]]
    page = paginate(rows, int_param(request, "page"))
    context = {"page": page, "query": query, **page_links("/customers", {"q": query}, page)}
    return _page(request, "customers.html", context)


def _customer(request: Request) -> dict | None:
    try:
        cid = int(request.path_params["cid"])
    except ValueError:
        return None
    return next((u for u in store(request)["users"].values() if u["customer_id"] == cid), None)


async def customer_detail(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    person = _customer(request)
    if person is None:
        return not_found(request, "Customer")
    if request.method == "POST":
        data = await form(request)
        if data.get("group") not in GROUPS:
            return redirect(f"/customers/{person['customer_id']}", flash="Unknown group.")
        person["group"] = data["group"]
        return redirect(f"/customers/{person['customer_id']}", flash="You saved the customer.")
    history = sd.customer_orders(store(request), person["email"])
    return _page(request, "customer.html", {"c": person, "orders": history, "groups": GROUPS})


async def bestsellers(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    year = request.query_params.get("year", "2023")
    month = request.query_params.get("month", "")
    if year not in ("2022", "2023"):
        year = "2023"
    period = year
    if month.isdigit() and 1 <= int(month) <= 12:
        period = f"{year}-{int(month):02d}"
    else:
        month = ""
    rows = sd.bestsellers(store(request), period)[:10]
    context = {"rows": rows, "year": year, "month": month, "months": MONTHS}
    return _page(request, "bestsellers.html", context)


async def reviews(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    st = store(request)
    status = request.query_params.get("status", "pending")
    rows = list(reversed(st["reviews"]))
    if status in REVIEW_STATUSES:
        rows = [r for r in rows if r["status"] == status]
    else:
        status = "all"
    page = paginate(rows, int_param(request, "page"))
    names = {p["id"]: p["name"] for p in st["products"]}
    context = {"page": page, "status": status, "names": names,
               "statuses": REVIEW_STATUSES, **page_links("/reviews", {"status": status}, page)}  # fmt: skip
    return _page(request, "reviews.html", context)


def _review(request: Request) -> dict | None:
    try:
        rid = int(request.path_params["rid"])
    except ValueError:
        return None
    return next((r for r in store(request)["reviews"] if r["id"] == rid), None)


async def review_detail(request: Request) -> Response:
    if (deny := login_required(request)) is not None:
        return deny
    review = _review(request)
    if review is None:
        return not_found(request, "Review")
    if request.method == "POST":
        decision = request.url.path.rsplit("/", 1)[1]
        review["status"] = "approved" if decision == "approve" else "rejected"
        return redirect(f"/reviews/{review['id']}", flash=f"The review was {review['status']}.")
    p = sd.product(store(request), review["product_id"])
    return _page(request, "review.html", {"r": review, "p": p})


def routes() -> list[Route]:
    return [
        Route("/", dashboard),
        Route("/orders", orders),
        Route("/orders/{oid}", order_detail),
        Route("/orders/{oid}/status", order_update, methods=["POST"]),
        Route("/orders/{oid}/comment", order_update, methods=["POST"]),
        Route("/products", products),
        Route("/products/{pid}/edit", product_edit, methods=["GET", "POST"]),
        Route("/customers", customers),
        Route("/customers/{cid}", customer_detail, methods=["GET", "POST"]),
        Route("/reports/bestsellers", bestsellers),
        Route("/reviews", reviews),
        Route("/reviews/{rid}", review_detail),
        Route("/reviews/{rid}/approve", review_detail, methods=["POST"]),
        Route("/reviews/{rid}/reject", review_detail, methods=["POST"]),
        *auth_routes("shopping_admin/login.html", home="/"),
    ]
