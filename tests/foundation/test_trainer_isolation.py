"""`trainer/` (and the built-in world) never import Django, Celery, Channels or `apps`."""

import subprocess
import sys

from tests.conftest import ROOT

CHECK = r"""
import importlib, pkgutil, sys
import trainer
names = ["trainer"] + [m.name for m in pkgutil.walk_packages(trainer.__path__, "trainer.")]
try:
    import sandbox
    names += ["sandbox"] + [m.name for m in pkgutil.walk_packages(sandbox.__path__, "sandbox.")]
except ImportError:
    pass
for name in names:
    if name.endswith("__main__"):
        continue
    importlib.import_module(name)
bad = sorted(m for m in sys.modules if m.split(".")[0] in {"django", "celery", "channels", "apps", "webrl_site", "daphne", "kombu"})
print("IMPORTED", len(names))
print("BAD", bad)
"""


def test_trainer_imports_nothing_from_the_web_stack():
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    result = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "BAD []" in result.stdout, result.stdout
