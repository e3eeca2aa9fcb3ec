"""The command line's progress bars: episodes while rolling out, optimizer steps while training."""

from types import SimpleNamespace

from apps.runs.management.commands.train_run import StageBars


def a_stage(name="sft", index=0):
    return SimpleNamespace(name=name, phase=SimpleNamespace(index=index))


def test_a_stage_that_rolls_out_and_then_trains_switches_to_a_step_bar():
    bars = StageBars(stdout=None)
    progress = bars(a_stage())
    progress({"counts": {"done": 3, "pending": 1}})
    assert (bars.bar.unit, bars.bar.n, bars.bar.total) == ("episode", 3, 4)
    progress({"step": 7, "total": 9, "sft/loss": 1.5})
    assert (bars.bar.unit, bars.bar.n) == ("step", 7)
    assert bars.bar.desc.startswith("phase 0 sft training")
    progress({"step": 9, "total": 12})
    assert (bars.bar.n, bars.bar.total) == (9, 12)
    bars.close()


def test_a_training_stage_counts_steps_on_its_own_bar():
    bars = StageBars(stdout=None)
    progress = bars(a_stage("critic", 2))
    progress({"step": 4})
    assert (bars.bar.unit, bars.bar.n) == ("step", 4)
    assert bars.bar.desc.startswith("phase 2 critic")
    bars.close()


def test_copy_pretraining_and_sft_in_one_stage_each_get_a_bar_with_their_own_total():
    bars = StageBars(stdout=None)
    progress = bars(a_stage())
    progress({"counts": {"done": 4}})
    progress({"step": 1500, "total": 1500, "pretrain/loss": 1.4})
    assert bars.bar.desc.startswith("phase 0 sft pretrain")
    assert (bars.bar.n, bars.bar.total) == (1500, 1500)
    progress({"step": 1, "total": 803, "sft/loss": 8.0})
    assert bars.bar.desc.startswith("phase 0 sft training")
    assert (bars.bar.n, bars.bar.total) == (1, 803)
    bars.close()


def test_a_browser_stage_closing_metrics_do_not_open_a_training_bar():
    bars = StageBars(stdout=None)
    progress = bars(a_stage("eval", 1))
    progress({"counts": {"done": 165}})
    progress({"step": 1, "eval/success_rate": 0.0})  # record_phase_metrics: step = phase index
    assert (bars.bar.unit, bars.bar.n, bars.bar.total) == ("episode", 165, 165)
    assert bars.bar.desc == "phase 1 eval"
    bars.close()
