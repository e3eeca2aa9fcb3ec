"""The reddit-like forum (Postmill's image): forums, posts, comments, votes, user pages, editing.

State layout is documented in `reddit_data.seed_state`; every write goes through a small helper here.
"""

from __future__ import annotations

import random

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.sites import reddit_data as data
from sandbox.sites.reddit_data import comment_count, karma, score
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

SITE = "reddit"
AGENT_USER = data.AGENT_USER
SORTS = ["hot", "new", "top"]


def seed_state(rng: random.Random) -> dict:
    return data.seed_state(rng)


def sort_posts(state: dict, posts: list[dict], sort: str) -> list[dict]:
    """hot = score with a decay for age; new = newest first; top = score, ties newest first."""
    newest = max((p["created"] for p in state["posts"].values()), default=0)
    if sort == "new":
        return sorted(posts, key=lambda p: -p["created"])
    if sort == "top":
        return sorted(posts, key=lambda p: (-score(state, "post", p["id"]), -p["created"]))
    return sorted(
        posts,
        key=lambda p: (-(score(state, "post", p["id"]) - (newest - p["created"]) / 2000), -p["id"]),
    )


def _rows(state: dict, posts: list[dict], username: str | None) -> list[dict]:
    return [
        {
            **p,
            "score": score(state, "post", p["id"]),
            "comments": comment_count(state, p["id"]),
            "my_vote": state["votes"].get(f"post:{p['id']}", {}).get(username or "", 0),
        }
        for p in posts
    ]


def _listing(request: Request, posts: list[dict], base: str, extra: dict) -> dict:
    state = ctx(request).state
    sort = request.query_params.get("sort", "hot")
    sort = sort if sort in SORTS else "hot"
    page = paginate(sort_posts(state, posts, sort), int_param(request, "page"))
    user = current_user(request)
    page["items"] = _rows(state, page["items"], user["username"] if user else None)
    links = page_links(base, {"sort": sort, **extra}, page)
    return {"page": page, "sort": sort, "sorts": SORTS, "base": base, **links}


async def front(request: Request) -> Response:
    state = ctx(request).state
    listing = _listing(request, list(state["posts"].values()), "/", {})
    return render(request, "reddit/front.html", {"title": "All posts", **listing})


async def forums(request: Request) -> Response:
    state = ctx(request).state
    rows = [
        {
            **f,
            "subscribers": len(state["subscriptions"].get(f["name"], [])),
            "posts": sum(1 for p in state["posts"].values() if p["forum"] == f["name"]),
        }
        for f in sorted(state["forums"].values(), key=lambda f: f["name"])
    ]
    page = paginate(rows, int_param(request, "page"), per_page=30)
    return render(request, "reddit/forums.html", {"page": page, **page_links("/forums", {}, page)})


async def forum(request: Request) -> Response:
    state = ctx(request).state
    name = request.path_params["forum"]
    f = state["forums"].get(name)
    if f is None:
        return not_found(request, "Forum")
    posts = [p for p in state["posts"].values() if p["forum"] == name]
    listing = _listing(request, posts, f"/f/{name}", {})
    user = current_user(request)
    subs = state["subscriptions"].get(name, [])
    context = {
        "forum": f,
        "subscribers": len(subs),
        "subscribed": bool(user and user["username"] in subs),
        **listing,
    }
    return render(request, "reddit/forum.html", context)


async def subscribe(request: Request) -> Response:
    if (denied := login_required(request)) is not None:
        return denied
    state = ctx(request).state
    name = request.path_params["forum"]
    if name not in state["forums"]:
        return not_found(request, "Forum")
    username = current_user(request)["username"]
    subs = state["subscriptions"].setdefault(name, [])
    if username in subs:
        subs.remove(username)
        return redirect(f"/f/{name}", flash=f"Unsubscribed from f/{name}.")
    subs.append(username)
    return redirect(f"/f/{name}", flash=f"Subscribed to f/{name}.")


