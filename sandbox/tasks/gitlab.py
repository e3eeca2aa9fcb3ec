"""Task templates on the GitLab-like forge (ids 400-499): counts, files, issues, members, stars.

Plans find a project through the header search, then use the project's tabs and forms.
"""

from __future__ import annotations

import random
from urllib.parse import quote, quote_plus

from sandbox.oracle import Click, Exit, Search, Select, T, Type
from sandbox.sites import gitlab_data as gd
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

AGENT = gd.AGENT_USER
PER_TEMPLATE = 24
HOME = url("gitlab", "/")


def links_locator(testid: str) -> str:
    """JS: the texts of the links inside the element with that data-testid, comma-joined."""
    return f"[...document.querySelectorAll('[data-testid=\"{testid}\"] a')].map(e => e.outerText).join(', ')"


def open_project(path: str) -> list:
    name = path.split("/", 1)[1]
    return [Search(T(testid="search-input"), name), Click(T(testid=f"project-{path}", text=path))]


def open_issue(issue: dict) -> list:
    """From anywhere: the project, its issue list (all states), search by title, the issue."""
    return [
        *open_project(issue["project"]),
        Click(T(testid="tab-issues", text="Issues")),
        Click(T(testid="issues-tab-all")),
        Search(T(testid="filter-search", placeholder="Search issues"), issue["title"]),
        Click(T(testid=f"issue-{issue['iid']}-title", text=issue["title"])),
    ]


def _projects(world: dict) -> list[dict]:
    return [world["gitlab"]["projects"][k] for k in sorted(world["gitlab"]["projects"])]


def _inst_projects(world: dict, rng: random.Random, keep=None) -> list[dict]:
    chosen = [p for p in _projects(world) if keep is None or keep(world["gitlab"], p)]
    return [{"project": p["path"]} for p in sample(chosen, rng, PER_TEMPLATE)]


def _issue_key(inst: dict) -> str:
    return f"{inst['project']}#{inst['_iid']}"


def _inst_issues(world: dict, rng: random.Random, keep=None, extra=None) -> list[dict]:
    state = world["gitlab"]
    out = []
    for key in sample(sorted(state["issues"]), rng, len(state["issues"])):
        issue = state["issues"][key]
        project = state["projects"][issue["project"]]
        same = [
            i
            for i in state["issues"].values()
            if i["project"] == issue["project"] and issue["title"] in i["title"]
        ]
        if len(same) != 1 or (keep is not None and not keep(state, project, issue)):
            continue
        inst = {"issue": issue["title"], "project": issue["project"], "_iid": issue["iid"]}
        if extra is not None:
            inst.update(extra(state, project, issue, rng))
        out.append(inst)
        if len(out) >= PER_TEMPLATE:
            break
    return out


def _issue(world: dict, inst: dict) -> dict:
    return world["gitlab"]["issues"][_issue_key(inst)]


def _issue_url(inst: dict) -> str:
    return url("gitlab", f"/{inst['project']}/-/issues/{inst['_iid']}")


def _open_issues(state: dict, path: str) -> int:
    return sum(
        1 for i in state["issues"].values() if i["project"] == path and i["state"] == "opened"
    )


# 400/401: counts on the project page ----------------------------------------------------------
def _build_400(world: dict, inst: dict) -> TaskSpec:
    n = _open_issues(world["gitlab"], inst["project"])
    return TaskSpec(HOME, exact_match(str(n)), [*open_project(inst["project"]), Exit(str(n))])


def _build_401(world: dict, inst: dict) -> TaskSpec:
    n = gd.stars(world["gitlab"]["projects"][inst["project"]])
    return TaskSpec(HOME, exact_match(str(n)), [*open_project(inst["project"]), Exit(str(n))])


# 402: latest commit ---------------------------------------------------------------------------
def _latest_is_unique(state: dict, project: dict) -> bool:
    c = project["commits"]
    return len(c) > 1 and c[0]["date"] != c[1]["date"]


def _build_402(world: dict, inst: dict) -> TaskSpec:
    title = world["gitlab"]["projects"][inst["project"]]["commits"][0]["title"]
    return TaskSpec(HOME, must_include([title]), [*open_project(inst["project"]), Exit(title)])


# 403/404: labels and assignees of an issue ----------------------------------------------------
def _build_403(world: dict, inst: dict) -> TaskSpec:
    labels = _issue(world, inst)["labels"]
    return TaskSpec(
        HOME, must_include(labels), [*open_issue(_issue(world, inst)), Exit(", ".join(labels))]
    )


