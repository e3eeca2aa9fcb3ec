"""Seed data of the store shared by `shopping` (storefront) and `shopping_admin` (back office).

Everything is plain dicts/lists/ints/strs, derived only from the given rng. Prices are in cents.
"""

from __future__ import annotations

import random

STORE_NAME = "Harbor Lane Market"
AGENT_EMAIL = "grace.holt@example.com"
ORDER_STATUSES = ["pending", "processing", "complete", "canceled", "closed"]
SHIPPING_METHODS = ["Flat Rate", "Standard Ground", "Express Two-Day"]
SHIPPING_CENTS = {"Flat Rate": 500, "Standard Ground": 799, "Express Two-Day": 1599}

CATEGORIES = [
    (
        "grocery",
        "Grocery & Gourmet",
        [
            "Coffee",
            "Tea",
            "Granola",
            "Olive Oil",
            "Honey",
            "Pasta",
            "Hot Sauce",
            "Crackers",
            "Trail Mix",
            "Jam",
        ],
    ),
    (
        "beauty",
        "Beauty & Care",
        [
            "Face Serum",
            "Hand Cream",
            "Shampoo",
            "Lip Balm",
            "Body Wash",
            "Sunscreen",
            "Face Mask",
            "Hair Oil",
            "Toner",
            "Soap Bar",
        ],
    ),
    (
        "kitchen",
        "Home & Kitchen",
        [
            "Skillet",
            "Chef Knife",
            "Cutting Board",
            "Kettle",
            "Mixing Bowl",
            "Dutch Oven",
            "Spatula Set",
            "Coffee Grinder",
            "Tea Towel",
            "Colander",
        ],
    ),
    (
        "electronics",
        "Electronics",
        [
            "Headphones",
            "Phone Charger",
            "Bluetooth Speaker",
            "USB Hub",
            "Webcam",
            "Power Bank",
            "Keyboard",
            "Mouse",
            "HDMI Cable",
            "Desk Lamp",
        ],
    ),
    (
        "outdoors",
        "Sports & Outdoors",
        [
            "Water Bottle",
            "Yoga Mat",
            "Tent",
            "Hiking Socks",
            "Headlamp",
            "Daypack",
            "Camp Chair",
            "Jump Rope",
            "Trekking Poles",
            "Cooler",
        ],
    ),
    (
        "clothing",
        "Clothing",
        [
            "T-Shirt",
            "Hoodie",
            "Rain Jacket",
            "Beanie",
            "Chinos",
            "Flannel Shirt",
            "Running Shorts",
            "Wool Sweater",
            "Scarf",
            "Denim Jacket",
        ],
    ),
    (
        "office",
        "Office Products",
        [
            "Notebook",
            "Gel Pens",
            "Desk Organizer",
            "Stapler",
            "Sticky Notes",
            "Planner",
            "Binder",
            "Whiteboard",
            "Label Maker",
            "Paper Tray",
        ],
    ),
    (
        "toys",
        "Toys & Games",
        [
            "Puzzle",
            "Board Game",
            "Building Blocks",
            "Plush Bear",
            "Card Game",
            "Kite",
            "Marble Run",
            "Yo-Yo",
            "Paint Set",
            "Toy Train",
        ],
    ),
    (
        "pets",
        "Pet Supplies",
        [
            "Dog Leash",
            "Cat Toy",
            "Pet Bed",
            "Dog Treats",
            "Litter Scoop",
            "Food Bowl",
            "Pet Brush",
            "Chew Toy",
            "Bird Feeder",
            "Fish Food",
        ],
    ),
    (
        "health",
        "Health & Household",
        [
            "Vitamin C",
            "First Aid Kit",
            "Hand Sanitizer",
            "Thermometer",
            "Dish Soap",
            "Laundry Pods",
            "Trash Bags",
            "Sponges",
            "Multivitamin",
            "Heating Pad",
        ],
    ),
]
BRANDS = [
    "Alder",
    "Brightwell",
    "Copperfield",
    "Dunmore",
    "Evergreen",
    "Fairhaven",
    "Granite",
    "Hollis",
    "Ironbark",
    "Juniper",
    "Kestrel",
    "Larkspur",
    "Maple Row",
    "Northwind",
    "Oakridge",
    "Pinecrest",
    "Quarry",
    "Riverstone",
    "Sagebrush",
    "Tidewater",
]
ADJECTIVES = ["Classic", "Deluxe", "Everyday", "Organic", "Compact", "Premium", "Travel", "Pro"]
COLORS = ["Black", "Blue", "Green", "Gray", "Red", "White"]
SIZES = ["XS", "S", "M", "L", "XL"]
FIRST = [
    "Aiden",
    "Bella",
    "Carlos",
    "Dana",
    "Elias",
    "Fiona",
    "Gavin",
    "Hana",
    "Ivan",
    "Jade",
    "Kofi",
    "Lena",
    "Marco",
    "Nadia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Umar",
    "Vera",
    "Wes",
    "Ximena",
    "Yusuf",
    "Zoe",
    "Ada",
    "Ben",
    "Cleo",
    "Dev",
    "Esme",
    "Finn",
    "Gia",
    "Hugo",
    "Iris",
    "Jonah",
    "Kira",
    "Liam",
    "Maya",
    "Noah",
]
LAST = [
    "Abbott",
    "Barros",
    "Chen",
    "Dorsey",
    "Eklund",
    "Farouk",
    "Garza",
    "Haines",
    "Ibarra",
    "Jensen",
    "Kowal",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quist",
    "Ruiz",
    "Sato",
    "Thorne",
    "Usman",
    "Varga",
    "Whitfield",
    "Xu",
    "Yilmaz",
    "Zeller",
]
CITIES = [
    ("Portland", "OR", "97201"),
    ("Austin", "TX", "78701"),
    ("Denver", "CO", "80202"),
    ("Madison", "WI", "53703"),
    ("Raleigh", "NC", "27601"),
    ("Tucson", "AZ", "85701"),
    ("Boise", "ID", "83702"),
    ("Albany", "NY", "12207"),
]
STREETS = ["Cedar St", "Birch Ave", "Harbor Rd", "Mill Ln", "Summit Blvd", "Lake Dr", "Elm Ct"]
REVIEW_TITLES = {
    5: ["Love it", "Excellent quality", "Would buy again"],
    4: ["Very good", "Solid choice", "Nice value"],
    3: ["It's okay", "Average", "Does the job"],
    2: ["Disappointing", "Not great", "Meh"],
    1: ["Broke quickly", "Waste of money", "Terrible"],
}
REVIEW_TEXTS = {
    5: "Exactly as described and arrived fast.",
    4: "Works well, a few small quirks.",
    3: "Fine for the price, nothing special.",
    2: "Quality is lower than expected.",
    1: "Stopped working after a week.",
}


