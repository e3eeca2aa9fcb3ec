"""Task templates of the store's back office `shopping_admin` (ids 200-299)."""

from __future__ import annotations

import random

from sandbox.oracle import SAVED, Click, Exit, Search, Seek, Select, T, Type
from sandbox.sites import store_data as sd
from sandbox.sites.shopping_admin import GROUPS, MONTHS
from sandbox.taskgen import (
    TaskSpec,
    Template,
    check,
    exact_match,
    must_include,
    program_html,
    required_values,
    sample,
    testid_text,
    testid_value,
    url,
    url_match,
)

CAP = 40
HOME = url("shopping_admin", "/")
PER_PAGE = 20
SITE = ("shopping_admin",)


def store(world: dict) -> dict:
    return world["shopping"]


def customers(world: dict) -> list[dict]:
    return sorted(store(world)["users"].values(), key=lambda u: u["customer_id"])


def customer_of(world: dict, cid: int) -> dict:
    return next(u for u in customers(world) if u["customer_id"] == cid)


def open_order(order_id: int) -> list:
    return [
        Click(T(testid="nav-orders")),
        Search(T(testid="order-search"), str(order_id)),
        Click(T(testid=f"view-order-{order_id}")),
    ]


def open_customer(person: dict) -> list:
    return [
        Click(T(testid="nav-customers")),
        Search(T(testid="customer-search"), person["name"]),
        Click(T(testid=f"view-customer-{person['customer_id']}")),
    ]


def open_product_edit(p: dict) -> list:
    return [
        Click(T(testid="nav-products")),
        Search(T(testid="product-search"), p["name"]),
        Click(T(testid=f"edit-product-{p['id']}")),
    ]


def inst_customers(world: dict, rng: random.Random) -> list[dict]:
    return [{"customer": u["name"], "_cid": u["customer_id"]}
            for u in sample(customers(world), rng, CAP)]  # fmt: skip


def inst_orders(world: dict, rng: random.Random) -> list[dict]:
    return [{"order_id": o["id"]} for o in sample(store(world)["orders"], rng, CAP)]


def inst_products(world: dict, rng: random.Random) -> list[dict]:
    return [{"product": p["name"], "_pid": p["id"]}
            for p in sample(store(world)["products"], rng, CAP)]  # fmt: skip


def _order(world: dict, inst: dict) -> dict:
    return next(o for o in store(world)["orders"] if o["id"] == inst["order_id"])


# -- information ---------------------------------------------------------------------------


def inst_status(world: dict, rng: random.Random) -> list[dict]:
    return [{"status": s} for s in sd.ORDER_STATUSES]


def _filter_status(status: str) -> list:
    return [
        Click(T(testid="nav-orders")),
        Select(T(testid="order-status-filter"), status.capitalize()),
        Click(T(testid="order-filter-apply")),
    ]


def build_status_count(world: dict, inst: dict) -> TaskSpec:
    n = sum(1 for o in store(world)["orders"] if o["status"] == inst["status"])
    plan = _filter_status(inst["status"]) + [Exit(str(n))]
    return TaskSpec(HOME, must_include([str(n)]), plan)


def build_customer_orders(world: dict, inst: dict) -> TaskSpec:
    person = customer_of(world, inst["_cid"])
    n = len(sd.customer_orders(store(world), person["email"]))
    plan = open_customer(person) + [Exit(str(n))]
    return TaskSpec(HOME, required_values([f"== {n}"]), plan)


def _periods(world: dict) -> list[dict]:
    out = []
    for year in ("2022", "2023"):
        out.append({"period": year, "_year": year, "_month": ""})
        for index, month in enumerate(MONTHS, start=1):
            out.append({"period": f"{month} {year}", "_year": year, "_month": f"{index:02d}"})
    return out


def inst_top_seller(world: dict, rng: random.Random) -> list[dict]:
    out = []
    for inst in _periods(world):
        period = inst["_year"] + (f"-{inst['_month']}" if inst["_month"] else "")
        rows = sd.bestsellers(store(world), period)
        if len(rows) > 1 and rows[0]["units"] > rows[1]["units"]:
            out.append(inst)
    return out


def _report_plan(inst: dict) -> list:
    month = MONTHS[int(inst["_month"]) - 1] if inst["_month"] else "All months"
    return [
        Click(T(testid="nav-bestsellers")),
        Select(T(testid="report-year"), inst["_year"]),
        Select(T(testid="report-month"), month),
        Click(T(testid="show-report")),
    ]


def build_top_seller(world: dict, inst: dict) -> TaskSpec:
    period = inst["_year"] + (f"-{inst['_month']}" if inst["_month"] else "")
    name = sd.bestsellers(store(world), period)[0]["name"]
    return TaskSpec(HOME, must_include([name]), _report_plan(inst) + [Exit(name)])


def build_order_total(world: dict, inst: dict) -> TaskSpec:
    answer = sd.money(_order(world, inst)["total"])
    return TaskSpec(HOME, must_include([answer]), open_order(inst["order_id"]) + [Exit(answer)])


