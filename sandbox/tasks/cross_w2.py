"""Cross-site templates of W2 (ids 650-699): gitlab+reddit and map+reddit, linked by the header's
site links (the agent has no "go to URL" action)."""

from __future__ import annotations

import random

from sandbox.oracle import Click, Exit, Select, T, Type
from sandbox.sites import gitlab_data as gd
from sandbox.sites import map_data as md
from sandbox.sites import reddit_data as rd
from sandbox.taskgen import TaskSpec, Template, check, program_html, sample, testid_text, url
from sandbox.tasks import gitlab as gt
from sandbox.tasks import map as mt
from sandbox.tasks import reddit as rt

PER_TEMPLATE = 24
PROFILE = url("reddit", f"/u/{rd.AGENT_USER}")


def go_to(site: str, label: str) -> Click:
    return Click(T(testid=f"site-{site}", text=label))


def submit_post(forum: str, title: str) -> list:
    return [
        Click(T(testid="nav-submit", text="Submit")),
        Select(T(testid="forum-select"), forum),
        Type(T(testid="title-input", placeholder="Title"), title),
        Click(T(testid="submit-post", text="Create post")),
    ]


def latest_post_checks(forum: str, title: str) -> list[dict]:
    return [
        check(PROFILE, testid_text("submission-0-title"), exact_match=title),
        check(PROFILE, testid_text("submission-0-forum"), exact_match=f"f/{forum}"),
    ]


# 650: gitlab star count posted to a forum -------------------------------------------------------
def _inst_650(world: dict, rng: random.Random) -> list[dict]:
    pairs = [
        (p, f)
        for p in sorted(world["gitlab"]["projects"])
        for f in ("programming", "localnews", "diy")
    ]
    return [{"project": p, "forum": f} for p, f in sample(pairs, rng, PER_TEMPLATE)]


def _build_650(world: dict, inst: dict) -> TaskSpec:
    n = gd.stars(world["gitlab"]["projects"][inst["project"]])
    title = f"Stars of {inst['project']}: {n}"
    plan = [
        *gt.open_project(inst["project"]),
        go_to("reddit", "Postmill"),
        *submit_post(inst["forum"], title),
        Exit(""),
    ]
    return TaskSpec(
        url("gitlab", "/"), program_html(latest_post_checks(inst["forum"], title)), plan
    )


# 651: top post of a forum filed as a gitlab issue -----------------------------------------------
def _inst_651(world: dict, rng: random.Random) -> list[dict]:
    forums = [
        f for f in sorted(world["reddit"]["forums"]) if rt._top_post(world["reddit"], f) is not None
    ]
    pairs = [(f, p) for f in forums for p in sorted(world["gitlab"]["projects"])]
    return [{"forum": f, "project": p} for f, p in sample(pairs, rng, PER_TEMPLATE)]


def _build_651(world: dict, inst: dict) -> TaskSpec:
    top = rt._top_post(world["reddit"], inst["forum"])
    plan = [
        *rt.open_forum(inst["forum"]),
        Click(T(testid="sort-top", text="Top")),
        go_to("gitlab", "GitLab"),
        *gt.open_project(inst["project"]),
        Click(T(testid="tab-issues", text="Issues")),
        Click(T(testid="new-issue", text="New issue")),
        Type(T(testid="issue-title-input", placeholder="Title"), top["title"]),
        Click(T(testid="create-issue", text="Create issue")),
        Exit(""),
    ]
    newest = "document.querySelector('[data-testid=\"issue-list\"] a')?.outerText ?? ''"
    checks = [
        check(url("gitlab", f"/{inst['project']}/-/issues"), newest, exact_match=top["title"])
    ]
    return TaskSpec(url("reddit", "/"), program_html(checks), plan)


# 652: a place's address as a reply ------------------------------------------------------------
def _inst_652(world: dict, rng: random.Random) -> list[dict]:
    posts = sample(rt._unique_title_posts(world), rng, PER_TEMPLATE)
    places = sample(mt._findable(world), rng, PER_TEMPLATE)
    return [
        {"title": p["title"], "place": pl["name"], "_post": p["id"], "_id": pl["id"]}
        for p, pl in zip(posts, places, strict=False)
    ]


def _build_652(world: dict, inst: dict) -> TaskSpec:
    post = rt._post(world, inst)
    place = mt._place(world, inst)
    address = md.address(place)
    plan = [
        *mt.open_place(place),
        go_to("reddit", "Postmill"),
        *rt.open_post(post),
        Type(T(testid="comment-input", placeholder="Write a comment"), address),
        Click(T(testid="comment-submit", text="Post comment")),
        Exit(""),
    ]
    checks = [check(rt.post_url(post), rt.agent_comments_locator(), must_include=[address])]
    return TaskSpec(url("map", "/"), program_html(checks), plan)


# 653: opening hours posted to a forum ---------------------------------------------------------
def _inst_653(world: dict, rng: random.Random) -> list[dict]:
    out = []
    for p in sample(mt._findable(world), rng, PER_TEMPLATE):
        out.append({"place": p["name"], "day": md.DAY_NAMES[rng.choice(md.DAYS)], "_id": p["id"]})
    return out


def _build_653(world: dict, inst: dict) -> TaskSpec:
    place = mt._place(world, inst)
    day = next(d for d, name in md.DAY_NAMES.items() if name == inst["day"])
    title = f"{place['name']} on {inst['day']}: {place['hours'][day]}"
    plan = [
        *mt.open_place(place),
        go_to("reddit", "Postmill"),
        *submit_post("localnews", title),
        Exit(""),
    ]
    return TaskSpec(url("map", "/"), program_html(latest_post_checks("localnews", title)), plan)


TEMPLATES: list[Template] = [
    Template(
        650,
        ("gitlab", "reddit"),
        'Create a post in f/{{forum}} titled "Stars of {{project}}: N", where N is the number of stars the GitLab project {{project}} has.',
        "state",
        _inst_650,
        _build_650,
    ),
    Template(
        651,
        ("reddit", "gitlab"),
        "Open an issue in the GitLab project {{project}} whose title is the title of the highest-scoring post in f/{{forum}}.",
        "state",
        _inst_651,
        _build_651,
    ),
    Template(
        652,
        ("map", "reddit"),
        'Reply to the Postmill post "{{title}}" with the full address of {{place}} as shown on the map.',
        "state",
        _inst_652,
        _build_652,
    ),
    Template(
        653,
        ("map", "reddit"),
        'Create a post in f/localnews titled "{{place}} on {{day}}: H", where H is its opening hours that day as shown on the map.',
        "state",
        _inst_653,
        _build_653,
    ),
]