def _person(rng: random.Random, first: str, last: str, index: int) -> dict:
    city, state, zip_code = CITIES[index % len(CITIES)]
    email = f"{first.lower()}.{last.lower()}@example.com"
    return {
        "username": email,
        "email": email,
        "password": f"{first}Pass{index:02d}!",
        "name": f"{first} {last}",
        "customer_id": index + 1,
        "phone": f"555-{rng.randint(200, 899)}-{rng.randint(1000, 9999)}",
        "address": {
            "street": f"{rng.randint(10, 9899)} {rng.choice(STREETS)}",
            "city": city,
            "state": state,
            "zip": zip_code,
        },
        "group": rng.choice(["General", "Wholesale", "VIP"]),
        "joined": f"2021-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
    }


def _customers(rng: random.Random) -> dict:
    users = {}
    agent = _person(rng, "Grace", "Holt", 0)
    agent["password"] = "HarborLane2024!"
    users[agent["email"]] = agent
    pairs = [(f, last) for f in FIRST for last in LAST]
    rng.shuffle(pairs)
    for index, (first, last) in enumerate(pairs[:47], start=1):
        person = _person(rng, first, last, index)
        users[person["email"]] = person
    return users


def _products(rng: random.Random) -> list[dict]:
    products = []
    names = set()
    for slug, _title, nouns in CATEGORIES:
        for noun in nouns:
            for _ in range(3):
                while True:
                    name = f"{rng.choice(BRANDS)} {rng.choice(ADJECTIVES)} {noun}"
                    if name not in names:
                        names.add(name)
                        break
                options = {}
                if slug == "clothing":
                    options = {"Color": rng.sample(COLORS, 3), "Size": list(SIZES)}
                elif slug in ("electronics", "outdoors") and rng.random() < 0.5:
                    options = {"Color": rng.sample(COLORS, 2)}
                pid = len(products) + 1
                products.append(
                    {
                        "id": pid,
                        "sku": f"{slug[:3].upper()}-{1000 + pid}",
                        "name": name,
                        "category": slug,
                        "price": rng.randint(3, 180) * 100 + rng.choice([0, 49, 95, 99]),
                        "qty": rng.randint(0, 250),
                        "status": "enabled" if rng.random() > 0.04 else "disabled",
                        "options": options,
                        "description": f"The {name.lower()} from {name.split()[0]}: "
                        f"{rng.choice(['durable', 'lightweight', 'bestselling', 'new'])} "
                        f"and {rng.choice(['easy to use', 'built to last', 'great value'])}.",
                    }
                )
    return products


def _reviews(rng: random.Random, products: list[dict], users: dict) -> list[dict]:
    reviews = []
    authors = [u["name"] for u in users.values() if u["email"] != AGENT_EMAIL]
    for product in products:
        for _ in range(rng.choice([0, 1, 2, 3, 4, 5])):
            rating = rng.choices([1, 2, 3, 4, 5], weights=[1, 1, 2, 4, 5])[0]
            reviews.append(
                {
                    "id": len(reviews) + 1,
                    "product_id": product["id"],
                    "author": rng.choice(authors),
                    "rating": rating,
                    "title": rng.choice(REVIEW_TITLES[rating]),
                    "text": REVIEW_TEXTS[rating],
                    "status": "approved" if rng.random() > 0.12 else "pending",
                    "date": f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                }
            )
    return reviews