def _build_404(world: dict, inst: dict) -> TaskSpec:
    people = _issue(world, inst)["assignees"]
    return TaskSpec(
        HOME, must_include(people), [*open_issue(_issue(world, inst)), Exit(", ".join(people))]
    )


# 405: a member's role -------------------------------------------------------------------------
def _inst_405(world: dict, rng: random.Random) -> list[dict]:
    pairs = [(p["path"], u) for p in _projects(world) for u in sorted(p["members"])]
    return [{"user": u, "project": p} for p, u in sample(pairs, rng, PER_TEMPLATE)]


def _build_405(world: dict, inst: dict) -> TaskSpec:
    role = world["gitlab"]["projects"][inst["project"]]["members"][inst["user"]]
    plan = [
        *open_project(inst["project"]),
        Click(T(testid="tab-members", text="Members")),
        Exit(role),
    ]
    return TaskSpec(HOME, must_include([role]), plan)


# 406: source branch of a merge request ----------------------------------------------------------
def _inst_406(world: dict, rng: random.Random) -> list[dict]:
    mrs = world["gitlab"]["merge_requests"]
    return [
        {"iid": mrs[k]["iid"], "project": mrs[k]["project"]}
        for k in sample(sorted(mrs), rng, PER_TEMPLATE)
    ]


def _build_406(world: dict, inst: dict) -> TaskSpec:
    mr = world["gitlab"]["merge_requests"][f"{inst['project']}!{inst['iid']}"]
    plan = [
        *open_project(inst["project"]),
        Click(T(testid="tab-merge-requests", text="Merge requests")),
        Click(T(testid="mr-tab-all")),
        Click(T(testid=f"mr-{mr['iid']}-title", text=mr["title"])),
        Exit(mr["source_branch"]),
    ]
    return TaskSpec(HOME, exact_match(mr["source_branch"]), plan)


# 407: issues filtered by label ----------------------------------------------------------------
def _inst_407(world: dict, rng: random.Random) -> list[dict]:
    pairs = [(p["path"], label) for p in _projects(world) for label in gd.LABELS]
    return [{"project": p, "label": label} for p, label in sample(pairs, rng, PER_TEMPLATE)]


def _build_407(world: dict, inst: dict) -> TaskSpec:
    path, label = inst["project"], inst["label"]
    plan = [
        *open_project(path),
        Click(T(testid="tab-issues", text="Issues")),
        Select(T(testid="filter-label"), label),
        Click(T(testid="filter-apply", text="Filter")),
        Exit(""),
    ]
    base = url("gitlab", f"/{path}/-/issues?label=")
    # A filter form encodes spaces as "+", a label chip's link as "%20": both are the same page.
    refs = {base + quote_plus(label), base + quote(label)}
    return TaskSpec(HOME, url_match(" |OR| ".join(sorted(refs))), plan)


# 408: merge requests by state -----------------------------------------------------------------
def _inst_408(world: dict, rng: random.Random) -> list[dict]:
    pairs = [(p["path"], s) for p in _projects(world) for s in ("merged", "closed", "all")]
    return [{"project": p, "state": s} for p, s in sample(pairs, rng, PER_TEMPLATE)]


def _build_408(world: dict, inst: dict) -> TaskSpec:
    path, s = inst["project"], inst["state"]
    plan = [
        *open_project(path),
        Click(T(testid="tab-merge-requests", text="Merge requests")),
        Click(T(testid=f"mr-tab-{s}")),
        Exit(""),
    ]
    return TaskSpec(HOME, url_match(url("gitlab", f"/{path}/-/merge_requests?state={s}")), plan)


# 409: open a file -----------------------------------------------------------------------------
def _inst_409(world: dict, rng: random.Random) -> list[dict]:
    pairs = [(p["path"], f) for p in _projects(world) for f in sorted(p["files"])]
    return [{"file": f, "project": p} for p, f in sample(pairs, rng, PER_TEMPLATE)]


def _build_409(world: dict, inst: dict) -> TaskSpec:
    path, file = inst["project"], inst["file"]
    plan = [*open_project(path)]
    parts = file.split("/")
    for depth in range(1, len(parts)):
        folder = "/".join(parts[:depth])
        plan.append(Click(T(testid=f"file-{folder}", text=parts[depth - 1] + "/")))
    plan += [Click(T(testid=f"file-{file}", text=parts[-1])), Exit("")]
    return TaskSpec(HOME, url_match(url("gitlab", f"/{path}/-/blob/main/{file}")), plan)