def _post_or_none(request: Request) -> dict | None:
    state = ctx(request).state
    post = state["posts"].get(str(request.path_params["post_id"]))
    if post is None or post["forum"] != request.path_params["forum"]:
        return None
    return post


async def post_page(request: Request) -> Response:
    state = ctx(request).state
    post = _post_or_none(request)
    if post is None:
        return not_found(request, "Post")
    user = current_user(request)
    username = user["username"] if user else ""
    comments = sorted(
        (c for c in state["comments"].values() if c["post"] == post["id"]),
        key=lambda c: c["created"],
    )
    rows = [
        {
            **c,
            "score": score(state, "comment", c["id"]),
            "my_vote": state["votes"].get(f"comment:{c['id']}", {}).get(username, 0),
        }
        for c in comments
    ]
    context = {
        "post": _rows(state, [post], username)[0],
        "comments": rows,
        "forum": state["forums"][post["forum"]],
    }
    return render(request, "reddit/post.html", context)


async def comment_create(request: Request) -> Response:
    if (denied := login_required(request)) is not None:
        return denied
    state = ctx(request).state
    post = _post_or_none(request)
    if post is None:
        return not_found(request, "Post")
    body = (await form(request)).get("body", "").strip()
    url = f"/f/{post['forum']}/{post['id']}"
    if not body:
        return redirect(url, flash="A comment cannot be empty.")
    cid = state["next_comment_id"]
    state["next_comment_id"] += 1
    newest = max((c["created"] for c in state["comments"].values()), default=0)
    state["comments"][str(cid)] = {
        "id": cid,
        "post": post["id"],
        "author": current_user(request)["username"],
        "body": body[:5000],
        "created": max(newest, post["created"]) + 1,
    }
    return redirect(url + f"#comment-{cid}", flash="Your comment was posted.")


async def vote(request: Request) -> Response:
    if (denied := login_required(request)) is not None:
        return denied
    state = ctx(request).state
    kind = request.path_params["kind"]
    item_id = request.path_params["item_id"]
    table = {"post": state["posts"], "comment": state["comments"]}.get(kind)
    if table is None or str(item_id) not in table:
        return not_found(request, "Item")
    values = await form(request)
    direction = {"up": 1, "down": -1}.get(values.get("direction", ""))
    post = (
        table[str(item_id)] if kind == "post" else state["posts"][str(table[str(item_id)]["post"])]
    )
    back = values.get("next", "")
    back = back if back.startswith("/") else f"/f/{post['forum']}/{post['id']}"
    if direction is None:
        return redirect(back, flash="Unknown vote direction.")
    username = current_user(request)["username"]
    votes = state["votes"].setdefault(f"{kind}:{item_id}", {})
    if votes.get(username) == direction:
        del votes[username]
        return redirect(back, flash="Vote removed.")
    votes[username] = direction
    return redirect(back, flash="Vote recorded.")


async def submit(request: Request) -> Response:
    if (denied := login_required(request)) is not None:
        return denied
    state = ctx(request).state
    names = sorted(state["forums"])
    if request.method == "GET":
        chosen = request.query_params.get("forum", "")
        context = {"forums": names, "chosen": chosen, "values": {}, "error": None}
        return render(request, "reddit/submit.html", context)
    values = await form(request)
    title, body, name = (values.get(k, "").strip() for k in ("title", "body", "forum"))
    error = None
    if name not in state["forums"]:
        error = "Choose a forum."
    elif not title:
        error = "The title is required."
    if error:
        context = {"forums": names, "chosen": name, "values": values, "error": error}
        return render(request, "reddit/submit.html", context, status=400)
    pid = state["next_post_id"]
    state["next_post_id"] += 1
    newest = max((p["created"] for p in state["posts"].values()), default=0)
    state["posts"][str(pid)] = {
        "id": pid,
        "forum": name,
        "author": current_user(request)["username"],
        "title": title[:300],
        "body": body[:10000],
        "created": newest + 1,
    }
    return redirect(f"/f/{name}/{pid}", flash="Your post was submitted.")


