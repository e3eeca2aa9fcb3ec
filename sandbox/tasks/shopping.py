"""Task templates of the `shopping` storefront (ids 100-199): facts, pages and account changes."""

from __future__ import annotations

import random

from sandbox.oracle import SAVED, Click, Exit, Search, Seek, Select, T, Type
from sandbox.sites import store_data as sd
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

CAP = 40  # instantiations per template at most
HOME = url("shopping", "/")
ORDERS_PER_PAGE = 10
SORT_LABELS = {
    "price_asc": "price from low to high",
    "price_desc": "price from high to low",
    "name": "name",
}
SORT_OPTIONS = {
    "price_asc": "Price: Low to High",
    "price_desc": "Price: High to Low",
    "name": "Name: A to Z",
}


def store(world: dict) -> dict:
    return world["shopping"]


def enabled(world: dict) -> list[dict]:
    return [p for p in store(world)["products"] if p["status"] == "enabled"]


def agent_orders(world: dict) -> list[dict]:
    return sd.customer_orders(store(world), sd.AGENT_EMAIL)


def open_product(p: dict) -> list:
    """Search the store for the product and open its page."""
    return [Search(T(testid="search-input"), p["name"]), Click(T(testid=f"product-link-{p['id']}"))]


def open_order(world: dict, order_id: int) -> list:
    """Account -> My Orders -> (Next pages until it shows) -> View Order."""
    return [
        Click(T(testid="nav-account")),
        Click(T(testid="my-orders")),
        Seek(T(testid=f"view-order-{order_id}"), more=T(testid="page-next")),
    ]


def product_inst(world: dict, rng: random.Random, pick=None) -> list[dict]:
    items = [p for p in enabled(world) if pick is None or pick(p)]
    return [{"product": p["name"], "_pid": p["id"]} for p in sample(items, rng, CAP)]


def _p(world: dict, inst: dict) -> dict:
    return sd.product(store(world), inst["_pid"])


# -- information ---------------------------------------------------------------------------


def build_price(world: dict, inst: dict) -> TaskSpec:
    p = _p(world, inst)
    answer = sd.money(p["price"])
    return TaskSpec(HOME, must_include([answer]), open_product(p) + [Exit(answer)])


def build_review_count(world: dict, inst: dict) -> TaskSpec:
    p = _p(world, inst)
    n = sd.rating(store(world), p["id"])[1]
    return TaskSpec(HOME, required_values([f"== {n}"]), open_product(p) + [Exit(str(n))])


def build_sku(world: dict, inst: dict) -> TaskSpec:
    p = _p(world, inst)
    return TaskSpec(HOME, exact_match(p["sku"]), open_product(p) + [Exit(p["sku"])])


def build_rating(world: dict, inst: dict) -> TaskSpec:
    p = _p(world, inst)
    avg = str(sd.rating(store(world), p["id"])[0])
    return TaskSpec(HOME, must_include([avg]), open_product(p) + [Exit(f"{avg} out of 5")])


def build_colors(world: dict, inst: dict) -> TaskSpec:
    p = _p(world, inst)
    colors = p["options"]["Color"]
    return TaskSpec(HOME, must_include(colors), open_product(p) + [Exit(", ".join(colors))])


def inst_orders(world: dict, rng: random.Random) -> list[dict]:
    return [{"order_id": o["id"]} for o in sample(agent_orders(world), rng, CAP)]


def _order(world: dict, inst: dict) -> dict:
    return next(o for o in store(world)["orders"] if o["id"] == inst["order_id"])


def build_order_total(world: dict, inst: dict) -> TaskSpec:
    answer = sd.money(_order(world, inst)["total"])
    plan = open_order(world, inst["order_id"]) + [Exit(answer)]
    return TaskSpec(HOME, must_include([answer]), plan)


def build_order_date(world: dict, inst: dict) -> TaskSpec:
    answer = _order(world, inst)["date"]
    return TaskSpec(HOME, exact_match(answer), open_order(world, inst["order_id"]) + [Exit(answer)])


