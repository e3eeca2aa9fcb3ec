"""The GitLab-like forge: projects, read-only files and commits, issues, merge requests, members, stars.

URLs follow GitLab's shapes (`/<namespace>/<project>/-/issues/<iid>`) so tasks read like WebArena's.
"""

from __future__ import annotations

import random
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.sites import gitlab_data as data
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

SITE = "gitlab"
AGENT_USER = data.AGENT_USER
ISSUE_FILTERS = ["label", "assignee", "state", "search"]
MR_STATES = ["opened", "merged", "closed", "all"]


def seed_state(rng: random.Random) -> dict:
    return data.seed_state(rng)


def _project(request: Request) -> dict | None:
    path = f"{request.path_params['ns']}/{request.path_params['proj']}"
    return ctx(request).state["projects"].get(path)


def _username(request: Request) -> str:
    user = current_user(request)
    return user["username"] if user else ""


def _project_rows(state: dict, projects: list[dict]) -> list[dict]:
    return [
        {
            **p,
            "stars": data.stars(p),
            "open_issues": sum(
                1
                for i in state["issues"].values()
                if i["project"] == p["path"] and i["state"] == "opened"
            ),
        }
        for p in projects
    ]


async def home(request: Request) -> Response:
    if (denied := login_required(request)) is not None:
        return denied
    state = ctx(request).state
    me = _username(request)
    mine = [p for p in state["projects"].values() if me in p["members"]]
    starred = [p for p in state["projects"].values() if me in p["starred_by"]]
    context = {"projects": _project_rows(state, mine), "starred": starred}
    return render(request, "gitlab/home.html", context)


async def explore(request: Request) -> Response:
    state = ctx(request).state
    search = request.query_params.get("search", "").strip()
    sort = request.query_params.get("sort", "name")
    projects = [p for p in state["projects"].values() if search.lower() in p["path"].lower()]
    if sort == "stars":
        projects.sort(key=lambda p: (-data.stars(p), p["path"]))
    else:
        sort = "name"
        projects.sort(key=lambda p: p["name"])
    page = paginate(_project_rows(state, projects), int_param(request, "page"))
    links = page_links("/explore", {"search": search, "sort": sort}, page)
    return render(
        request, "gitlab/explore.html", {"page": page, "search": search, "sort": sort, **links}
    )


async def user_page(request: Request) -> Response:
    state = ctx(request).state
    person = state["users"].get(request.path_params["username"])
    if person is None:
        return not_found(request, "User")
    name = person["username"]
    member = [
        {"path": p["path"], "role": p["members"][name]}
        for p in state["projects"].values()
        if name in p["members"]
    ]
    starred = [p["path"] for p in state["projects"].values() if name in p["starred_by"]]
    assigned = sum(
        1 for i in state["issues"].values() if name in i["assignees"] and i["state"] == "opened"
    )
    context = {"person": person, "member": member, "starred": starred, "assigned": assigned}
    return render(request, "gitlab/user.html", context)


async def project_home(request: Request) -> Response:
    project = _project(request)
    if project is None:
        return not_found(request, "Project")
    me = _username(request)
    row = _project_rows(ctx(request).state, [project])[0]
    context = {
        "project": row,
        "starred": me in project["starred_by"],
        "entries": _tree_entries(project, ""),
        "readme": project["files"].get("README.md", ""),
    }
    return render(request, "gitlab/project.html", context)


def _tree_entries(project: dict, folder: str) -> list[dict]:
    prefix = folder + "/" if folder else ""
    dirs: set[str] = set()
    files: list[str] = []
    for path in project["files"]:
        if not path.startswith(prefix):
            continue
        rest = path[len(prefix) :]
        if "/" in rest:
            dirs.add(rest.split("/", 1)[0])
        else:
            files.append(rest)
    entries = [{"name": d, "kind": "tree", "path": prefix + d} for d in sorted(dirs)]
    return entries + [{"name": f, "kind": "blob", "path": prefix + f} for f in sorted(files)]


async def tree(request: Request) -> Response:
    project = _project(request)
    folder = request.path_params["path"].strip("/")
    if project is None:
        return not_found(request, "Project")
    entries = _tree_entries(project, folder)
    if not entries:
        return not_found(request, "Folder")
    return render(
        request, "gitlab/tree.html", {"project": project, "folder": folder, "entries": entries}
    )


async def blob(request: Request) -> Response:
    project = _project(request)
    path = request.path_params["path"]
    if project is None or path not in project["files"]:
        return not_found(request, "File")
    context = {"project": project, "path": path, "text": project["files"][path]}
    return render(request, "gitlab/blob.html", context)


async def commits(request: Request) -> Response:
    project = _project(request)
    if project is None:
        return not_found(request, "Project")
    page = paginate(project["commits"], int_param(request, "page"))
    links = page_links(f"/{project['path']}/-/commits/main", {}, page)
    return render(request, "gitlab/commits.html", {"project": project, "page": page, **links})