async def post_edit(request: Request) -> Response:
    if (denied := login_required(request)) is not None:
        return denied
    post = _post_or_none(request)
    if post is None:
        return not_found(request, "Post")
    url = f"/f/{post['forum']}/{post['id']}"
    if post["author"] != current_user(request)["username"]:
        return redirect(url, flash="You can only edit your own posts.")
    if request.method == "GET":
        return render(request, "reddit/post_edit.html", {"post": post, "error": None})
    values = await form(request)
    title = values.get("title", "").strip()
    if not title:
        return render(
            request, "reddit/post_edit.html", {"post": post, "error": "The title is required."}, 400
        )
    post["title"] = title[:300]
    post["body"] = values.get("body", "").strip()[:10000]
    return redirect(url, flash="Your post was updated.")


async def comment_edit(request: Request) -> Response:
    if (denied := login_required(request)) is not None:
        return denied
    state = ctx(request).state
    comment = state["comments"].get(str(request.path_params["comment_id"]))
    if comment is None:
        return not_found(request, "Comment")
    post = state["posts"][str(comment["post"])]
    url = f"/f/{post['forum']}/{post['id']}"
    if comment["author"] != current_user(request)["username"]:
        return redirect(url, flash="You can only edit your own comments.")
    if request.method == "GET":
        return render(
            request, "reddit/comment_edit.html", {"comment": comment, "post": post, "error": None}
        )
    body = (await form(request)).get("body", "").strip()
    if not body:
        context = {"comment": comment, "post": post, "error": "A comment cannot be empty."}
        return render(request, "reddit/comment_edit.html", context, 400)
    comment["body"] = body[:5000]
    return redirect(url + f"#comment-{comment['id']}", flash="Your comment was updated.")


async def user_page(request: Request) -> Response:
    state = ctx(request).state
    username = request.path_params["username"]
    person = state["users"].get(username)
    if person is None:
        return not_found(request, "User")
    posts = sorted(
        (p for p in state["posts"].values() if p["author"] == username), key=lambda p: -p["created"]
    )
    comments = sorted(
        (c for c in state["comments"].values() if c["author"] == username),
        key=lambda c: -c["created"],
    )
    comment_rows = [{**c, "post_obj": state["posts"][str(c["post"])]} for c in comments[:20]]
    context = {
        "person": person,
        "karma": karma(state, username),
        "posts": _rows(state, posts[:20], username),
        "post_total": len(posts),
        "comments": comment_rows,
        "comment_total": len(comments),
    }
    return render(request, "reddit/user.html", context)


async def search(request: Request) -> Response:
    state = ctx(request).state
    q = request.query_params.get("q", "").strip()
    hits = [p for p in state["posts"].values() if q and q.lower() in p["title"].lower()]
    hits.sort(key=lambda p: -p["created"])
    page = paginate(hits, int_param(request, "page"))
    user = current_user(request)
    page["items"] = _rows(state, page["items"], user["username"] if user else None)
    context = {"q": q, "page": page, **page_links("/search", {"q": q}, page)}
    return render(request, "reddit/search.html", context)


def routes() -> list[Route]:
    return [
        Route("/", front),
        Route("/forums", forums),
        Route("/search", search),
        Route("/submit", submit, methods=["GET", "POST"]),
        Route("/u/{username}", user_page),
        Route("/vote/{kind}/{item_id:int}", vote, methods=["POST"]),
        Route("/comment/{comment_id:int}/edit", comment_edit, methods=["GET", "POST"]),
        Route("/f/{forum}", forum),
        Route("/f/{forum}/subscribe", subscribe, methods=["POST"]),
        Route("/f/{forum}/{post_id:int}", post_page),
        Route("/f/{forum}/{post_id:int}/comment", comment_create, methods=["POST"]),
        Route("/f/{forum}/{post_id:int}/edit", post_edit, methods=["GET", "POST"]),
        *auth_routes("reddit/login.html"),
    ]