def inst_status_count(world: dict, rng: random.Random) -> list[dict]:
    return [{"status": s} for s in sd.ORDER_STATUSES]


def build_status_count(world: dict, inst: dict) -> TaskSpec:
    orders = agent_orders(world)
    n = sum(1 for o in orders if o["status"] == inst["status"])
    pages = (len(orders) + ORDERS_PER_PAGE - 1) // ORDERS_PER_PAGE
    plan = [Click(T(testid="nav-account")), Click(T(testid="my-orders"))]
    plan += [Click(T(testid="page-next"))] * (pages - 1) + [Exit(str(n))]
    return TaskSpec(HOME, required_values([f"== {n}"]), plan)


def inst_category(world: dict, rng: random.Random) -> list[dict]:
    return [{"category": c["name"], "_slug": c["slug"]} for c in store(world)["categories"]]


def _sorted_in(world: dict, slug: str) -> list[dict]:
    return sorted((p for p in enabled(world) if p["category"] == slug), key=lambda p: p["price"])


def inst_cheapest(world: dict, rng: random.Random) -> list[dict]:
    out = []
    for inst in inst_category(world, rng):
        items = _sorted_in(world, inst["_slug"])
        if len(items) > 1 and items[0]["price"] < items[1]["price"]:
            out.append(inst)
    return out


def _sort_plan(slug: str, sort: str) -> list:
    return [
        Click(T(testid=f"category-{slug}")),
        Select(T(testid="sort-select"), SORT_OPTIONS[sort]),
        Click(T(testid="sort-apply")),
    ]


def build_cheapest(world: dict, inst: dict) -> TaskSpec:
    name = _sorted_in(world, inst["_slug"])[0]["name"]
    plan = _sort_plan(inst["_slug"], "price_asc") + [Exit(name)]
    return TaskSpec(HOME, must_include([name]), plan)


# -- navigation ----------------------------------------------------------------------------


def inst_sorted(world: dict, rng: random.Random) -> list[dict]:
    return [
        {**c, "order": SORT_LABELS[s], "_sort": s}
        for c in inst_category(world, rng)
        for s in ("price_asc", "price_desc")
    ]


def build_sorted(world: dict, inst: dict) -> TaskSpec:
    target = url("shopping", f"/category/{inst['_slug']}?sort={inst['_sort']}")
    return TaskSpec(HOME, url_match(target), _sort_plan(inst["_slug"], inst["_sort"]) + [Exit("")])


def inst_query(world: dict, rng: random.Random) -> list[dict]:
    words = sorted({p["name"].split()[-1].lower() for p in enabled(world)})
    words = [w for w in words if w.isalpha()]
    return [{"query": w} for w in sample(words, rng, CAP)]


def build_query(world: dict, inst: dict) -> TaskSpec:
    target = url("shopping", f"/search?q={inst['query']}")
    plan = [Search(T(testid="search-input"), inst["query"]), Exit("")]
    return TaskSpec(HOME, url_match(target), plan)


def build_order_page(world: dict, inst: dict) -> TaskSpec:
    target = url("shopping", f"/account/orders/{inst['order_id']}")
    return TaskSpec(HOME, url_match(target), open_order(world, inst["order_id"]) + [Exit("")])


def build_product_page(world: dict, inst: dict) -> TaskSpec:
    p = _p(world, inst)
    target = url("shopping", f"/product/{p['id']}")
    return TaskSpec(HOME, url_match(target), open_product(p) + [Exit("")])


# -- state changes -------------------------------------------------------------------------


def inst_wishlist(world: dict, rng: random.Random) -> list[dict]:
    have = set(store(world)["wishlists"].get(sd.AGENT_EMAIL, []))
    return product_inst(world, rng, lambda p: p["id"] not in have)


