"""Seed data for the GitLab-like forge: users, projects, files, commits, issues, merge requests.

Deterministic from the caller's `random.Random`; issue and MR numbers (iid) count per project.
"""

import random

AGENT_USER = "quillcraft"
ROLES = ["Guest", "Reporter", "Developer", "Maintainer", "Owner"]
LABELS = [
    "bug",
    "feature",
    "documentation",
    "performance",
    "security",
    "ui",
    "testing",
    "good first issue",
]

PEOPLE = [
    ("quillcraft", "Quinn Craft"),
    ("amara.okafor", "Amara Okafor"),
    ("bjorn.lind", "Bjorn Lind"),
    ("chen.wei", "Chen Wei"),
    ("dara.nolan", "Dara Nolan"),
    ("elif.kaya", "Elif Kaya"),
    ("farid.haddad", "Farid Haddad"),
    ("greta.holm", "Greta Holm"),
    ("hiro.tanaka", "Hiro Tanaka"),
    ("ines.moreau", "Ines Moreau"),
    ("jonas.weber", "Jonas Weber"),
    ("kofi.mensah", "Kofi Mensah"),
    ("lena.novak", "Lena Novak"),
    ("mateo.ruiz", "Mateo Ruiz"),
    ("nadia.popescu", "Nadia Popescu"),
    ("oscar.berg", "Oscar Berg"),
    ("priya.nair", "Priya Nair"),
    ("quentin.roux", "Quentin Roux"),
    ("rosa.silva", "Rosa Silva"),
    ("sami.laine", "Sami Laine"),
    ("tariq.aziz", "Tariq Aziz"),
    ("uma.patel", "Uma Patel"),
    ("viktor.sokol", "Viktor Sokol"),
    ("wanda.zielinska", "Wanda Zielinska"),
    ("xavier.dupont", "Xavier Dupont"),
    ("yara.haddad", "Yara Haddad"),
    ("zoe.fischer", "Zoe Fischer"),
    ("aiden.walsh", "Aiden Walsh"),
    ("bea.santos", "Bea Santos"),
    ("colm.byrne", "Colm Byrne"),
    ("dina.levi", "Dina Levi"),
    ("emil.strand", "Emil Strand"),
]

PROJECTS = [
    ("quillcraft", "inkwell", "A tiny markdown note-taking app"),
    ("quillcraft", "dotfiles", "Shell and editor configuration"),
    ("quillcraft", "trail-log", "Log hikes and export GPX summaries"),
    ("amara.okafor", "pixel-forge", "Sprite editor for retro games"),
    ("chen.wei", "fastqueue", "Lock-free job queue library"),
    ("dara.nolan", "recipe-box", "Self-hosted recipe manager"),
    ("elif.kaya", "weatherly", "Weather dashboard with offline cache"),
    ("farid.haddad", "ledger-lite", "Plain-text accounting tools"),
    ("greta.holm", "bird-count", "Citizen science bird survey app"),
    ("hiro.tanaka", "kanji-drill", "Spaced repetition for kanji"),
    ("ines.moreau", "atlas-tiles", "Vector map tile server"),
    ("jonas.weber", "build-cache", "Remote cache for build artifacts"),
    ("kofi.mensah", "market-day", "Farmers market stall planner"),
    ("lena.novak", "docs-theme", "Documentation site theme"),
    ("mateo.ruiz", "chess-clock", "Tournament chess clock firmware"),
    ("nadia.popescu", "photo-sort", "Sort photos by date and place"),
    ("oscar.berg", "api-gateway", "Small HTTP API gateway"),
    ("priya.nair", "lab-notebook", "Electronic lab notebook"),
    ("rosa.silva", "budget-buddy", "Household budget planner"),
    ("sami.laine", "sauna-timer", "Timer app for sauna sessions"),
    ("tariq.aziz", "cli-charts", "Terminal charts and sparklines"),
    ("uma.patel", "garden-planner", "Plan beds and crop rotation"),
    ("viktor.sokol", "log-shipper", "Ship logs to object storage"),
    ("zoe.fischer", "quiz-night", "Pub quiz scoring web app"),
]

ISSUE_TOPICS = [
    "Crash when {x}",
    "Add support for {x}",
    "Improve docs for {x}",
    "Slow {x}",
    "Validate input in {x}",
    "Refactor {x}",
    "Flaky test in {x}",
    "Dark mode for {x}",
    "Wrong error message in {x}",
    "Translate {x}",
    "Upgrade dependency used by {x}",
]
THINGS = [
    "the settings page",
    "CSV export",
    "the login form",
    "search",
    "the sync job",
    "the CLI parser",
    "image upload",
    "the REST API",
    "the config loader",
    "date parsing",
    "the sidebar",
    "keyboard shortcuts",
    "the installer",
    "notifications",
    "pagination",
    "the cache layer",
]
COMMIT_VERBS = ["Fix", "Add", "Update", "Remove", "Refactor", "Document", "Test", "Tidy"]
FILES = [
    "README.md",
    "LICENSE",
    "Makefile",
    "src/main.py",
    "src/config.py",
    "src/utils.py",
    "tests/test_main.py",
    "docs/index.md",
    "docs/setup.md",
    ".gitignore",
]


