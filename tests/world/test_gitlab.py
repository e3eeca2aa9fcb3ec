"""The GitLab-like forge over real HTTP: seed determinism, project pages, issues, members, stars, reset."""

from __future__ import annotations

import functools
import json
import random

import httpx
import pytest

from sandbox.instance import seed_world
from sandbox.server import WorldThread, free_port_block
from sandbox.sites import gitlab_data as gd
from sandbox.sites.gitlab import seed_state
from sandbox.web import agent_session_id, session_cookie

AGENT = gd.AGENT_USER
P = "/quillcraft/inkwell"


@functools.cache
def seeded() -> dict:
    """The seed world (read-only in these tests), built once."""
    return seed_world(0)


@pytest.fixture(scope="module")
def world():
    with WorldThread(instances=2, port=free_port_block()) as w:
        yield w


@pytest.fixture
def gitlab(world):
    httpx.post(f"{world.url}/instances/0/reset").raise_for_status()
    base = httpx.get(f"{world.url}/instances/0").json()["urls"]["gitlab"]
    with httpx.Client(
        base_url=base, cookies={session_cookie("gitlab"): agent_session_id("gitlab")}
    ) as client:
        yield client


def test_seed_is_deterministic_plain_data_and_sized_like_a_small_forge():
    a, b = seed_state(random.Random("0:gitlab")), seed_state(random.Random("0:gitlab"))
    assert a == b and json.loads(json.dumps(a)) == a
    assert seed_state(random.Random("1:gitlab")) != a
    assert len(a["issues"]) >= 300 and len(a["users"]) >= 30 and len(a["projects"]) >= 20
    assert any(gd.can_manage(p, AGENT) for p in a["projects"].values())


def test_project_pages_render_with_their_tabs(gitlab):
    for path in (
        "/",
        "/explore",
        "/explore?sort=stars",
        f"/users/{AGENT}",
        P,
        P + "/-/tree/main/src",
        P + "/-/blob/main/README.md",
        P + "/-/commits/main",
        P + "/-/issues",
        P + "/-/issues/1",
        P + "/-/issues/new",
        P + "/-/merge_requests",
        P + "/-/project_members",
    ):
        r = gitlab.get(path)
        assert r.status_code == 200, path
        assert len(r.text) < 14_000, path
    assert 'data-testid="tab-issues"' in gitlab.get(P).text


def test_missing_projects_files_and_issues_are_404(gitlab):
    assert gitlab.get("/nobody/nothing").status_code == 404
    assert gitlab.get(P + "/-/blob/main/nope.txt").status_code == 404
    assert gitlab.get(P + "/-/issues/9999").status_code == 404
    assert gitlab.get(P + "/-/merge_requests/9999").status_code == 404


def test_issue_filters_redirect_to_one_canonical_url_and_filter(gitlab):
    r = gitlab.get(
        P + "/-/issues", params={"label": "bug", "assignee": "", "state": "opened", "search": ""}
    )
    assert r.status_code == 303 and r.headers["location"] == P + "/-/issues?label=bug"
    page = gitlab.get(P + "/-/issues?label=bug").text
    state = seeded()["gitlab"]
    expected = sum(
        1
        for i in state["issues"].values()
        if i["project"] == P[1:] and i["state"] == "opened" and "bug" in i["labels"]
    )
    assert f'data-testid="issue-total">{expected} issues match<' in page


def test_closing_assigning_and_labelling_an_issue(gitlab):
    url = P + "/-/issues/1"
    gitlab.post(url + "/update", data={"action": "close"})
    gitlab.post(url + "/update", data={"action": "assign", "username": AGENT})
    gitlab.post(url + "/update", data={"action": "add_label", "label": "security"})
    page = gitlab.get(url).text
    assert 'data-testid="issue-state">Closed<' in page
    assert (
        f'href="/users/{AGENT}">{AGENT}</a>'
        in page.split('data-testid="issue-assignees"')[1].split("</td>")[0]
    )
    assert 'data-testid="label-security"' in page


