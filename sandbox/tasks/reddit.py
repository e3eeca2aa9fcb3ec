"""Task templates on the reddit-like forum (ids 300-399): reading posts, finding pages, voting and writing.

Answers are computed from the seed state; plans reach posts through the search box and forums
through the forum list, as a person would.
"""

from __future__ import annotations

import random

from sandbox.oracle import Click, Exit, Search, Select, T, Type
from sandbox.sites import reddit_data as rd
from sandbox.taskgen import (
    TaskSpec,
    Template,
    check,
    exact_match,
    must_include,
    program_html,
    sample,
    testid_text,
    url,
    url_match,
)

AGENT = rd.AGENT_USER
PER_TEMPLATE = 24
HOME = url("reddit", "/")


def agent_comments_locator(author: str = AGENT) -> str:
    """JS: the bodies of `author`'s comments on the current post page, joined."""
    return (
        f"[...document.querySelectorAll('[data-author=\"{author}\"] .comment-body')]"
        ".map(e => e.outerText).join(' | ')"
    )


def open_post(post: dict) -> list:
    """Plan steps from any forum page to a post's own page, through the search box."""
    return [
        Search(T(testid="search-input"), post["title"]),
        Click(T(testid=f"post-{post['id']}-title", text=post["title"])),
    ]


def open_forum(name: str) -> list:
    return [
        Click(T(testid="nav-forums", text="Forums")),
        Click(T(testid=f"forum-{name}", text=f"f/{name}")),
    ]


def post_url(post: dict) -> str:
    return url("reddit", f"/f/{post['forum']}/{post['id']}")


def _posts(world: dict) -> list[dict]:
    return list(world["reddit"]["posts"].values())


def _unique_title_posts(world: dict) -> list[dict]:
    """Posts whose title is not a substring of another title (so searching finds exactly it first)."""
    titles = [p["title"] for p in _posts(world)]
    return [p for p in _posts(world) if sum(p["title"] in t for t in titles) == 1]


def _post_inst(world: dict, rng: random.Random, extra=None, keep=None) -> list[dict]:
    state = world["reddit"]
    out = []
    for p in sample(_unique_title_posts(world), rng, len(state["posts"])):
        if keep is not None and not keep(state, p):
            continue
        inst = {"title": p["title"], "_post": p["id"]}
        if extra is not None:
            inst.update(extra(state, p, rng))
        out.append(inst)
        if len(out) >= PER_TEMPLATE:
            break
    return out


def _post(world: dict, inst: dict) -> dict:
    return world["reddit"]["posts"][str(inst["_post"])]


# 300: comment count ---------------------------------------------------------------------------
def _build_300(world: dict, inst: dict) -> TaskSpec:
    post = _post(world, inst)
    n = rd.comment_count(world["reddit"], post["id"])
    return TaskSpec(HOME, exact_match(str(n)), [*open_post(post), Exit(str(n))])


# 301: author ----------------------------------------------------------------------------------
def _build_301(world: dict, inst: dict) -> TaskSpec:
    post = _post(world, inst)
    return TaskSpec(HOME, must_include([post["author"]]), [*open_post(post), Exit(post["author"])])


# 302: karma of a post's author ------------------------------------------------------------------
def _build_302(world: dict, inst: dict) -> TaskSpec:
    post = _post(world, inst)
    k = rd.karma(world["reddit"], post["author"])
    plan = [*open_post(post), Click(T(testid="post-author", text=post["author"])), Exit(str(k))]
    return TaskSpec(HOME, exact_match(str(k)), plan)


# 303: forum subscribers -----------------------------------------------------------------------
def _inst_forums(world: dict, rng: random.Random) -> list[dict]:
    return [
        {"forum": name} for name in sample(sorted(world["reddit"]["forums"]), rng, PER_TEMPLATE)
    ]


def _build_303(world: dict, inst: dict) -> TaskSpec:
    n = len(world["reddit"]["subscriptions"][inst["forum"]])
    return TaskSpec(HOME, exact_match(str(n)), [*open_forum(inst["forum"]), Exit(str(n))])


# 304: top post of a forum ---------------------------------------------------------------------
def _top_post(state: dict, forum: str) -> dict | None:
    """The single highest-scoring post of a forum, or None when the top score is tied."""
    posts = [p for p in state["posts"].values() if p["forum"] == forum]
    ranked = sorted(posts, key=lambda p: -rd.score(state, "post", p["id"]))
    if len(ranked) < 2 or rd.score(state, "post", ranked[0]["id"]) == rd.score(
        state, "post", ranked[1]["id"]
    ):
        return None
    return ranked[0]


def _inst_304(world: dict, rng: random.Random) -> list[dict]:
    return [
        i for i in _inst_forums(world, rng) if _top_post(world["reddit"], i["forum"]) is not None
    ]