def _orders(rng: random.Random, products: list[dict], users: dict) -> list[dict]:
    orders = []
    emails = list(users)
    plan = [(AGENT_EMAIL, 26)] + [(e, rng.randint(2, 9)) for e in emails[1:]]
    dated = []
    for email, count in plan:
        for _ in range(count):
            year = rng.choice([2022, 2023])
            date = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            dated.append((date, email))
    dated.sort()
    for date, email in dated:
        items = []
        for product in rng.sample(products, rng.randint(1, 4)):
            options = {k: rng.choice(v) for k, v in product["options"].items()}
            items.append(
                {
                    "product_id": product["id"],
                    "name": product["name"],
                    "sku": product["sku"],
                    "qty": rng.randint(1, 3),
                    "price": product["price"],
                    "options": options,
                }
            )
        method = rng.choice(SHIPPING_METHODS)
        subtotal = sum(i["qty"] * i["price"] for i in items)
        status = rng.choices(ORDER_STATUSES, weights=[2, 2, 8, 2, 1])[0]
        orders.append(
            {
                "id": 1000 + len(orders) + 1,
                "customer": email,
                "date": date,
                "status": status,
                "items": items,
                "shipping_method": method,
                "subtotal": subtotal,
                "shipping": SHIPPING_CENTS[method],
                "total": subtotal + SHIPPING_CENTS[method],
                "address": dict(users[email]["address"]),
                "comments": [],
            }
        )
    return orders


def store_seed(rng: random.Random) -> dict:
    """The whole store: categories, products, reviews, customers, orders, carts, wishlists."""
    users = _customers(rng)
    products = _products(rng)
    agent_wishlist = [p["id"] for p in rng.sample(products, 4)]
    agent_cart = [
        {"product_id": p["id"], "qty": 1, "options": {}}
        for p in rng.sample([p for p in products if not p["options"]], 2)
    ]
    orders = _orders(rng, products, users)
    reviews = _reviews(rng, products, users)
    return {
        "store_name": STORE_NAME,
        "categories": [{"slug": s, "name": n} for s, n, _ in CATEGORIES],
        "products": products,
        "reviews": reviews,
        "users": users,
        "orders": orders,
        "carts": {AGENT_EMAIL: agent_cart},
        "wishlists": {AGENT_EMAIL: agent_wishlist},
        "newsletter": {AGENT_EMAIL: False},
        "sessions": {},
        "next_ids": {"order": 1000 + len(orders) + 1, "review": len(reviews) + 1},
    }


# Queries shared by the storefront, the back office and the task templates.


def product(store: dict, pid: int) -> dict | None:
    if 1 <= pid <= len(store["products"]):
        return store["products"][pid - 1]
    return None


def approved_reviews(store: dict, pid: int) -> list[dict]:
    return [r for r in store["reviews"] if r["product_id"] == pid and r["status"] == "approved"]


def rating(store: dict, pid: int) -> tuple[float | None, int]:
    """Average approved rating (1 decimal) and review count."""
    reviews = approved_reviews(store, pid)
    if not reviews:
        return None, 0
    return round(sum(r["rating"] for r in reviews) / len(reviews), 1), len(reviews)


def customer_orders(store: dict, email: str) -> list[dict]:
    """A customer's orders, newest first."""
    return sorted(
        (o for o in store["orders"] if o["customer"] == email),
        key=lambda o: (o["date"], o["id"]),
        reverse=True,
    )


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def search_products(store: dict, query: str, include_disabled: bool = False) -> list[dict]:
    """Products whose name, SKU or category contains every word of the query."""
    words = query.casefold().split()
    found = []
    for p in store["products"]:
        if p["status"] != "enabled" and not include_disabled:
            continue
        hay = f"{p['name']} {p['sku']} {p['category']}".casefold()
        if all(w in hay for w in words):
            found.append(p)
    return found


def bestsellers(store: dict, period: str) -> list[dict]:
    """Units sold per product in orders dated with the `period` prefix ("2023" or "2023-04"),
    not canceled; sorted by units desc, then name."""
    units: dict[int, int] = {}
    for order in store["orders"]:
        if order["status"] == "canceled" or not order["date"].startswith(period):
            continue
        for item in order["items"]:
            units[item["product_id"]] = units.get(item["product_id"], 0) + item["qty"]
    rows = [
        {"product_id": pid, "name": product(store, pid)["name"], "units": n}
        for pid, n in units.items()
    ]
    rows.sort(key=lambda r: (-r["units"], r["name"]))
    return rows