# 410: star ------------------------------------------------------------------------------------
def _build_410(world: dict, inst: dict) -> TaskSpec:
    path = inst["project"]
    plan = [*open_project(path), Click(T(testid="star-button", text="Star")), Exit("")]
    checks = [check(url("gitlab", f"/{path}"), testid_text("star-button"), exact_match="Unstar")]
    return TaskSpec(HOME, program_html(checks), plan)


# 411: close an issue --------------------------------------------------------------------------
def _writable_open(state: dict, project: dict, issue: dict) -> bool:
    return gd.can_write(project, AGENT) and issue["state"] == "opened"


def _build_411(world: dict, inst: dict) -> TaskSpec:
    plan = [
        *open_issue(_issue(world, inst)),
        Click(T(testid="close-button", text="Close issue")),
        Exit(""),
    ]
    checks = [check(_issue_url(inst), testid_text("issue-state"), exact_match="Closed")]
    return TaskSpec(HOME, program_html(checks), plan)


# 412: add a member ----------------------------------------------------------------------------
def _inst_412(world: dict, rng: random.Random) -> list[dict]:
    users = sorted(world["gitlab"]["users"])
    triples = [
        (p["path"], u, role)
        for p in _projects(world)
        if gd.can_manage(p, AGENT)
        for u in users
        if u not in p["members"]
        for role in ("Guest", "Reporter", "Developer", "Maintainer")
    ]
    return [{"user": u, "project": p, "role": r} for p, u, r in sample(triples, rng, PER_TEMPLATE)]


def _build_412(world: dict, inst: dict) -> TaskSpec:
    path = inst["project"]
    plan = [
        *open_project(path),
        Click(T(testid="tab-members", text="Members")),
        Type(T(testid="member-username", placeholder="Username"), inst["user"]),
        Select(T(testid="member-role"), inst["role"]),
        Click(T(testid="member-submit", text="Add to project")),
        Exit(""),
    ]
    page = url("gitlab", f"/{path}/-/project_members")
    checks = [check(page, testid_text(f"member-{inst['user']}-role"), exact_match=inst["role"])]
    return TaskSpec(HOME, program_html(checks), plan)


# 413/414: assign, label -----------------------------------------------------------------------
def _assign_extra(state: dict, project: dict, issue: dict, rng: random.Random) -> dict:
    return {
        "user": rng.choice(sorted(u for u in project["members"] if u not in issue["assignees"]))
    }


def _label_extra(state: dict, project: dict, issue: dict, rng: random.Random) -> dict:
    return {"label": rng.choice([label for label in gd.LABELS if label not in issue["labels"]])}


def _writable(state: dict, project: dict, issue: dict) -> bool:
    return gd.can_write(project, AGENT) and len(issue["labels"]) < len(gd.LABELS)


def _build_413(world: dict, inst: dict) -> TaskSpec:
    plan = [
        *open_issue(_issue(world, inst)),
        Select(T(testid="assign-select"), inst["user"]),
        Click(T(testid="assign-button", text="Assign")),
        Exit(""),
    ]
    checks = [
        check(_issue_url(inst), links_locator("issue-assignees"), must_include=[inst["user"]])
    ]
    return TaskSpec(HOME, program_html(checks), plan)


def _build_414(world: dict, inst: dict) -> TaskSpec:
    plan = [
        *open_issue(_issue(world, inst)),
        Select(T(testid="label-select"), inst["label"]),
        Click(T(testid="add-label-button", text="Add label")),
        Exit(""),
    ]
    checks = [check(_issue_url(inst), links_locator("issue-labels"), must_include=[inst["label"]])]
    return TaskSpec(HOME, program_html(checks), plan)


# 415: new issue -------------------------------------------------------------------------------
NEW_ISSUES = [
    "Broken link in the README",
    "Add a changelog file",
    "Document the release process",
    "Support configuration through environment variables",
    "Typo on the settings page",
    "Add a dark theme",
]


def _inst_415(world: dict, rng: random.Random) -> list[dict]:
    pairs = [(p["path"], t) for p in _projects(world) for t in NEW_ISSUES]
    return [{"project": p, "new_issue": t} for p, t in sample(pairs, rng, PER_TEMPLATE)]


def _build_415(world: dict, inst: dict) -> TaskSpec:
    path = inst["project"]
    plan = [
        *open_project(path),
        Click(T(testid="tab-issues", text="Issues")),
        Click(T(testid="new-issue", text="New issue")),
        Type(T(testid="issue-title-input", placeholder="Title"), inst["new_issue"]),
        Click(T(testid="create-issue", text="Create issue")),
        Exit(""),
    ]
    newest = "document.querySelector('[data-testid=\"issue-list\"] a')?.outerText ?? ''"
    checks = [check(url("gitlab", f"/{path}/-/issues"), newest, exact_match=inst["new_issue"])]
    return TaskSpec(HOME, program_html(checks), plan)