def _build_304(world: dict, inst: dict) -> TaskSpec:
    top = _top_post(world["reddit"], inst["forum"])
    plan = [*open_forum(inst["forum"]), Click(T(testid="sort-top", text="Top")), Exit(top["title"])]
    return TaskSpec(HOME, must_include([top["title"]]), plan)


# 305: forum sorted ----------------------------------------------------------------------------
def _inst_305(world: dict, rng: random.Random) -> list[dict]:
    forums = sorted(world["reddit"]["forums"])
    pairs = [(f, s) for f in forums for s in ("new", "top")]
    return [{"forum": f, "sort": s} for f, s in sample(pairs, rng, PER_TEMPLATE)]


def _build_305(world: dict, inst: dict) -> TaskSpec:
    f, s = inst["forum"], inst["sort"]
    plan = [*open_forum(f), Click(T(testid=f"sort-{s}", text=s.capitalize())), Exit("")]
    return TaskSpec(HOME, url_match(url("reddit", f"/f/{f}?sort={s}")), plan)


# 306: author's profile page -------------------------------------------------------------------
def _build_306(world: dict, inst: dict) -> TaskSpec:
    post = _post(world, inst)
    plan = [*open_post(post), Click(T(testid="post-author", text=post["author"])), Exit("")]
    return TaskSpec(HOME, url_match(url("reddit", f"/u/{post['author']}")), plan)


# 307/308: votes -------------------------------------------------------------------------------
def _not_voted(state: dict, post: dict) -> bool:
    return AGENT not in state["votes"].get(f"post:{post['id']}", {})


def _vote_builder(direction: str):
    label = "Upvoted" if direction == "up" else "Downvoted"

    def build(world: dict, inst: dict) -> TaskSpec:
        post = _post(world, inst)
        testid = f"post-{post['id']}-{direction}vote"
        plan = [*open_post(post), Click(T(testid=testid)), Exit("")]
        return TaskSpec(
            HOME,
            program_html([check(post_url(post), testid_text(testid), exact_match=label)]),
            plan,
        )

    return build


# 309: subscribe -------------------------------------------------------------------------------
def _inst_309(world: dict, rng: random.Random) -> list[dict]:
    subs = world["reddit"]["subscriptions"]
    return [i for i in _inst_forums(world, rng) if AGENT not in subs[i["forum"]]]


def _build_309(world: dict, inst: dict) -> TaskSpec:
    f = inst["forum"]
    plan = [*open_forum(f), Click(T(testid="subscribe-button", text="Subscribe")), Exit("")]
    checks = [
        check(url("reddit", f"/f/{f}"), testid_text("subscribe-button"), exact_match="Unsubscribe")
    ]
    return TaskSpec(HOME, program_html(checks), plan)


# 310: create a post ---------------------------------------------------------------------------
NEW_TITLES = [
    "Looking for a {x} buddy this weekend",
    "Just joined: hello from a {x} fan",
    "Anyone going to the {x} meetup?",
    "Best {x} spots around the valley",
    "Sharing my {x} progress this month",
]
NEW_BODIES = [
    "Drop a comment if interested.",
    "Happy to hear any suggestions.",
    "Details to follow soon.",
]


def _inst_310(world: dict, rng: random.Random) -> list[dict]:
    forums = sorted(world["reddit"]["forums"])
    combos = [(f, t, b) for f in forums for t in NEW_TITLES for b in NEW_BODIES]
    out = []
    for f, t, b in sample(combos, rng, PER_TEMPLATE):
        title = t.format(x=world["reddit"]["forums"][f]["title"].lower())
        out.append({"forum": f, "new_title": title, "body": b})
    return out


def _build_310(world: dict, inst: dict) -> TaskSpec:
    plan = [
        Click(T(testid="nav-submit", text="Submit")),
        Select(T(testid="forum-select"), inst["forum"]),
        Type(T(testid="title-input", placeholder="Title"), inst["new_title"]),
        Type(T(testid="body-input", placeholder="Body"), inst["body"]),
        Click(T(testid="submit-post", text="Create post")),
        Exit(""),
    ]
    profile = url("reddit", f"/u/{AGENT}")
    checks = [
        check(profile, testid_text("submission-0-title"), exact_match=inst["new_title"]),
        check(profile, testid_text("submission-0-forum"), exact_match=f"f/{inst['forum']}"),
    ]
    return TaskSpec(HOME, program_html(checks), plan)


# 311: reply to a post -------------------------------------------------------------------------
REPLIES = [
    "Thanks, this was really useful",
    "Count me in for next time",
    "Great question, I wondered the same",
    "I will try this tomorrow",
    "Bookmarking this for later",
]


def _build_311(world: dict, inst: dict) -> TaskSpec:
    post = _post(world, inst)
    plan = [
        *open_post(post),
        Type(T(testid="comment-input", placeholder="Write a comment"), inst["reply"]),
        Click(T(testid="comment-submit", text="Post comment")),
        Exit(""),
    ]
    checks = [check(post_url(post), agent_comments_locator(), must_include=[inst["reply"]])]
    return TaskSpec(HOME, program_html(checks), plan)