def build_wishlist(world: dict, inst: dict) -> TaskSpec:
    p = _p(world, inst)
    ev = program_html(
        [
            check(
                url("shopping", "/account/wishlist"),
                testid_text("wishlist-items"),
                must_include=[p["name"]],
            )
        ]
    )
    return TaskSpec(HOME, ev, open_product(p) + [Click(T(testid="add-to-wishlist")), SAVED])


def _in_cart(world: dict) -> set[int]:
    return {i["product_id"] for i in store(world)["carts"].get(sd.AGENT_EMAIL, [])}


def inst_cart_options(world: dict, rng: random.Random) -> list[dict]:
    out = []
    for p in sample([p for p in enabled(world) if "Size" in p["options"]], rng, CAP):
        out.append(
            {
                "qty": rng.randint(1, 4),
                "product": p["name"],
                "color": rng.choice(p["options"]["Color"]),
                "size": rng.choice(p["options"]["Size"]),
                "_pid": p["id"],
            }
        )
    return out


def build_cart_options(world: dict, inst: dict) -> TaskSpec:
    p = _p(world, inst)
    cart = url("shopping", "/cart")
    ev = program_html(
        [
            check(
                cart,
                testid_text(f"cart-item-{p['id']}"),
                must_include=[p["name"], f"Color: {inst['color']}", f"Size: {inst['size']}"],
            ),
            check(cart, testid_value(f"cart-qty-{p['id']}"), exact_match=str(inst["qty"])),
        ]
    )
    plan = open_product(p) + [
        Select(T(testid="option-color"), f"Color: {inst['color']}"),
        Select(T(testid="option-size"), f"Size: {inst['size']}"),
        Type(T(testid="qty-input"), str(inst["qty"])),
        Click(T(testid="add-to-cart")),
        SAVED,
    ]
    return TaskSpec(HOME, ev, plan)


def inst_cart_add(world: dict, rng: random.Random) -> list[dict]:
    have = _in_cart(world)
    return product_inst(world, rng, lambda p: not p["options"] and p["id"] not in have)


def build_cart_add(world: dict, inst: dict) -> TaskSpec:
    p = _p(world, inst)
    ev = program_html(
        [check(url("shopping", "/cart"), testid_text("cart-items"), must_include=[p["name"]])]
    )
    return TaskSpec(HOME, ev, open_product(p) + [Click(T(testid="add-to-cart")), SAVED])


def inst_cart_qty(world: dict, rng: random.Random) -> list[dict]:
    out = []
    for item in store(world)["carts"].get(sd.AGENT_EMAIL, []):
        p = sd.product(store(world), item["product_id"])
        for qty in range(2, 8):
            if qty != item["qty"]:
                out.append({"product": p["name"], "qty": qty, "_pid": p["id"]})
    return out


def build_cart_qty(world: dict, inst: dict) -> TaskSpec:
    pid = inst["_pid"]
    ev = program_html(
        [
            check(
                url("shopping", "/cart"),
                testid_value(f"cart-qty-{pid}"),
                exact_match=str(inst["qty"]),
            )
        ]
    )
    plan = [
        Click(T(testid="nav-cart")),
        Type(T(testid=f"cart-qty-{pid}"), str(inst["qty"])),
        Click(T(testid=f"cart-update-{pid}")),
        SAVED,
    ]
    return TaskSpec(HOME, ev, plan)


def inst_cart_remove(world: dict, rng: random.Random) -> list[dict]:
    return [
        {"product": sd.product(store(world), i["product_id"])["name"], "_pid": i["product_id"]}
        for i in store(world)["carts"].get(sd.AGENT_EMAIL, [])
    ]


def build_cart_remove(world: dict, inst: dict) -> TaskSpec:
    pid = inst["_pid"]
    locator = (
        f"document.querySelector('[data-testid=\"cart-item-{pid}\"]') ? 'in cart' : "
        "(document.title.startsWith('Shopping Cart') ? 'removed' : 'unknown')"
    )
    ev = program_html([check(url("shopping", "/cart"), locator, exact_match="removed")])
    plan = [Click(T(testid="nav-cart")), Click(T(testid=f"cart-remove-{pid}")), SAVED]
    return TaskSpec(HOME, ev, plan)