def build_phone(world: dict, inst: dict) -> TaskSpec:
    person = customer_of(world, inst["_cid"])
    return TaskSpec(
        HOME, exact_match(person["phone"]), open_customer(person) + [Exit(person["phone"])]
    )


def build_stock(world: dict, inst: dict) -> TaskSpec:
    p = sd.product(store(world), inst["_pid"])
    plan = [Click(T(testid="nav-products")), Search(T(testid="product-search"), p["name"]),
            Exit(str(p["qty"]))]  # fmt: skip
    return TaskSpec(HOME, required_values([f"== {p['qty']}"]), plan)


def build_order_customer(world: dict, inst: dict) -> TaskSpec:
    order = _order(world, inst)
    name = store(world)["users"][order["customer"]]["name"]
    return TaskSpec(HOME, must_include([name]), open_order(inst["order_id"]) + [Exit(name)])


# -- navigation ----------------------------------------------------------------------------


def build_status_page(world: dict, inst: dict) -> TaskSpec:
    target = url("shopping_admin", f"/orders?status={inst['status']}")
    plan = _filter_status(inst["status"]) + [Exit("")]
    return TaskSpec(HOME, url_match(target, "GOLD in PRED"), plan)


def build_report_page(world: dict, inst: dict) -> TaskSpec:
    target = url(
        "shopping_admin", f"/reports/bestsellers?year={inst['_year']}&month={inst['_month']}"
    )
    return TaskSpec(HOME, url_match(target), _report_plan(inst) + [Exit("")])


# -- state changes -------------------------------------------------------------------------


def inst_set_status(world: dict, rng: random.Random) -> list[dict]:
    out = []
    for o in sample(store(world)["orders"], rng, CAP):
        status = rng.choice([s for s in sd.ORDER_STATUSES if s != o["status"]])
        out.append({"order_id": o["id"], "status": status})
    return out


def build_set_status(world: dict, inst: dict) -> TaskSpec:
    oid = inst["order_id"]
    ev = program_html([check(url("shopping_admin", f"/orders/{oid}"), testid_text("order-status"),
                             exact_match=inst["status"].capitalize())])  # fmt: skip
    plan = open_order(oid) + [
        Select(T(testid="order-status-select"), inst["status"].capitalize()),
        Click(T(testid="order-status-save")),
        SAVED,
    ]
    return TaskSpec(HOME, ev, plan)


def inst_price(world: dict, rng: random.Random) -> list[dict]:
    out = []
    for inst in inst_products(world, rng):
        price = f"{rng.randint(2, 199)}.{rng.choice(['00', '49', '95', '99'])}"
        out.append({**inst, "price": price})
    return out


def _edit_plan(p: dict, testid: str, value: str) -> list:
    return open_product_edit(p) + [
        Type(T(testid=testid), value),
        Click(T(testid="save-product")),
        SAVED,
    ]


def build_price(world: dict, inst: dict) -> TaskSpec:
    p = sd.product(store(world), inst["_pid"])
    edit = url("shopping_admin", f"/products/{p['id']}/edit")
    ev = program_html([check(edit, testid_value("product-price-input"), exact_match=inst["price"])])
    return TaskSpec(HOME, ev, _edit_plan(p, "product-price-input", inst["price"]))


def inst_qty(world: dict, rng: random.Random) -> list[dict]:
    out = []
    for inst in inst_products(world, rng):
        p = sd.product(store(world), inst["_pid"])
        qty = rng.choice([q for q in (0, 5, 12, 25, 40, 75, 100, 150, 300) if q != p["qty"]])
        out.append({**inst, "qty": qty})
    return out


def build_qty(world: dict, inst: dict) -> TaskSpec:
    p = sd.product(store(world), inst["_pid"])
    edit = url("shopping_admin", f"/products/{p['id']}/edit")
    ev = program_html(
        [check(edit, testid_value("product-qty-input"), exact_match=str(inst["qty"]))]
    )
    return TaskSpec(HOME, ev, _edit_plan(p, "product-qty-input", str(inst["qty"])))


def inst_disable(world: dict, rng: random.Random) -> list[dict]:
    enabled = [p for p in store(world)["products"] if p["status"] == "enabled"]
    return [{"product": p["name"], "_pid": p["id"]} for p in sample(enabled, rng, CAP)]


def build_disable(world: dict, inst: dict) -> TaskSpec:
    p = sd.product(store(world), inst["_pid"])
    edit = url("shopping_admin", f"/products/{p['id']}/edit")
    ev = program_html([check(edit, testid_value("product-status-select"), exact_match="disabled")])
    plan = open_product_edit(p) + [
        Select(T(testid="product-status-select"), "Disabled"),
        Click(T(testid="save-product")),
        SAVED,
    ]
    return TaskSpec(HOME, ev, plan)


def _pending(world: dict) -> list[dict]:
    """Pending reviews in the order the moderation grid lists them (newest first)."""
    return [r for r in reversed(store(world)["reviews"]) if r["status"] == "pending"]