# 312: edit own post ---------------------------------------------------------------------------
EDITED_BODIES = [
    "Update: solved, thanks everyone.",
    "Edit: I no longer need help with this.",
    "Update: see the comments for the answer.",
    "Edit: added more details below.",
]


def _build_312(world: dict, inst: dict) -> TaskSpec:
    post = _post(world, inst)
    plan = [
        *open_post(post),
        Click(T(testid="edit-post", text="Edit post")),
        Type(T(testid="body-input", placeholder="Body"), inst["body"]),
        Click(T(testid="save-post", text="Save post")),
        Exit(""),
    ]
    checks = [check(post_url(post), testid_text("post-body"), exact_match=inst["body"])]
    return TaskSpec(HOME, program_html(checks), plan)


# 313: edit own comment ------------------------------------------------------------------------
def _own_comment(state: dict, post: dict) -> dict | None:
    mine = [
        c for c in state["comments"].values() if c["post"] == post["id"] and c["author"] == AGENT
    ]
    return mine[0] if len(mine) == 1 else None


def _build_313(world: dict, inst: dict) -> TaskSpec:
    post = _post(world, inst)
    comment = _own_comment(world["reddit"], post)
    plan = [
        *open_post(post),
        Click(T(testid=f"comment-{comment['id']}-edit", text="Edit comment")),
        Type(T(testid="comment-input", placeholder="Comment"), inst["reply"]),
        Click(T(testid="save-comment", text="Save comment")),
        Exit(""),
    ]
    body_id = f"comment-{comment['id']}-body"
    return TaskSpec(
        HOME,
        program_html([check(post_url(post), testid_text(body_id), exact_match=inst["reply"])]),
        plan,
    )


def _reply(state: dict, post: dict, rng: random.Random) -> dict:
    return {"reply": rng.choice(REPLIES)}


def _body(state: dict, post: dict, rng: random.Random) -> dict:
    return {"body": rng.choice(EDITED_BODIES)}


def _mine(state: dict, post: dict) -> bool:
    return post["author"] == AGENT


def _has_own_comment(state: dict, post: dict) -> bool:
    return _own_comment(state, post) is not None


def _t(tid, intent, kind, inst, build) -> Template:
    return Template(tid, ("reddit",), intent, kind, inst, build)


TEMPLATES: list[Template] = [
    _t(
        300,
        'How many comments does the post "{{title}}" have?',
        "info",
        lambda w, r: _post_inst(w, r),
        _build_300,
    ),
    _t(
        301,
        'Who posted "{{title}}" on Postmill?',
        "info",
        lambda w, r: _post_inst(w, r),
        _build_301,
    ),
    _t(
        302,
        'What is the karma of the user who posted "{{title}}"?',
        "info",
        lambda w, r: _post_inst(w, r),
        _build_302,
    ),
    _t(
        303,
        "How many subscribers does the forum f/{{forum}} have?",
        "info",
        _inst_forums,
        _build_303,
    ),
    _t(
        304,
        "What is the title of the highest-scoring post in f/{{forum}}?",
        "info",
        _inst_304,
        _build_304,
    ),
    _t(305, "Show me the posts of f/{{forum}} sorted by {{sort}}.", "nav", _inst_305, _build_305),
    _t(
        306,
        'Open the profile page of the user who posted "{{title}}".',
        "nav",
        lambda w, r: _post_inst(w, r),
        _build_306,
    ),
    _t(
        307,
        'Upvote the post "{{title}}".',
        "state",
        lambda w, r: _post_inst(w, r, keep=_not_voted),
        _vote_builder("up"),
    ),
    _t(
        308,
        'Downvote the post "{{title}}".',
        "state",
        lambda w, r: _post_inst(w, r, keep=_not_voted),
        _vote_builder("down"),
    ),
    _t(309, "Subscribe to the forum f/{{forum}}.", "state", _inst_309, _build_309),
    _t(
        310,
        'Create a post in f/{{forum}} titled "{{new_title}}" with the body "{{body}}".',
        "state",
        _inst_310,
        _build_310,
    ),
    _t(
        311,
        'Reply to the post "{{title}}" with the comment "{{reply}}".',
        "state",
        lambda w, r: _post_inst(w, r, extra=_reply),
        _build_311,
    ),
    _t(
        312,
        'Edit my post "{{title}}" so that its body reads "{{body}}".',
        "state",
        lambda w, r: _post_inst(w, r, extra=_body, keep=_mine),
        _build_312,
    ),
    _t(
        313,
        'Change my comment on the post "{{title}}" to "{{reply}}".',
        "state",
        lambda w, r: _post_inst(w, r, extra=_reply, keep=_has_own_comment),
        _build_313,
    ),
]
