"""Seed data for the reddit-like forum: users, forums, posts, comments and votes.

Everything is generated from the caller's `random.Random`, so a fixed seed gives the same forum.
"""

import random

AGENT_USER = "TidalNomad_88"

FORUMS = [
    ("books", "Books", "Reading, reviews and recommendations"),
    ("cycling", "Cycling", "Road, gravel and commuting by bike"),
    ("gardening", "Gardening", "Vegetables, flowers and everything green"),
    ("homebrewing", "Homebrewing", "Beer, cider and mead made at home"),
    ("photography", "Photography", "Cameras, lenses and your best shots"),
    ("cooking", "Cooking", "Recipes and kitchen techniques"),
    ("boardgames", "Board Games", "Tabletop games of every kind"),
    ("hiking", "Hiking", "Trails, gear and trip reports"),
    ("astronomy", "Astronomy", "Telescopes, stargazing and space news"),
    ("woodworking", "Woodworking", "Hand tools, power tools and projects"),
    ("running", "Running", "From couch to marathon"),
    ("aquariums", "Aquariums", "Freshwater and reef keeping"),
    ("chess", "Chess", "Openings, puzzles and tournaments"),
    ("programming", "Programming", "Code, tools and careers"),
    ("movies", "Movies", "Films old and new"),
    ("music", "Music", "Albums, gigs and instruments"),
    ("coffee", "Coffee", "Beans, brewing and cafes"),
    ("birding", "Birding", "Bird watching and identification"),
    ("knitting", "Knitting", "Patterns, yarn and finished objects"),
    ("localnews", "Local News", "What is happening around the valley"),
    ("diy", "DIY", "Home repair and improvement"),
    ("languages", "Languages", "Learning and teaching languages"),
]

FIRST = [
    "amber",
    "basil",
    "cedar",
    "dune",
    "ember",
    "fjord",
    "glade",
    "harbor",
    "iris",
    "juniper",
    "kestrel",
    "lumen",
    "maple",
    "nimbus",
    "onyx",
    "pebble",
    "quartz",
    "rowan",
    "sable",
    "thistle",
    "umber",
    "vesper",
    "willow",
    "yarrow",
    "zephyr",
    "birch",
    "coral",
    "delta",
    "echo",
    "flint",
]
SECOND = [
    "Fox",
    "Otter",
    "Heron",
    "Badger",
    "Lynx",
    "Wren",
    "Moth",
    "Crane",
    "Hare",
    "Owl",
    "Raven",
    "Seal",
    "Finch",
    "Newt",
    "Vole",
    "Stoat",
]

SUBJECTS = {
    "books": [
        "a mystery novel",
        "a fantasy series",
        "poetry collections",
        "a biography",
        "library sales",
    ],
    "cycling": [
        "gravel tyres",
        "a new saddle",
        "winter commuting",
        "chain waxing",
        "a century ride",
    ],
    "gardening": ["tomato blight", "raised beds", "compost bins", "spring bulbs", "slug control"],
    "homebrewing": [
        "a stout recipe",
        "dry hopping",
        "cider yeast",
        "bottle conditioning",
        "a mash tun",
    ],
    "photography": ["a prime lens", "night shots", "film cameras", "editing presets", "a tripod"],
    "cooking": ["sourdough starter", "a curry base", "cast iron pans", "knife skills", "meal prep"],
    "boardgames": [
        "a co-op game",
        "a worker placement game",
        "game night snacks",
        "card sleeves",
        "a trading game",
    ],
    "hiking": [
        "the ridge trail",
        "waterproof boots",
        "a two-day trek",
        "trail maps",
        "trekking poles",
    ],
    "astronomy": [
        "a dobsonian",
        "the meteor shower",
        "planet imaging",
        "dark sky sites",
        "star charts",
    ],
    "woodworking": [
        "a workbench",
        "dovetail joints",
        "sharpening chisels",
        "a hand plane",
        "finishing oil",
    ],
    "running": [
        "a 10k plan",
        "interval sessions",
        "trail shoes",
        "race nutrition",
        "a first marathon",
    ],
    "aquariums": [
        "a planted tank",
        "nitrate levels",
        "shrimp breeding",
        "a canister filter",
        "aquascaping",
    ],
    "chess": [
        "the London system",
        "endgame study",
        "blitz tilt",
        "a club tournament",
        "puzzle streaks",
    ],
    "programming": [
        "a Rust rewrite",
        "code review habits",
        "a side project",
        "test flakiness",
        "editor plugins",
    ],
    "movies": [
        "a director's cut",
        "film festivals",
        "a noir classic",
        "cinema snacks",
        "a trilogy",
    ],
    "music": ["a vinyl haul", "guitar pedals", "a live album", "practice routines", "a local gig"],
    "coffee": [
        "a hand grinder",
        "pour over ratios",
        "espresso channeling",
        "a new roastery",
        "cold brew",
    ],
    "birding": [
        "a rare warbler",
        "binoculars",
        "feeder visitors",
        "migration counts",
        "an owl pellet",
    ],
    "knitting": [
        "a cable sweater",
        "sock yarn",
        "blocking lace",
        "a colourwork hat",
        "circular needles",
    ],
    "localnews": [
        "the river bridge",
        "the farmers market",
        "road works",
        "the town fair",
        "a new library",
    ],
    "diy": ["a leaky tap", "drywall patches", "tiling a floor", "shelf brackets", "painting doors"],
    "languages": [
        "flashcard decks",
        "a language exchange",
        "irregular verbs",
        "podcast lessons",
        "accents",
    ],
}
TITLE_PATTERNS = [
    "Thoughts on {s}?",
    "My experience with {s}",
    "Need advice about {s}",
    "Finally tried {s}",
    "Is {s} worth it?",
    "Beginner question: {s}",
    "Weekly update on {s}",
    "Unpopular opinion about {s}",
    "Help with {s} please",
    "What I learned from {s}",
    "Comparing notes on {s}",
    "Photos of {s}",
]
BODY_SENTENCES = [
    "I have been thinking about this for a while.",
    "Any pointers would be appreciated.",
    "It went better than expected.",
    "Curious what everyone here thinks.",
    "The results surprised me.",
    "I wrote down everything I tried.",
    "Happy to share more details if useful.",
    "This is my second attempt this year.",
    "A friend recommended it last month.",
    "Still not sure it was the right call.",
]
COMMENTS = [
    "Great write-up, thanks for sharing.",
    "I had the same problem last year.",
    "Have you tried asking at the local club?",
    "This is really helpful.",
    "I disagree, but good points.",
    "Following for updates.",
    "Could you post a photo?",
    "Same here, it took me weeks.",
    "That is a clever approach.",
    "Welcome to the hobby!",
    "Check the sidebar, it is covered there.",
    "Nice result, well done.",
]


