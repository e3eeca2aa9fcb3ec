"""The layering of trainer/, sandbox/ and apps/: no import cycles, and each package imports only what
its `__init__` docstring allows (tests/foundation/layering.py holds the contracts)."""

import functools

from tests.foundation import layering
from tests.foundation.layering import ROOT, import_graph, violations


@functools.cache
def _sources():
    return layering.read_sources()


def read_sources():
    return dict(_sources())


def with_line(sources, module, line):
    source, is_package = sources[module]
    return {**sources, module: (source + "\n" + line + "\n", is_package)}


def test_the_checkout_keeps_every_import_contract():
    assert violations(read_sources()) == []


def test_the_check_reads_every_module_of_the_three_packages():
    sources = read_sources()
    assert "trainer.learn.engine" in sources and "trainer.env.pool" in sources
    assert "sandbox.server" in sources and "apps.runs.stages" in sources
    assert len(sources) == sum(
        1
        for package in ("trainer", "sandbox", "apps")
        for p in (ROOT / package).rglob("*.py")
        if "migrations" not in p.parts
    )


def test_the_environment_importing_the_learning_code_fails_the_check():
    sources = with_line(
        read_sources(), "trainer.env.types", "from trainer.learn.engine import Engine"
    )
    found = violations(sources)
    assert found == [
        "trainer.env.types imports trainer.learn.engine: the environment never imports the learning code",
        "trainer.env.types imports trainer.learn.engine.Engine: the environment never imports the learning code",
    ]


def test_the_learning_code_importing_the_browser_fails_the_check():
    sources = with_line(read_sources(), "trainer.learn.data", "    import playwright.async_api")
    assert violations(sources) == [
        "trainer.learn.data imports playwright.async_api: the learning code never imports the browser"
    ]
    sources = with_line(
        read_sources(), "trainer.learn.orm", "from trainer.env.pool import BrowserPool"
    )
    assert any("trainer.learn.orm imports trainer.env.pool" in v for v in violations(sources))


def test_the_trainer_or_the_world_importing_django_or_the_apps_fails_the_check():
    sources = read_sources()
    assert violations(with_line(sources, "trainer.phase", "from django.conf import settings")) == [
        "trainer.phase imports django.conf: trainer is a pure-Python library",
        "trainer.phase imports django.conf.settings: trainer is a pure-Python library",
    ]
    found = violations(with_line(sources, "sandbox.oracle", "from apps.runs.models import Run"))
    assert (
        "sandbox.oracle imports apps.runs.models: the built-in world runs without the web app"
        in found
    )
    found = violations(with_line(sources, "trainer.learn.losses", "import celery"))
    assert found == ["trainer.learn.losses imports celery: trainer is a pure-Python library"]


def test_a_lazy_import_that_closes_a_loop_is_a_cycle():
    sources = with_line(
        read_sources(), "trainer.learn.engine", "def later():\n    from trainer.learn import sft"
    )
    assert violations(sources) == ["import cycle: trainer.learn.engine -> trainer.learn.sft"]
    sources = with_line(
        read_sources(),
        "apps.rollouts.models",
        "def later():\n    from apps.runs.stages import run_stage",
    )
    assert any(
        v.startswith("import cycle:") and "apps.rollouts.models" in v for v in violations(sources)
    )


def test_relative_imports_resolve_against_their_package():
    sources = {
        "pkg": ("", True),
        "pkg.a": ("from . import b\nfrom .b import thing\n", False),
        "pkg.b": ("from .a import other\n", False),
    }
    assert import_graph(sources) == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}
    assert violations(sources) == ["import cycle: pkg.a -> pkg.b"]


def test_no_trainer_module_but_the_config_schema_is_over_400_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / "trainer").rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert set(long) <= {"trainer/config.py"}, long
