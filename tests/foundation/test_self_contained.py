"""The checkout carries what its code, tests and commands read: nothing points outside it.

Users clone the repository alone, so a path into a `shared/` folder beside the checkout (where the
project's reference material lived while it was built) would fail for every one of them.
"""

import re
from pathlib import Path

from tests.conftest import ROOT

# Written in pieces so that this file does not match itself.
OUTSIDE = re.compile(r"\.\./" + "shared" + r"|/" + "shared" + "/")
FOLDERS = [
    "apps",
    "trainer",
    "sandbox",
    "webrl_site",
    "tests",
    "scripts",
    "templates",
    "static",
    "docs",
    ".ci",
]
TOP_FILES = ["Makefile", "pyproject.toml", "manage.py", "docker-compose.yml", "README.md"]
SUFFIXES = {
    ".py",
    ".js",
    ".html",
    ".css",
    ".md",
    ".toml",
    ".yml",
    ".yaml",
    ".sh",
    ".cfg",
    ".ini",
    ".txt",
    ".json",
    "",
}
SKIP = {"__pycache__", ".pytest_cache", ".ruff_cache", "node_modules"}


def outside_references(root: Path) -> list[str]:
    """`path:line: text` for every source, test, doc or build file under `root` that names a path
    into a `shared/` folder outside the checkout."""
    files = [root / name for name in TOP_FILES]
    for folder in FOLDERS:
        files += [
            p
            for p in sorted((root / folder).rglob("*"))
            if p.is_file() and p.suffix in SUFFIXES and not SKIP & set(p.relative_to(root).parts)
        ]
    found = []
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return found


def test_no_source_test_or_doc_file_reads_outside_the_checkout():
    assert outside_references(ROOT) == []


def test_the_check_finds_a_reference_to_a_shared_folder_beside_the_checkout(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text('PATH = "../' + 'shared/data/x.json"\n')
    (tmp_path / "trainer").mkdir()
    (tmp_path / "trainer" / "y.py").write_text("ok = 1\nP = '/work/" + "shared/docs'\n")
    (tmp_path / "Makefile").write_text("all:\n\ttrue\n")
    assert sorted(outside_references(tmp_path)) == [
        "tests/test_x.py:1: PATH = " + '"../' + 'shared/data/x.json"',
        "trainer/y.py:2: P = '/work/" + "shared/docs'",
    ]
