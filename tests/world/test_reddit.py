"""The reddit-like forum over real HTTP: seed determinism, pages, votes, posts, comments, reset."""

from __future__ import annotations

import functools
import json
import random

import httpx
import pytest

from sandbox.instance import seed_world
from sandbox.server import WorldThread, free_port_block
from sandbox.sites import reddit_data as rd
from sandbox.sites.reddit import seed_state
from sandbox.web import agent_session_id, session_cookie

AGENT = rd.AGENT_USER


@functools.cache
def seeded() -> dict:
    """The seed world (read-only in these tests), built once."""
    return seed_world(0)


@pytest.fixture(scope="module")
def world():
    with WorldThread(instances=2, port=free_port_block()) as w:
        yield w


@pytest.fixture
def forum(world):
    """An agent-logged-in client on instance 0's forum, freshly reset."""
    httpx.post(f"{world.url}/instances/0/reset").raise_for_status()
    base = httpx.get(f"{world.url}/instances/0").json()["urls"]["reddit"]
    cookies = {session_cookie("reddit"): agent_session_id("reddit")}
    with httpx.Client(base_url=base, cookies=cookies) as client:
        yield client


def test_seed_is_deterministic_plain_data_and_sized_like_a_small_forum():
    a, b = seed_state(random.Random("0:reddit")), seed_state(random.Random("0:reddit"))
    assert a == b
    assert json.loads(json.dumps(a)) == a
    assert seed_state(random.Random("1:reddit")) != a
    assert len(a["posts"]) >= 300 and len(a["comments"]) >= 500 and len(a["users"]) >= 50
    assert len(a["forums"]) >= 20
    assert any(p["author"] == AGENT for p in a["posts"].values())
    assert seeded()["reddit"] == seeded()["reddit"]


def test_front_page_lists_twenty_posts_per_page_with_stable_testids(forum):
    page = forum.get("/").text
    assert page.count('data-testid="post-row-') == 20
    assert 'data-testid="next-page"' in page and 'data-testid="search-input"' in page
    assert forum.get("/?page=2").status_code == 200
    assert forum.get("/?page=garbage").status_code == 200


def test_forum_sorting_by_top_puts_the_highest_score_first(forum, world):
    state = seeded()["reddit"]
    posts = [p for p in state["posts"].values() if p["forum"] == "books"]
    best = max(rd.score(state, "post", p["id"]) for p in posts)
    page = forum.get("/f/books?sort=top").text
    first_score = page.split('-score">', 1)[1].split("<", 1)[0]
    assert int(first_score) == best


def test_unknown_forum_post_and_user_are_404(forum):
    assert forum.get("/f/nope").status_code == 404
    assert forum.get("/f/books/999999").status_code == 404
    assert forum.get("/u/nobody-at-all").status_code == 404


def test_search_finds_a_post_by_its_title(forum):
    post = seeded()["reddit"]["posts"]["1"]
    page = forum.get("/search", params={"q": post["title"]}).text
    assert f'data-testid="post-{post["id"]}-title"' in page


def test_an_upvote_is_shown_and_a_second_click_retracts_it(forum):
    state = seeded()["reddit"]
    post = next(
        p for p in state["posts"].values() if AGENT not in state["votes"][f"post:{p['id']}"]
    )
    url = f"/f/{post['forum']}/{post['id']}"
    before = rd.score(state, "post", post["id"])
    assert (
        forum.post(f"/vote/post/{post['id']}", data={"direction": "up", "next": url}).status_code
        == 303
    )
    page = forum.get(url).text
    assert f'data-testid="post-{post["id"]}-upvote">Upvoted<' in page
    assert f'data-testid="post-score">{before + 1}<' in page
    forum.post(f"/vote/post/{post['id']}", data={"direction": "up", "next": url})
    assert f'data-testid="post-score">{before}<' in forum.get(url).text


def test_a_vote_with_an_unknown_direction_changes_nothing(forum):
    r = forum.post("/vote/post/1", data={"direction": "sideways"}, follow_redirects=True)
    assert "Unknown vote direction" in r.text