def test_bad_issue_updates_are_refused_with_a_message(gitlab):
    url = P + "/-/issues/1"
    assert (
        "Unknown label"
        in gitlab.post(
            url + "/update", data={"action": "add_label", "label": "x"}, follow_redirects=True
        ).text
    )
    assert (
        "Only project members"
        in gitlab.post(
            url + "/update", data={"action": "assign", "username": "ghost"}, follow_redirects=True
        ).text
    )
    assert (
        "Unknown action"
        in gitlab.post(url + "/update", data={"action": "explode"}, follow_redirects=True).text
    )


def test_a_reporter_cannot_close_issues(gitlab):
    state = seeded()["gitlab"]
    project = next((p for p in state["projects"].values() if not gd.can_write(p, AGENT)), None)
    issue = next(
        i
        for i in state["issues"].values()
        if i["project"] == project["path"] and i["state"] == "opened"
    )
    url = f"/{project['path']}/-/issues/{issue['iid']}"
    r = gitlab.post(url + "/update", data={"action": "close"}, follow_redirects=True)
    assert "at least the Developer role" in r.text and 'data-testid="issue-state">Open<' in r.text


def test_creating_an_issue_puts_it_first_in_the_list(gitlab):
    r = gitlab.post(
        P + "/-/issues/new", data={"title": "Brand new bug", "label": "bug", "assignee": AGENT}
    )
    assert r.status_code == 303
    assert gitlab.post(P + "/-/issues/new", data={"title": ""}).status_code == 400
    page = gitlab.get(P + "/-/issues").text
    first_link = page.split('data-testid="issue-list"')[1].split("</a>")[0]
    assert first_link.endswith("Brand new bug")


def test_adding_a_member_and_refusing_unknown_users(gitlab):
    state = seeded()["gitlab"]
    outsider = next(u for u in state["users"] if u not in state["projects"][P[1:]]["members"])
    gitlab.post(P + "/-/project_members", data={"username": outsider, "role": "Reporter"})
    assert (
        f'data-testid="member-{outsider}-role">Reporter<'
        in gitlab.get(P + "/-/project_members").text
    )
    r = gitlab.post(
        P + "/-/project_members",
        data={"username": "ghost", "role": "Reporter"},
        follow_redirects=True,
    )
    assert "No user named ghost" in r.text
    r = gitlab.post(
        P + "/-/project_members",
        data={"username": outsider, "role": "Owner"},
        follow_redirects=True,
    )
    assert f'data-testid="member-{outsider}-role">Reporter<' in r.text


def test_starring_toggles_and_counts(gitlab):
    n = gd.stars(seeded()["gitlab"]["projects"][P[1:]])
    gitlab.post(P + "/-/star")
    page = gitlab.get(P).text
    assert 'data-testid="star-button">Unstar<' in page and f"{n + 1} stars" in page
    gitlab.post(P + "/-/star")
    assert f"{n} stars" in gitlab.get(P).text


def test_reset_restores_the_forge_and_instances_are_isolated(world, gitlab):
    other = httpx.get(f"{world.url}/instances/1").json()["urls"]["gitlab"]
    state = seeded()["gitlab"]
    issue = next(
        i for i in state["issues"].values() if i["project"] == P[1:] and i["state"] == "opened"
    )
    url = f"{P}/-/issues/{issue['iid']}"
    gitlab.post(P + "/-/star")
    gitlab.post(url + "/update", data={"action": "close"})
    assert 'data-testid="issue-state">Closed<' in gitlab.get(url).text
    assert 'data-testid="issue-state">Open<' in httpx.get(other + url).text
    httpx.post(f"{world.url}/instances/0/reset").raise_for_status()
    assert 'data-testid="star-button">Star<' in gitlab.get(P).text
    assert 'data-testid="issue-state">Open<' in gitlab.get(url).text
