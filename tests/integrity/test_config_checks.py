"""Launch config values are range-checked, URLs need a scheme and a host, the checkpoint root stays
inside the deployment's own; the launch form shows each as a field error."""

from __future__ import annotations

import pytest

from trainer.config import ConfigError, preset


@pytest.mark.parametrize(
    "override, message",
    [
        ("run.phases=-1", "run.phases: must be between 0 and 1000"),
        ("rollout.slots=0", "rollout.slots: must be >= 1"),
        ("rollout.top_p=1.5", "rollout.top_p"),
        ("actor.gamma=2", "actor.gamma"),
        ("orm.threshold=-0.1", "orm.threshold"),
        ("engine.zero_stage=4", "engine.zero_stage"),
        ("sft.lr=NaN", "sft.lr: must be a finite number"),
        ("engine.checkpoint_root=/etc", "engine.checkpoint_root: must be a relative path"),
        ("engine.checkpoint_root=../../elsewhere", "engine.checkpoint_root"),
        ("engine.checkpoint_root=~root", "engine.checkpoint_root"),
        ("rollout.server_url=localhost:8000", "rollout.server_url: expected http(s)://host"),
        ("curriculum.generator_url=file:///etc/passwd", "curriculum.generator_url"),
        ("curriculum.feasibility_url=http://", "curriculum.feasibility_url"),
        ("curriculum.feasibility_url=http://judge:notaport/v1", "port"),
        ("orm.judge_url=judge.example.org/v1", "orm.judge_url: expected http(s)://host"),
        ("orm.judge_url=file:///etc/passwd", "orm.judge_url"),
        ("eval.split=te\x00st", "eval.split: contains a NUL"),
    ],
)
def test_bad_values_are_refused_with_the_key_named(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        preset("demo-cpu").with_overrides([override])


def test_good_values_pass():
    config = preset("demo-cpu").with_overrides(
        ["run.phases=0", "rollout.server_url=http://vllm:8000/v1",
         "curriculum.feasibility_url=https://judge.example.org", "engine.checkpoint_root=runs/a",
         "orm.judge_url=http://judge:8000/v1"]
    )  # fmt: skip
    assert config.run.phases == 0 and config.engine.checkpoint_root == "runs/a"
    assert preset("paper-llama8b").run.phases == 8


@pytest.mark.django_db
def test_the_launch_form_names_the_bad_field(django_user_model):
    from apps.runs.forms import LaunchForm

    data = {k: v for k, v in LaunchForm().initial.items()}
    form = LaunchForm()
    data = {key: form.fields[key].initial for key in form.config_keys}
    data["curriculum.critic_band"] = "0.05, 0.75"
    data.update({"name": "x", "run.phases": "-3", "rollout.server_url": "ftp://x"})
    bound = LaunchForm(data)
    assert not bound.is_valid()
    assert "run.phases" in bound.errors