async def star(request: Request) -> Response:
    if (denied := login_required(request)) is not None:
        return denied
    project = _project(request)
    if project is None:
        return not_found(request, "Project")
    me = _username(request)
    if me in project["starred_by"]:
        project["starred_by"].remove(me)
        return redirect(f"/{project['path']}", flash="You unstarred this project.")
    project["starred_by"].append(me)
    project["starred_by"].sort()
    return redirect(f"/{project['path']}", flash="You starred this project.")


async def issues(request: Request) -> Response:
    project = _project(request)
    if project is None:
        return not_found(request, "Project")
    q = request.query_params
    raw = {k: q.get(k, "").strip() for k in ISSUE_FILTERS}
    canonical = {k: v for k, v in raw.items() if v and not (k == "state" and v == "opened")}
    base = f"/{project['path']}/-/issues"
    given = [k for k in q.keys() if k != "page"]
    if given != [k for k in ISSUE_FILTERS if k in canonical]:
        # One URL per filter combination (empty fields dropped, fixed order), as a bookmarkable link.
        return redirect(issues_url(base, canonical, q.get("page")))
    state_filter = raw["state"] or "opened"
    all_issues = [
        i for i in ctx(request).state["issues"].values() if i["project"] == project["path"]
    ]
    counts = {s: sum(1 for i in all_issues if i["state"] == s) for s in ("opened", "closed")}
    counts["all"] = len(all_issues)
    hits = [
        i
        for i in all_issues
        if (state_filter == "all" or i["state"] == state_filter)
        and (not raw["label"] or raw["label"] in i["labels"])
        and (not raw["assignee"] or raw["assignee"] in i["assignees"])
        and (not raw["search"] or raw["search"].lower() in i["title"].lower())
    ]
    hits.sort(key=lambda i: -i["iid"])
    page = paginate(hits, int_param(request, "page"))
    tabs = {s: issues_url(base, {**canonical, "state": s}) for s in ("opened", "closed", "all")}
    context = {
        "project": project,
        "page": page,
        "filters": raw,
        "state_filter": state_filter,
        "counts": counts,
        "tabs": tabs,
        "labels": data.LABELS,
        "members": sorted(project["members"]),
        **page_links(base, canonical, page),
    }
    return render(request, "gitlab/issues.html", context)


def issues_url(base: str, filters: dict, page: str | None = None) -> str:
    """The canonical issue-list URL: filters in ISSUE_FILTERS order, empties and state=opened dropped."""
    query = {
        k: filters[k]
        for k in ISSUE_FILTERS
        if filters.get(k) and not (k == "state" and filters[k] == "opened")
    }
    if page:
        query["page"] = page
    return base + ("?" + urlencode(query) if query else "")


def _issue(request: Request, project: dict) -> dict | None:
    return ctx(request).state["issues"].get(f"{project['path']}#{request.path_params['iid']}")


async def issue_page(request: Request) -> Response:
    project = _project(request)
    issue = _issue(request, project) if project else None
    if issue is None:
        return not_found(request, "Issue")
    me = _username(request)
    context = {
        "project": project,
        "issue": issue,
        "can_write": data.can_write(project, me),
        "members": sorted(project["members"]),
        "labels": data.LABELS,
    }
    return render(request, "gitlab/issue.html", context)


async def issue_update(request: Request) -> Response:
    """One endpoint for the issue sidebar's small forms: close, reopen, assign, label, comment."""
    if (denied := login_required(request)) is not None:
        return denied
    project = _project(request)
    issue = _issue(request, project) if project else None
    if issue is None:
        return not_found(request, "Issue")
    url = f"/{project['path']}/-/issues/{issue['iid']}"
    me = _username(request)
    values = await form(request)
    action = values.get("action", "")
    if action == "comment":
        body = values.get("body", "").strip()
        if not body:
            return redirect(url, flash="A comment cannot be empty.")
        issue["notes"].append({"author": me, "body": body[:5000]})
        return redirect(url, flash="Comment added.")
    if not data.can_write(project, me):
        return redirect(url, flash="You need at least the Developer role to change this issue.")
    if action in ("close", "reopen"):
        issue["state"] = "closed" if action == "close" else "opened"
        return redirect(url, flash="Issue closed." if action == "close" else "Issue reopened.")
    if action in ("assign", "unassign"):
        who = values.get("username", "")
        if who not in project["members"]:
            return redirect(url, flash="Only project members can be assigned.")
        if action == "assign" and who not in issue["assignees"]:
            issue["assignees"] = sorted([*issue["assignees"], who])
        if action == "unassign" and who in issue["assignees"]:
            issue["assignees"].remove(who)
        return redirect(url, flash="Assignees updated.")
    if action in ("add_label", "remove_label"):
        label = values.get("label", "")
        if label not in data.LABELS:
            return redirect(url, flash="Unknown label.")
        if action == "add_label" and label not in issue["labels"]:
            issue["labels"] = sorted([*issue["labels"], label])
        if action == "remove_label" and label in issue["labels"]:
            issue["labels"].remove(label)
        return redirect(url, flash="Labels updated.")
    return redirect(url, flash="Unknown action.")


