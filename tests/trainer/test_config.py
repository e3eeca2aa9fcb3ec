import dataclasses
import json

import pytest

from trainer.config import ConfigError, RunConfig, load_config, preset


@pytest.mark.parametrize("name", ["demo-cpu", "paper-llama8b"])
def test_it_round_trips_every_preset_through_a_dict_and_json(name):
    config = preset(name)
    assert RunConfig.from_dict(config.to_dict()) == config
    assert RunConfig.from_dict(json.loads(config.to_json())) == config


def test_the_paper_preset_holds_the_papers_hyperparameters():
    c = preset("paper-llama8b")
    assert (c.actor.lr, c.critic.lr, c.sft.lr, c.orm.lr) == (1e-6, 1e-6, 1e-5, 5e-6)
    assert (c.actor.gamma, c.actor.lam, c.engine.weight_decay, c.engine.max_grad_norm) == (
        0.9,
        0.5,
        0.01,
        1.0,
    )
    assert (c.replay.conf_low, c.replay.conf_high, c.replay.cap_ratio) == (0.5, 0.95, 2.0)
    assert c.curriculum.critic_band == (0.05, 0.75)
    assert (c.rollout.temperature, c.rollout.top_p, c.rollout.max_steps) == (1.0, 0.9, 30)
    assert (c.engine.max_seq_len, c.engine.checkpoint_every, c.engine.zero_stage) == (16384, 400, 3)
    assert c.eval.temperature == 0.0 and c.curriculum.tasks_per_phase == 500


def test_it_names_the_field_and_the_bad_value_for_a_wrong_type():
    with pytest.raises(ConfigError, match=r"actor.lr: expected a float, got 'abc'"):
        RunConfig.from_dict({"actor": {"lr": "abc"}})


def test_it_suggests_the_closest_key_for_an_unknown_one():
    with pytest.raises(ConfigError, match=r"unknown key 'actor.lrr' \(did you mean 'actor.lr'\?\)"):
        RunConfig.from_dict({"actor": {"lrr": 1e-5}})
    with pytest.raises(ConfigError, match=r"did you mean 'engine'"):
        RunConfig.from_dict({"engin": {}})


def test_it_rejects_values_outside_a_literal_and_booleans_posing_as_numbers():
    with pytest.raises(ConfigError, match=r"actor.objective: expected one of"):
        RunConfig.from_dict({"actor": {"objective": "ppo"}})
    with pytest.raises(ConfigError, match=r"seed: expected an integer, got True"):
        RunConfig.from_dict({"seed": True})


def test_overrides_parse_numbers_lists_and_plain_strings():
    c = preset("demo-cpu").with_overrides(
        [
            "actor.lr=1e-5",
            "curriculum.critic_band=[0.1, 0.6]",
            "engine.device=cpu",
            "eval.split=train",
        ]
    )
    assert c.actor.lr == 1e-5 and c.curriculum.critic_band == (0.1, 0.6)
    assert c.engine.device == "cpu" and c.eval.split == "train"
    with pytest.raises(ConfigError, match="did you mean 'actor.lr'"):
        c.with_overrides(["actor.lrr=1"])
    with pytest.raises(ConfigError, match="expected section.field=value"):
        c.with_overrides(["actor.lr"])


def test_it_checks_the_bands_and_the_schema_version():
    with pytest.raises(ConfigError, match="critic_band"):
        RunConfig.from_dict({"curriculum": {"critic_band": [0.8, 0.2]}})
    with pytest.raises(ConfigError, match="schema_version"):
        RunConfig.from_dict({"schema_version": 99})


def test_load_config_reads_a_file_and_reports_a_missing_one(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(preset("demo-cpu").with_overrides(["seed=7"]).to_json())
    assert load_config(str(path), ["actor.lr=0.5"]).seed == 7
    assert load_config(str(path), ["actor.lr=0.5"]).actor.lr == 0.5
    with pytest.raises(ConfigError, match="no such preset or file"):
        load_config(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(str(tmp_path / "bad.json"))


def test_the_cpu_preset_shows_small_models_the_compact_page_and_demonstrates_a_subset():
    c = preset("demo-cpu")
    assert c.rollout.observation == "compact" and c.engine.max_seq_len == 1024
    assert 0 < c.sft.demo_tasks < 2215
    paper = preset("paper-llama8b")
    assert paper.rollout.observation == "webrl" and paper.sft.demo_tasks == 0
    with pytest.raises(ConfigError, match="sft.demo_tasks"):
        c.with_overrides(["sft.demo_tasks=-1"])
    with pytest.raises(ConfigError, match="rollout.observation: expected one of"):
        c.with_overrides(["rollout.observation=full"])


def test_the_paper_preset_decodes_freely_with_the_released_prompts():
    c = preset("paper-llama8b")
    assert (c.rollout.decoding, c.rollout.prompt) == ("free", "webrl")


def test_decoding_and_prompt_variants_are_checked_with_the_choices_named():
    c = preset("paper-llama8b").with_overrides(
        ["rollout.decoding=valid_actions", "rollout.prompt=instruction_last"]
    )
    assert RunConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ConfigError, match="rollout.decoding.*'free', 'valid_actions'"):
        preset("paper-llama8b").with_overrides(["rollout.decoding=trie"])
    rollout = dataclasses.replace(preset("paper-llama8b").rollout, prompt="last")
    with pytest.raises(
        ConfigError, match="rollout.prompt: set it to 'webrl' or 'instruction_last'"
    ):
        dataclasses.replace(preset("paper-llama8b"), rollout=rollout)


def test_the_orm_settings_are_checked_and_a_judge_needs_its_url_and_model():
    base = preset("demo-cpu")
    for bad, match in (
        ("orm.threshold=1.5", "orm.threshold"),
        ("orm.holdout_fraction=1.0", "orm.holdout_fraction"),
        ("orm.examples_per_class=-1", "orm.examples_per_class"),
        ("orm.heldout_tasks=-5", "orm.heldout_tasks"),
        ("orm.backend=openai", "orm.judge_url and orm.judge_model"),
    ):
        with pytest.raises(ConfigError, match=match):
            base.with_overrides([bad])
    judge = base.with_overrides(
        ["orm.backend=openai", "orm.judge_url=http://127.0.0.1:8000/v1", "orm.judge_model=m"]
    )
    assert judge.orm.backend == "openai" and RunConfig.from_dict(judge.to_dict()) == judge