def inst_moderate(world: dict, rng: random.Random) -> list[dict]:
    pending = _pending(world)
    pairs: dict[tuple[str, int], int] = {}
    for r in pending:
        pairs[(r["author"], r["product_id"])] = pairs.get((r["author"], r["product_id"]), 0) + 1
    unique = [r for r in pending if pairs[(r["author"], r["product_id"])] == 1]
    return [
        {"author": r["author"], "product": sd.product(store(world), r["product_id"])["name"],
         "_rid": r["id"]}
        for r in sample(unique, rng, CAP)
    ]  # fmt: skip


def _moderate(world: dict, inst: dict, button: str, status: str) -> TaskSpec:
    rid = inst["_rid"]
    plan = [
        Click(T(testid="nav-reviews")),
        Seek(T(testid=f"view-review-{rid}"), more=T(testid="page-next")),
        Click(T(testid=button)),
        SAVED,
    ]
    ev = program_html([check(url("shopping_admin", f"/reviews/{rid}"), testid_text("review-status"),
                             exact_match=status)])  # fmt: skip
    return TaskSpec(HOME, ev, plan)


def build_approve(world: dict, inst: dict) -> TaskSpec:
    return _moderate(world, inst, "approve-review", "Approved")


def build_reject(world: dict, inst: dict) -> TaskSpec:
    return _moderate(world, inst, "reject-review", "Rejected")


COMMENTS = ["Customer called about the delivery date", "Gift wrap requested",
            "Address confirmed by phone", "Refund approved by the manager",
            "Leave the parcel at the back door"]  # fmt: skip


def inst_comment(world: dict, rng: random.Random) -> list[dict]:
    return [{**inst, "comment": rng.choice(COMMENTS)} for inst in inst_orders(world, rng)]


def build_comment(world: dict, inst: dict) -> TaskSpec:
    oid = inst["order_id"]
    ev = program_html([check(url("shopping_admin", f"/orders/{oid}"), testid_text("order-comments"),
                             must_include=[inst["comment"]])])  # fmt: skip
    plan = open_order(oid) + [
        Type(T(testid="order-comment-input"), inst["comment"]),
        Click(T(testid="order-comment-submit")),
        SAVED,
    ]
    return TaskSpec(HOME, ev, plan)


def inst_group(world: dict, rng: random.Random) -> list[dict]:
    out = []
    for inst in inst_customers(world, rng):
        person = customer_of(world, inst["_cid"])
        out.append({**inst, "group": rng.choice([g for g in GROUPS if g != person["group"]])})
    return out


def build_group(world: dict, inst: dict) -> TaskSpec:
    person = customer_of(world, inst["_cid"])
    page = url("shopping_admin", f"/customers/{person['customer_id']}")
    ev = program_html(
        [check(page, testid_value("customer-group-select"), exact_match=inst["group"])]
    )
    plan = open_customer(person) + [
        Select(T(testid="customer-group-select"), inst["group"]),
        Click(T(testid="save-customer")),
        SAVED,
    ]
    return TaskSpec(HOME, ev, plan)


TEMPLATES = [
    Template(201, SITE, "How many orders are in status {{status}}?", "info", inst_status,
             build_status_count),
    Template(202, SITE, "How many orders has the customer {{customer}} placed?", "info",
             inst_customers, build_customer_orders),
    Template(203, SITE, "What is the top-1 best-selling product in {{period}}?", "info",
             inst_top_seller, build_top_seller),
    Template(204, SITE, "What is the grand total of order #{{order_id}}?", "info", inst_orders,
             build_order_total),
    Template(205, SITE, "What is the phone number of the customer {{customer}}?", "info",
             inst_customers, build_phone),
    Template(206, SITE, "How many units of {{product}} are in stock?", "info", inst_products,
             build_stock),
    Template(207, SITE, "Which customer placed order #{{order_id}}?", "info", inst_orders,
             build_order_customer),
    Template(208, SITE, "Show me all orders with the status {{status}}.", "nav", inst_status,
             build_status_page),
    Template(209, SITE, "Open the bestsellers report for {{period}}.", "nav",
             lambda w, r: _periods(w), build_report_page),
    Template(210, SITE, "Change the status of order #{{order_id}} to {{status}}.", "state",
             inst_set_status, build_set_status),
    Template(211, SITE, "Set the price of {{product}} to ${{price}}.", "state", inst_price,
             build_price),
    Template(212, SITE, "Update the stock quantity of {{product}} to {{qty}} units.", "state",
             inst_qty, build_qty),
    Template(213, SITE, "Disable the product {{product}} in the catalog.", "state", inst_disable,
             build_disable),
    Template(214, SITE, "Approve the pending review by {{author}} of {{product}}.", "state",
             inst_moderate, build_approve),
    Template(215, SITE, "Reject the pending review by {{author}} of {{product}}.", "state",
             inst_moderate, build_reject),
    Template(216, SITE, 'Add the comment "{{comment}}" to order #{{order_id}}.', "state",
             inst_comment, build_comment),
    Template(217, SITE, "Move the customer {{customer}} to the {{group}} customer group.",
             "state", inst_group, build_group),
]  # fmt: skip
