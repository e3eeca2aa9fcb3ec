"""Rows for the dashboard tests: a cast of users, and runs, tasks and trajectories built like real ones."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.test import TestCase, override_settings

from apps.curriculum.models import Task
from apps.rollouts.models import Step, Trajectory
from apps.runs.models import Phase, Run
from tests.conftest import make_cast
from trainer.config import preset

# A 1x1 JPEG: enough for the screenshot view and the <img> tags.
TINY_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c19"
    "12130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b08"
    "0001000101011100ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400b51000"
    "02010303020403050504040000017d01020300041105122131410613516107227114328191a1082342b1c11552d1f0"
    "2433627282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a636465666768"
    "696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3"
    "c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda0008010100003f00fb"
    "d3ffd9"
)

_counter = {"n": 0}


def _next() -> int:
    _counter["n"] += 1
    return _counter["n"]


def make_run(owner, name: str = "demo", status: str = Run.Status.RUNNING) -> Run:
    return Run.objects.create(
        owner=owner, name=name, config=preset("demo-cpu").to_dict(), status=status
    )


def make_task(intent: str = "What is the price of the cheapest blue mug?", **fields) -> Task:
    n = _next()
    defaults = {
        "key": f"test-task-{n}",
        "config": {"intent": intent, "sites": ["shopping"], "start_url": "__SHOPPING__/"},
        "intent": intent,
        "sites": ["shopping"],
        "world": Task.World.SANDBOX,
        "split": Task.Split.TRAIN,
    }
    defaults.update(fields)
    return Task.objects.create(**defaults)


def make_trajectory(
    run=None,
    task=None,
    *,
    phase=None,
    steps: int = 2,
    p_yes=0.7,
    score=1.0,
    screenshot=False,
    **fields,
) -> Trajectory:
    task = task or make_task()
    defaults = {
        "status": Trajectory.Status.OK,
        "score": score,
        "orm_p_yes": p_yes,
        "orm_uncertainty": abs(p_yes - 0.5) if p_yes is not None else None,
        "reward": None if p_yes is None else float(p_yes >= 0.5),
        "step_count": steps,
        "final_answer": "$4.99",
        "sample_index": _next(),
    }
    defaults.update(fields)
    trajectory = Trajectory.objects.create(task=task, run=run, phase=phase, **defaults)
    for i in range(steps):
        step = Step(
            trajectory=trajectory,
            index=i,
            observation=f'<html> <button id="{i}" data-bbox="10,20,100,30"> Step {i} button </button> </html>',
            response=f'# Element: the button\ndo(action="Click", element="{i}")',
            action={"kind": "click", "element": str(i), "argument": None},
            url=f"http://127.0.0.1:9400/shop/page{i}",
            elapsed_ms=12.5,
        )
        if screenshot:
            step.screenshot.save("shot.jpg", ContentFile(TINY_JPEG), save=False)
        step.save()
    return trajectory


def make_phase(run, index: int = 1) -> Phase:
    return Phase.objects.create(run=run, index=index, status=Phase.Status.RUNNING)


@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
class CastTestCase(TestCase):
    """owner (operator), reviewer, outsider (logged in, no group); anonymous is the bare client."""

    @classmethod
    def setUpTestData(cls):
        cls.owner, cls.reviewer, cls.outsider = make_cast(get_user_model())

    def login(self, user) -> None:
        self.client.force_login(user)