def test_submitting_a_post_shows_it_first_on_the_profile(forum):
    r = forum.post(
        "/submit", data={"forum": "chess", "title": "Rook endgames are hard", "body": "Yes."}
    )
    assert r.status_code == 303
    post_page = forum.get(r.headers["location"]).text
    assert "Rook endgames are hard" in post_page and 'data-testid="flash"' in post_page
    profile = forum.get(f"/u/{AGENT}").text
    assert 'data-testid="submission-0-title">Rook endgames are hard<' in profile
    assert 'data-testid="submission-0-forum">f/chess<' in profile


def test_submitting_without_a_title_or_forum_is_rejected(forum):
    assert forum.post("/submit", data={"forum": "chess", "title": " "}).status_code == 400
    assert forum.post("/submit", data={"forum": "no-such", "title": "x"}).status_code == 400


def test_commenting_then_editing_the_comment(forum):
    r = forum.post("/f/books/1/comment", data={"body": "First thought"})
    post = seeded()["reddit"]["posts"]["1"]
    assert post["forum"] == "books"
    page = forum.get("/f/books/1").text
    assert f'data-author="{AGENT}"' in page and "First thought" in page
    cid = r.headers["location"].rsplit("comment-", 1)[1]
    forum.post(f"/comment/{cid}/edit", data={"body": "Second thought"})
    page = forum.get("/f/books/1").text
    assert "Second thought" in page and "First thought" not in page


def test_editing_someone_elses_post_is_refused(forum):
    state = seeded()["reddit"]
    other = next(p for p in state["posts"].values() if p["author"] != AGENT)
    url = f"/f/{other['forum']}/{other['id']}/edit"
    r = forum.post(url, data={"title": "hijacked", "body": ""}, follow_redirects=True)
    assert "You can only edit your own posts" in r.text and "hijacked" not in r.text


def test_anonymous_visitors_are_sent_to_login_and_can_log_in(world):
    base = httpx.get(f"{world.url}/instances/1").json()["urls"]["reddit"]
    with httpx.Client(base_url=base) as client:
        r = client.post("/vote/post/1", data={"direction": "up"})
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
        bad = client.post("/login", data={"username": AGENT, "password": "wrong", "next": "/"})
        assert bad.status_code == 401
        ok = client.post(
            "/login", data={"username": AGENT, "password": f"pw-{AGENT.lower()}", "next": "/"}
        )
        assert ok.status_code == 303
        assert 'data-testid="current-user"' in client.get("/").text


def test_subscribing_toggles_the_button(forum):
    state = seeded()["reddit"]
    name = next(f for f, subs in state["subscriptions"].items() if AGENT not in subs)
    forum.post(f"/f/{name}/subscribe")
    assert 'data-testid="subscribe-button">Unsubscribe<' in forum.get(f"/f/{name}").text
    forum.post(f"/f/{name}/subscribe")
    assert 'data-testid="subscribe-button">Subscribe<' in forum.get(f"/f/{name}").text


def test_reset_restores_the_forum_and_instances_are_isolated(world, forum):
    other = httpx.get(f"{world.url}/instances/1").json()["urls"]["reddit"]
    forum.post("/submit", data={"forum": "chess", "title": "Only on instance zero", "body": ""})
    forum.post("/f/books/1/comment", data={"body": "zero-only comment"})
    forum.post("/vote/post/1", data={"direction": "down"})
    assert "Only on instance zero" not in httpx.get(f"{other}/search", params={"q": "Only on"}).text
    httpx.post(f"{world.url}/instances/0/reset").raise_for_status()
    assert "Only on instance zero" not in forum.get("/search", params={"q": "Only on"}).text
    assert "zero-only comment" not in forum.get("/f/books/1").text
    assert 'data-testid="post-1-downvote">Downvote<' in forum.get("/f/books/1").text


def test_typical_pages_stay_compact(forum):
    for path in ("/", "/forums", "/f/books", "/f/books/1", f"/u/{AGENT}", "/submit"):
        assert len(forum.get(path).text) < 14_000, path