# 416: comment on an issue ---------------------------------------------------------------------
NOTES = [
    "I can reproduce this on main",
    "Working on a fix now",
    "Is this still a problem?",
    "Duplicate of an older report",
]


def _note_extra(state: dict, project: dict, issue: dict, rng: random.Random) -> dict:
    return {"note": rng.choice(NOTES)}


def _build_416(world: dict, inst: dict) -> TaskSpec:
    plan = [
        *open_issue(_issue(world, inst)),
        Type(T(testid="comment-input", placeholder="Write a comment"), inst["note"]),
        Click(T(testid="comment-submit", text="Comment")),
        Exit(""),
    ]
    notes = f"[...document.querySelectorAll('[data-author=\"{AGENT}\"] .note-body')].map(e => e.outerText).join(' | ')"
    return TaskSpec(
        HOME, program_html([check(_issue_url(inst), notes, must_include=[inst["note"]])]), plan
    )


def _t(tid, intent, kind, inst, build) -> Template:
    return Template(tid, ("gitlab",), intent, kind, inst, build)


def _labelled(state, project, issue) -> bool:
    return bool(issue["labels"])


def _assigned(state, project, issue) -> bool:
    return bool(issue["assignees"])


def _assignable(state, project, issue) -> bool:
    return gd.can_write(project, AGENT) and len(issue["assignees"]) < len(project["members"])


TEMPLATES: list[Template] = [
    _t(
        400,
        "How many open issues does the project {{project}} have?",
        "info",
        _inst_projects,
        _build_400,
    ),
    _t(
        401, "How many stars does the project {{project}} have?", "info", _inst_projects, _build_401
    ),
    _t(
        402,
        "What is the message of the latest commit in {{project}}?",
        "info",
        lambda w, r: _inst_projects(w, r, _latest_is_unique),
        _build_402,
    ),
    _t(
        403,
        'Which labels does the issue "{{issue}}" in {{project}} have?',
        "info",
        lambda w, r: _inst_issues(w, r, keep=_labelled),
        _build_403,
    ),
    _t(
        404,
        'Who is assigned to the issue "{{issue}}" in {{project}}?',
        "info",
        lambda w, r: _inst_issues(w, r, keep=_assigned),
        _build_404,
    ),
    _t(
        405,
        "What role does {{user}} have in the project {{project}}?",
        "info",
        _inst_405,
        _build_405,
    ),
    _t(
        406,
        "What is the source branch of merge request !{{iid}} in {{project}}?",
        "info",
        _inst_406,
        _build_406,
    ),
    _t(
        407,
        'Show me the open issues of {{project}} labelled "{{label}}".',
        "nav",
        _inst_407,
        _build_407,
    ),
    _t(
        408,
        "Show me the merge requests of {{project}} with the status {{state}}.",
        "nav",
        _inst_408,
        _build_408,
    ),
    _t(409, "Open the file {{file}} in the project {{project}}.", "nav", _inst_409, _build_409),
    _t(
        410,
        "Star the project {{project}}.",
        "state",
        lambda w, r: _inst_projects(w, r, lambda s, p: AGENT not in p["starred_by"]),
        _build_410,
    ),
    _t(
        411,
        'Close the issue "{{issue}}" in {{project}}.',
        "state",
        lambda w, r: _inst_issues(w, r, keep=_writable_open),
        _build_411,
    ),
    _t(412, "Add {{user}} to the project {{project}} as {{role}}.", "state", _inst_412, _build_412),
    _t(
        413,
        'Assign the issue "{{issue}}" in {{project}} to {{user}}.',
        "state",
        lambda w, r: _inst_issues(w, r, keep=_assignable, extra=_assign_extra),
        _build_413,
    ),
    _t(
        414,
        'Add the label "{{label}}" to the issue "{{issue}}" in {{project}}.',
        "state",
        lambda w, r: _inst_issues(w, r, keep=_writable, extra=_label_extra),
        _build_414,
    ),
    _t(
        415,
        'Open a new issue in {{project}} titled "{{new_issue}}".',
        "state",
        _inst_415,
        _build_415,
    ),
    _t(
        416,
        'Comment "{{note}}" on the issue "{{issue}}" in {{project}}.',
        "state",
        lambda w, r: _inst_issues(w, r, extra=_note_extra),
        _build_416,
    ),
]