def inst_phone(world: dict, rng: random.Random) -> list[dict]:
    phones = {f"555-{rng.randint(200, 899)}-{rng.randint(1000, 9999)}" for _ in range(CAP)}
    return [{"phone": p} for p in sorted(phones)]


def build_phone(world: dict, inst: dict) -> TaskSpec:
    ev = program_html(
        [
            check(
                url("shopping", "/account/edit"),
                testid_value("phone-input"),
                exact_match=inst["phone"],
            )
        ]
    )
    plan = [
        Click(T(testid="nav-account")),
        Click(T(testid="edit-account")),
        Type(T(testid="phone-input"), inst["phone"]),
        Click(T(testid="save-account")),
        SAVED,
    ]
    return TaskSpec(HOME, ev, plan)


def inst_address(world: dict, rng: random.Random) -> list[dict]:
    out = []
    for city, state, zip_code in sd.CITIES:
        for _ in range(4):
            street = f"{rng.randint(10, 9899)} {rng.choice(sd.STREETS)}"
            out.append({"street": street, "city": city, "state": state, "zip": zip_code})
    return out


def build_address(world: dict, inst: dict) -> TaskSpec:
    text = f"{inst['street']}, {inst['city']}, {inst['state']} {inst['zip']}"
    ev = program_html(
        [check(url("shopping", "/account"), testid_text("default-address"), exact_match=text)]
    )
    plan = [Click(T(testid="nav-account")), Click(T(testid="edit-address"))]
    for key in ("street", "city", "state", "zip"):
        plan.append(Type(T(testid=f"address-{key}"), inst[key]))
    plan += [Click(T(testid="save-address")), SAVED]
    return TaskSpec(HOME, ev, plan)


REVIEW_TITLES = [
    "Great for everyday use",
    "Better than expected",
    "Not worth the price",
    "Solid and reliable",
    "Arrived damaged",
    "My new favourite",
]


def inst_review(world: dict, rng: random.Random) -> list[dict]:
    out = []
    for inst in product_inst(world, rng):
        title = rng.choice(REVIEW_TITLES)
        stars = rng.randint(1, 5)
        out.append(
            {
                **inst,
                "stars": stars,
                "title": title,
                "text": f"{title}. I would give it {stars} stars.",
            }
        )
    return out


def build_review(world: dict, inst: dict) -> TaskSpec:
    p = _p(world, inst)
    ev = program_html(
        [
            check(
                url("shopping", "/account/reviews"),
                testid_text("my-reviews"),
                must_include=[p["name"], inst["title"], f"{inst['stars']} stars"],
            )
        ]
    )
    plan = open_product(p) + [
        Select(T(testid="review-rating"), f"{inst['stars']} stars"),
        Type(T(testid="review-title"), inst["title"]),
        Type(T(testid="review-text"), inst["text"]),
        Click(T(testid="review-submit")),
        SAVED,
    ]
    return TaskSpec(HOME, ev, plan)


def inst_cancel(world: dict, rng: random.Random) -> list[dict]:
    return [{"order_id": o["id"]} for o in agent_orders(world) if o["status"] == "pending"]


def build_cancel(world: dict, inst: dict) -> TaskSpec:
    oid = inst["order_id"]
    ev = program_html(
        [
            check(
                url("shopping", f"/account/orders/{oid}"),
                testid_text("order-status"),
                exact_match="Canceled",
            )
        ]
    )
    plan = open_order(world, oid) + [Click(T(testid="cancel-order")), SAVED]
    return TaskSpec(HOME, ev, plan)


def inst_buy(world: dict, rng: random.Random) -> list[dict]:
    out = []
    for inst in inst_cart_add(world, rng):
        out.append({**inst, "shipping": rng.choice(sd.SHIPPING_METHODS)})
    return out