async def issue_new(request: Request) -> Response:
    if (denied := login_required(request)) is not None:
        return denied
    project = _project(request)
    if project is None:
        return not_found(request, "Project")
    context = {
        "project": project,
        "labels": data.LABELS,
        "members": sorted(project["members"]),
        "error": None,
    }
    if request.method == "GET":
        return render(request, "gitlab/issue_new.html", {**context, "values": {}})
    values = await form(request)
    title = values.get("title", "").strip()
    if not title:
        return render(
            request,
            "gitlab/issue_new.html",
            {**context, "values": values, "error": "Title can't be blank."},
            400,
        )
    label = values.get("label", "")
    assignee = values.get("assignee", "")
    iid = project["next_issue_iid"]
    project["next_issue_iid"] += 1
    ctx(request).state["issues"][f"{project['path']}#{iid}"] = {
        "project": project["path"],
        "iid": iid,
        "title": title[:255],
        "description": values.get("description", "").strip()[:10000],
        "state": "opened",
        "labels": [label] if label in data.LABELS else [],
        "assignees": [assignee] if assignee in project["members"] else [],
        "author": _username(request),
        "created": "2025-01-15",
        "notes": [],
    }
    return redirect(f"/{project['path']}/-/issues/{iid}", flash=f"Issue #{iid} created.")


async def merge_requests(request: Request) -> Response:
    project = _project(request)
    if project is None:
        return not_found(request, "Project")
    state_filter = request.query_params.get("state", "opened")
    state_filter = state_filter if state_filter in MR_STATES else "opened"
    mrs = [
        m for m in ctx(request).state["merge_requests"].values() if m["project"] == project["path"]
    ]
    counts = {s: sum(1 for m in mrs if m["state"] == s) for s in MR_STATES[:3]}
    counts["all"] = len(mrs)
    hits = sorted(
        (m for m in mrs if state_filter == "all" or m["state"] == state_filter),
        key=lambda m: -m["iid"],
    )
    context = {
        "project": project,
        "mrs": hits,
        "state_filter": state_filter,
        "counts": counts,
        "states": MR_STATES,
    }
    return render(request, "gitlab/merge_requests.html", context)


async def merge_request(request: Request) -> Response:
    project = _project(request)
    mr = None
    if project is not None:
        mr = (
            ctx(request)
            .state["merge_requests"]
            .get(f"{project['path']}!{request.path_params['iid']}")
        )
    if mr is None:
        return not_found(request, "Merge request")
    return render(request, "gitlab/merge_request.html", {"project": project, "mr": mr})


async def members(request: Request) -> Response:
    project = _project(request)
    if project is None:
        return not_found(request, "Project")
    users = ctx(request).state["users"]
    if request.method == "POST":
        if (denied := login_required(request)) is not None:
            return denied
        url = f"/{project['path']}/-/project_members"
        if not data.can_manage(project, _username(request)):
            return redirect(url, flash="Only Maintainers and Owners can manage members.")
        values = await form(request)
        who, role = values.get("username", "").strip(), values.get("role", "")
        if who not in users:
            return redirect(url, flash=f"No user named {who or '(empty)'}.")
        if role not in data.ROLES or (role == "Owner") or project["members"].get(who) == "Owner":
            return redirect(
                url, flash="Choose a role from Guest to Maintainer; the owner's role cannot change."
            )
        existed = who in project["members"]
        project["members"][who] = role
        return redirect(
            url, flash=f"{who} is now {role}." if existed else f"{who} was added as {role}."
        )
    rows = [
        {"username": u, "name": users[u]["name"], "role": r}
        for u, r in sorted(
            project["members"].items(), key=lambda kv: (-data.ROLES.index(kv[1]), kv[0])
        )
    ]
    context = {
        "project": project,
        "rows": rows,
        "roles": data.ROLES[:4],
        "can_manage": data.can_manage(project, _username(request)),
    }
    return render(request, "gitlab/members.html", context)


def routes() -> list[Route]:
    p = "/{ns}/{proj}"
    return [
        Route("/", home),
        Route("/explore", explore),
        Route("/users/{username}", user_page),
        *auth_routes("gitlab/login.html"),
        Route(p, project_home),
        Route(p + "/-/tree/main/{path:path}", tree),
        Route(p + "/-/blob/main/{path:path}", blob),
        Route(p + "/-/commits/main", commits),
        Route(p + "/-/star", star, methods=["POST"]),
        Route(p + "/-/issues", issues),
        Route(p + "/-/issues/new", issue_new, methods=["GET", "POST"]),
        Route(p + "/-/issues/{iid:int}", issue_page),
        Route(p + "/-/issues/{iid:int}/update", issue_update, methods=["POST"]),
        Route(p + "/-/merge_requests", merge_requests),
        Route(p + "/-/merge_requests/{iid:int}", merge_request),
        Route(p + "/-/project_members", members, methods=["GET", "POST"]),
    ]