def _file_text(path: str, project: str, description: str, rng: random.Random) -> str:
    if path == "README.md":
        return (
            f"# {project}\n\n{description}.\n\nInstall with `make install`, run with `make run`.\n"
        )
    if path == "LICENSE":
        return f"MIT License\n\nCopyright (c) {rng.randint(2015, 2023)} the {project} authors\n"
    if path.endswith(".py"):
        name = path.rsplit("/", 1)[-1][:-3]
        return f'"""{name} module of {project}."""\n\nVERSION = "{rng.randint(0, 3)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"\n\n\ndef {name}():\n    return VERSION\n'
    if path == "Makefile":
        return "install:\n\tpip install -e .\n\nrun:\n\tpython -m src.main\n"
    if path == ".gitignore":
        return "__pycache__/\n*.pyc\n.venv/\n"
    return f"# {path.rsplit('/', 1)[-1][:-3].title()}\n\nNotes for {project}.\n"


def seed_state(rng: random.Random) -> dict:
    """Build the forge's whole seed state from `rng` (plain data only)."""
    users = {
        name: {"username": name, "name": full, "password": f"pw-{name}"} for name, full in PEOPLE
    }
    names = [name for name, _ in PEOPLE]
    projects: dict[str, dict] = {}
    issues: dict[str, dict] = {}
    merge_requests: dict[str, dict] = {}
    for pid, (owner, name, description) in enumerate(PROJECTS, start=1):
        path = f"{owner}/{name}"
        members = {owner: "Owner"}
        for other in rng.sample([n for n in names if n != owner], rng.randint(3, 9)):
            members[other] = rng.choice(ROLES[:4])
        if owner != AGENT_USER and rng.random() < 0.35:
            members[AGENT_USER] = "Maintainer"
        files = {
            f: _file_text(f, name, description, rng)
            for f in FILES
            if f in FILES[:4] or rng.random() < 0.8
        }
        commits = []
        for n in range(rng.randint(8, 40)):
            commits.append(
                {
                    "sha": f"{rng.getrandbits(40):010x}",
                    "title": f"{rng.choice(COMMIT_VERBS)} {rng.choice(THINGS)}",
                    "author": rng.choice(list(members)),
                    "date": f"2024-{1 + n * 11 // 40:02d}-{rng.randint(1, 28):02d}",
                }
            )
        commits.sort(key=lambda c: c["date"], reverse=True)
        projects[path] = {
            "id": pid,
            "path": path,
            "namespace": owner,
            "name": name,
            "description": description,
            "visibility": rng.choice(["public", "public", "internal"]),
            "members": members,
            "files": files,
            "commits": commits,
            "branches": ["main"]
            + rng.sample(
                ["dev", "release-1.x", "feature/search", "fix/ci", "docs"], rng.randint(1, 3)
            ),
            "starred_by": sorted(rng.sample(names[1:], rng.randint(0, 20))),
            "next_issue_iid": 1,
            "next_mr_iid": 1,
        }
        member_names = list(members)
        seen_titles: set[str] = set()
        for _ in range(rng.randint(10, 24)):
            title = rng.choice(ISSUE_TOPICS).format(x=rng.choice(THINGS))
            if title in seen_titles:
                continue
            seen_titles.add(title)
            iid = projects[path]["next_issue_iid"]
            projects[path]["next_issue_iid"] += 1
            issues[f"{path}#{iid}"] = {
                "project": path,
                "iid": iid,
                "title": title,
                "description": f"Reported while working on {rng.choice(THINGS)}.",
                "state": "opened" if rng.random() < 0.65 else "closed",
                "labels": sorted(rng.sample(LABELS, rng.randint(0, 3))),
                "assignees": sorted(rng.sample(member_names, rng.randint(0, 2))),
                "author": rng.choice(names),
                "created": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "notes": [],
            }
        for _ in range(rng.randint(2, 8)):
            iid = projects[path]["next_mr_iid"]
            projects[path]["next_mr_iid"] += 1
            merge_requests[f"{path}!{iid}"] = {
                "project": path,
                "iid": iid,
                "title": f"{rng.choice(COMMIT_VERBS)} {rng.choice(THINGS)}",
                "source_branch": rng.choice(projects[path]["branches"][1:]),
                "target_branch": "main",
                "state": rng.choice(["opened", "opened", "merged", "closed"]),
                "author": rng.choice(member_names),
                "created": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            }
    return {
        "users": users,
        "projects": projects,
        "issues": issues,
        "merge_requests": merge_requests,
    }


def stars(project: dict) -> int:
    return len(project["starred_by"])


def role_of(project: dict, username: str) -> str | None:
    return project["members"].get(username)


def can_write(project: dict, username: str) -> bool:
    """Developers and above may edit issues; Maintainers and Owners manage members."""
    role = project["members"].get(username)
    return role is not None and ROLES.index(role) >= ROLES.index("Developer")


def can_manage(project: dict, username: str) -> bool:
    role = project["members"].get(username)
    return role in ("Maintainer", "Owner")