def build_buy(world: dict, inst: dict) -> TaskSpec:
    p = _p(world, inst)
    order_url = url("shopping", f"/account/orders/{store(world)['next_ids']['order']}")
    ev = program_html(
        [
            check(order_url, testid_text("order-items"), must_include=[p["name"]]),
            check(order_url, testid_text("order-shipping"), exact_match=inst["shipping"]),
        ]
    )
    plan = open_product(p) + [
        Click(T(testid="add-to-cart")),
        Click(T(testid="nav-cart")),
        Click(T(testid="proceed-to-checkout")),
        Select(T(testid="shipping-method"), inst["shipping"]),
        Click(T(testid="place-order")),
        SAVED,
    ]
    return TaskSpec(HOME, ev, plan)


def _has_reviews(world: dict):
    return lambda p: sd.rating(store(world), p["id"])[1] > 0


SITE = ("shopping",)

TEMPLATES = [
    Template(101, SITE, "What is the price of {{product}}?", "info", product_inst, build_price),
    Template(102, SITE, "How many customer reviews does {{product}} have?", "info", product_inst,
             build_review_count),
    Template(103, SITE, "What is the SKU of {{product}}?", "info", product_inst, build_sku),
    Template(104, SITE, "What is the average customer rating of {{product}}?", "info",
             lambda w, r: product_inst(w, r, _has_reviews(w)), build_rating),
    Template(105, SITE, "Which colors is {{product}} available in?", "info",
             lambda w, r: product_inst(w, r, lambda p: "Color" in p["options"]), build_colors),
    Template(106, SITE, "What was the grand total of my order #{{order_id}}?", "info",
             inst_orders, build_order_total),
    Template(107, SITE, "On what date did I place order #{{order_id}}? Answer as YYYY-MM-DD.",
             "info", inst_orders, build_order_date),
    Template(108, SITE, "How many of my orders have the status {{status}}?", "info",
             inst_status_count, build_status_count),
    Template(109, SITE, "Which product is the cheapest in the {{category}} category?", "info",
             inst_cheapest, build_cheapest),
    Template(110, SITE, "Show me the {{category}} category sorted by {{order}}.", "nav",
             inst_sorted, build_sorted),
    Template(111, SITE, "Search the store for {{query}}.", "nav", inst_query, build_query),
    Template(112, SITE, "Open the details page of my order #{{order_id}}.", "nav", inst_orders,
             build_order_page),
    Template(113, SITE, "Show me the product page of {{product}}.", "nav", product_inst,
             build_product_page),
    Template(114, SITE, "Add {{product}} to my wish list.", "state", inst_wishlist,
             build_wishlist),
    Template(115, SITE, "Add {{qty}} of {{product}} in color {{color}}, size {{size}} to my cart.",
             "state", inst_cart_options, build_cart_options),
    Template(116, SITE, "Add {{product}} to my shopping cart.", "state", inst_cart_add,
             build_cart_add),
    Template(117, SITE, "Change the quantity of {{product}} in my cart to {{qty}}.", "state",
             inst_cart_qty, build_cart_qty),
    Template(118, SITE, "Remove {{product}} from my shopping cart.", "state", inst_cart_remove,
             build_cart_remove),
    Template(119, SITE, "Update the phone number on my account to {{phone}}.", "state",
             inst_phone, build_phone),
    Template(120, SITE,
             "Change my default shipping address to {{street}}, {{city}}, {{state}} {{zip}}.",
             "state", inst_address, build_address),
    Template(121, SITE,
             'Write a {{stars}}-star review of {{product}} titled "{{title}}" with the text "{{text}}".',
             "state", inst_review, build_review),
    Template(122, SITE, "Cancel my order #{{order_id}}.", "state", inst_cancel, build_cancel),
    Template(123, SITE, "Buy {{product}} with {{shipping}} shipping.", "state", inst_buy,
             build_buy),
]  # fmt: skip