def _usernames(rng: random.Random, n: int) -> list[str]:
    names: list[str] = []
    while len(names) < n:
        name = f"{rng.choice(FIRST)}{rng.choice(SECOND)}{rng.randint(1, 99)}"
        if name not in names:
            names.append(name)
    return names


def seed_state(rng: random.Random) -> dict:
    """Build the forum's whole seed state from `rng` (plain data only)."""
    usernames = [AGENT_USER] + _usernames(rng, 59)
    users = {
        name: {
            "username": name,
            "name": name,
            "password": f"pw-{name.lower()}",
            "joined": f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        }
        for name in usernames
    }
    forums = {}
    for name, title, description in FORUMS:
        forums[name] = {
            "name": name,
            "title": title,
            "description": description,
            "created_by": rng.choice(usernames[1:]),
        }
    subscriptions = {name: sorted(rng.sample(usernames, rng.randint(3, 40))) for name in forums}
    subscriptions = {f: [u for u in subs if u != AGENT_USER] for f, subs in subscriptions.items()}
    for forum in rng.sample(sorted(forums), 4):
        subscriptions[forum].append(AGENT_USER)

    posts: dict[str, dict] = {}
    titles_seen: set[str] = set()
    post_id = 0
    for forum in forums:
        for _ in range(rng.randint(14, 24)):
            title = rng.choice(TITLE_PATTERNS).format(s=rng.choice(SUBJECTS[forum]))
            if title in titles_seen:
                continue
            titles_seen.add(title)
            post_id += 1
            author = AGENT_USER if rng.random() < 0.04 else rng.choice(usernames[1:])
            posts[str(post_id)] = {
                "id": post_id,
                "forum": forum,
                "author": author,
                "title": title,
                "body": " ".join(rng.sample(BODY_SENTENCES, rng.randint(1, 3))),
                "created": 1000 + post_id * 7 + rng.randint(0, 5),
            }
    # Shuffle creation times so "new" order differs from id order.
    order = list(posts)
    rng.shuffle(order)
    for rank, key in enumerate(order):
        posts[key]["created"] = 10_000 + rank * 37

    comments: dict[str, dict] = {}
    comment_id = 0
    for key in posts:
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3, 4, 5, 7])):
            comment_id += 1
            comments[str(comment_id)] = {
                "id": comment_id,
                "post": int(key),
                "author": AGENT_USER if rng.random() < 0.03 else rng.choice(usernames[1:]),
                "body": rng.choice(COMMENTS),
                "created": posts[key]["created"] + comment_id,
            }

    # votes: "post:<id>" / "comment:<id>" -> {username: +1 | -1}
    votes: dict[str, dict] = {}
    for key in posts:
        voters = rng.sample(usernames[1:], rng.randint(0, 30))
        votes[f"post:{key}"] = {v: (1 if rng.random() < 0.8 else -1) for v in voters}
    for key in comments:
        voters = rng.sample(usernames[1:], rng.randint(0, 8))
        votes[f"comment:{key}"] = {v: (1 if rng.random() < 0.75 else -1) for v in voters}
    return {
        "users": users,
        "forums": forums,
        "subscriptions": subscriptions,
        "posts": posts,
        "comments": comments,
        "votes": votes,
        "next_post_id": post_id + 1,
        "next_comment_id": comment_id + 1,
    }


def score(state: dict, kind: str, item_id: int) -> int:
    """Net votes of a post or comment."""
    return sum(state["votes"].get(f"{kind}:{item_id}", {}).values())


def karma(state: dict, username: str) -> int:
    """Sum of the scores of a user's posts and comments."""
    total = sum(
        score(state, "post", p["id"]) for p in state["posts"].values() if p["author"] == username
    )
    total += sum(
        score(state, "comment", c["id"])
        for c in state["comments"].values()
        if c["author"] == username
    )
    return total


def comment_count(state: dict, post_id: int) -> int:
    return sum(1 for c in state["comments"].values() if c["post"] == post_id)
