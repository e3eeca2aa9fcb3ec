"""RunConfig: one frozen dataclass holding every knob of a WebRL run (spec §1.6), strict (de)serialisation.

Defaults are the paper's values; `preset("demo-cpu")` resizes things for 2 CPU cores.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = 1


class ConfigError(ValueError):
    """A config value or key is wrong; the message says which and how to fix it."""


@dataclass(frozen=True)
class ModelSection:
    policy: str = ""
    """Local directory of a Hugging Face causal LM (actor init); "" builds a tiny Llama from the fields below."""
    tokenizer: str = ""
    """Local tokenizer directory; "" uses the policy's directory (or trains a BPE for a tiny model)."""
    hidden_size: int = 256
    """Tiny Llama: hidden width d."""
    intermediate_size: int = 688
    """Tiny Llama: MLP width."""
    num_layers: int = 4
    """Tiny Llama: transformer blocks."""
    num_heads: int = 4
    """Tiny Llama: attention heads (also key/value heads)."""
    vocab_size: int = 8192
    """Tiny Llama: byte-level BPE vocabulary size trained on the world's pages and tasks."""
    pretrain_steps: int = 0
    """Tiny Llama: next-token steps on a synthetic copying corpus before SFT (trainer/learn/pretrain.py); 0 = none."""
    pretrain_lr: float = 1e-3
    """Tiny Llama: learning rate of that pretraining (AdamW, constant)."""
    init: str = ""
    """Tiny Llama: local directory of a base checkpoint at these sizes with its tokenizer (such as
    `python -m trainer induction-base`'s `final/`); phase 0 fine-tunes it instead of copy-pretraining a
    fresh model. An experiment (docs/results.md); "" = none."""


@dataclass(frozen=True)
class RolloutSection:
    temperature: float = 1.0
    """Sampling temperature for training rollouts (P: Table 4)."""
    top_p: float = 0.9
    """Nucleus sampling for rollouts (harness default, §11.9)."""
    max_new_tokens: int = 2048
    """Most tokens one action may have (not stated for rollouts; eval uses 2048)."""
    max_steps: int = 30
    """Most actions per episode (§7.1)."""
    max_repeats: int = 5
    """Early stop after this many identical consecutive actions (§7.1)."""
    max_parse_failures: int = 3
    """Early stop after this many consecutive unparsable actions (§7.1)."""
    contexts: int = 4
    """Browser contexts per rollout worker."""
    slots: int = 8
    """Episodes in flight at once across a worker's contexts."""
    tasks_per_phase: int = 500
    """Tasks rolled out per phase after filtering (P: App. A)."""
    backend: Literal["hf", "openai", "vllm"] = "hf"
    """Policy sampling: in-process HF generate, an OpenAI-compatible URL, or a launched `vllm serve`."""
    server_url: str = ""
    """Base URL of the OpenAI-compatible server when backend is "openai"."""
    batch_size: int = 8
    """Prompts per HF generate call."""
    observation: Literal["webrl", "compact"] = "webrl"
    """The agent's view of a page: §7.2's simplified HTML as released, or `compact` (no boxes, test
    ids, repeated data-text or bare wrapper tags; about a quarter of the tokens) for small models."""
    decoding: Literal["free", "valid_actions"] = "free"
    """How the policy writes an action, in rollouts and evaluation alike: `free` as the released
    harness, or `valid_actions`: token by token through a trie of the actions valid on the observed
    page (trainer/env/valid_actions.py: its elements, spans of the instruction, option texts), so every
    action parses and names an element that exists. Recorded token ids and log-probs stay the
    model's own (unconstrained) ones, so training is unchanged. Not in the paper."""
    arguments: Literal["spans", "phrases"] = "spans"
    """With `valid_actions`: the Type/Search arguments offered, every word span of the instruction
    (up to 14 words), or `phrases`, the spans that cut no quoted phrase and no run of capitalised
    words in two ("The Rolling Pin", never "The"), which a small model otherwise ends too early.
    Not in the paper."""
    block_noop_repeats: bool = False
    """With `valid_actions`: the previous action is not offered again while the page is the one it
    was taken on (it changed nothing visible), so a small model cannot click one link until the
    repeat limit. Not in the paper."""
    answer_questions: bool = False
    """With `valid_actions`: an instruction that is a question (ends with "?") cannot be exited
    with an empty message (WebArena's questions are information-seeking tasks, judged on the
    answer). Not in the paper."""
    prompt: Literal["webrl", "instruction_last"] = "webrl"
    """Agent, critic and ORM prompts: `webrl` is §7.3/§4.1 byte for byte; `instruction_last` also
    repeats the task instruction right before the reply (trainer/prompts.py), where a small model
    that cannot look back to the first line can still copy from it. Not in the paper."""


@dataclass(frozen=True)
class OrmSection:
    model: str = ""
    """Local directory of the ORM checkpoint (a causal LM answering YES/NO); "" = none yet."""
    lr: float = 5e-6
    """ORM SFT learning rate (P: Table 5)."""
    schedule: Literal["cosine", "constant"] = "cosine"
    """Learning-rate schedule (P: Table 5)."""
    warmup_ratio: float = 0.1
    """Fraction of optimizer steps spent warming up (P: Table 5)."""
    epochs: int = 4
    """Passes over the ORM data (P: Table 5)."""
    threshold: float = 0.5
    """Trajectory counts as success when P(YES) >= threshold (§4.1); with `calibrate` on, the
    threshold stored with the ORM checkpoint replaces it."""
    holdout_fraction: float = 0.1
    """Share of the training tasks (all their examples) kept out of ORM training to calibrate the
    threshold and report held-out figures."""
    balance: bool = True
    """Sample equal numbers of YES and NO training examples: the larger class is subsampled, its
    sources (oracle, policy, each near-miss kind) in turn; nothing is repeated (not in the paper:
    phase 0's data is mostly oracle successes, and an unbalanced ORM says YES to failures)."""
    examples_per_class: int = 0
    """Most YES (and most NO) training examples after balancing; 0 = all of the smaller class."""
    near_misses: bool = True
    """Add failures built from the oracle's successes without a browser (another instance's
    instruction, cut short, another instance's answer, exit before the last change), each checked
    by the task's evaluator where it runs without the page (trainer/orm_data.py)."""
    checks: bool = False
    """End the ORM prompt (after the page and any repeated intent) with facts read off its own text
    (`trainer.prompts.orm_checks`): the instruction's names found in neither the actions nor the
    final page, whether the final answer is on that page, how many actions repeat the one before.
    For a judge too small to compare the intent with the trajectory itself; not in the paper, and
    no ground truth goes in. Training and scoring use it alike."""
    max_seq_len: int = 0
    """Longest ORM input in tokens, in training and in scoring alike (the page's middle is cut
    first, with a marker); 0 = `engine.max_seq_len`, which also caps it. A shorter ORM input
    costs less per step, so the same minutes buy more epochs; with `checks` on, the facts that
    matter most sit outside the page."""
    calibrate: bool = True
    """Choose the P(YES) threshold with the best balanced accuracy on the held-out tasks, store it
    with the ORM checkpoint (orm_calibration.json) and label with it."""
    heldout_tasks: int = 200
    """Test-split tasks the oracle solves in phase 0 (sandbox world): the held-out successes and
    near-misses the ORM's figures are measured on, never trained on; 0 = none."""
    backend: Literal["trained", "openai"] = "trained"
    """The ORM: a causal LM fine-tuned here to answer YES/NO, or an LLM judge behind an
    OpenAI-compatible chat URL given the same §4.1 prompt (no training)."""
    judge_url: str = ""
    """Base URL of the judge when backend is "openai", e.g. http://127.0.0.1:8000/v1."""
    judge_model: str = ""
    """Model name sent to the judge."""
    judge_api_key_env: str = ""
    """Name of the environment variable holding the judge's API key; "" sends none."""
    reward_source: Literal["orm", "ground_truth"] = "orm"
    """What the RL stages train on: the ORM's verdict (the paper), or the task's evaluator, an
    ablation that tells an RL failure from an ORM failure (not in the paper). A human label wins
    over either; a rollout without an evaluator score keeps the ORM's verdict. The ORM still
    judges every rollout, so its figures are reported alike."""


@dataclass(frozen=True)
class CriticSection:
    lr: float = 1e-6
    """Critic learning rate, constant (P: Table 4)."""
    epochs: int = 1
    """Critic passes over the merged phase data (P: Table 4)."""
    head_init_std: float = 0.2
    """Std of the N(0, std²) init of the first two head layers (§3.1)."""


@dataclass(frozen=True)
class ActorSection:
    objective: Literal["webrl_paper", "webrl_released", "sft"] = "webrl_released"
    """Actor loss: the paper's squared regression (§2.1), the released code's variant (§2.2), or NLL."""
    lr: float = 1e-6
    """Actor learning rate, constant (P: Table 4)."""
    epochs: int = 1
    """Actor passes over the merged phase data (P: Table 4)."""
    gamma: float = 0.9
    """Discount γ of the Monte-Carlo return (§1.5)."""
    lam: float = 0.5
    """λ mixing next-step and final-step advantages, eq. 9 (§2.1)."""
    beta: float = 1.0
    """KL coefficient β of the paper's objective (§2.1)."""
    advantage_offset: float = -0.05
    """Released code: constant added to the raw advantage (§2.2 step 2)."""
    advantage_clip: float = 1.0
    """Released code: raw advantage clamped to [-clip, clip] (§2.2 step 2)."""
    positive_advantage: float = 1.0
    """Released code: binarised advantage when A_raw >= 0 (§2.2 step 2)."""
    negative_advantage: float = -0.6
    """Released code: binarised advantage when A_raw < 0 (§2.2 step 2)."""
    beta_base: float = 1.0
    """Released code: β0 by default (§2.2 step 4)."""
    beta_high: float = 5.0
    """Released code: β0 when the reference is confident (§2.2 step 4)."""
    ref_conf_positive: float = 0.8
    """Released code: A>=0 and ref geo-mean prob >= this gives β_high (§2.2 step 4)."""
    ref_conf_negative: float = 0.9
    """Released code: A<0 and ref geo-mean prob < this gives β_high (§2.2 step 4)."""
    huber_delta: float = 1.0
    """Released code: SmoothL1 beta of the Huber loss (§2.2 step 8)."""


@dataclass(frozen=True)
class SftSection:
    lr: float = 1e-5
    """SFT learning rate (P: Table 4)."""
    schedule: Literal["cosine", "constant"] = "cosine"
    """Learning-rate schedule (P: Table 4)."""
    warmup_ratio: float = 0.1
    """Fraction of optimizer steps spent warming up (P: Table 4)."""
    epochs: int = 1
    """Passes over the demonstrations (P: Table 4)."""
    demo_tasks: int = 0
    """Train tasks whose oracle demonstrations phase 0 fine-tunes on; 0 = rollout.tasks_per_phase."""
    demos_per_template: int = 4
    """Phase 0 demonstrates at least this many train tasks of every template (all of a template's
    when it has fewer), even beyond demo_tasks, which then tops the set up template by template."""
    prompt_weight: float = 0.0
    """Weight of a language-modelling loss on the prompt's tokens beside the action's (0 = the
    paper's SFT, actions only). Used by every policy fine-tune on demonstrations (SFT, SFT
    continued, filtered BC), never by the ORM."""


@dataclass(frozen=True)
class ReplaySection:
    conf_low: float = 0.5
    """Replay keeps steps with conf > conf_low (exclusive), conf = 1/perplexity (§5)."""
    conf_high: float = 0.95
    """Replay keeps steps with conf <= conf_high (inclusive) (§5)."""
    cap_ratio: float = 2.0
    """Replay at most cap_ratio × the current phase's steps (§5)."""
    include_sft: bool = True
    """Treat the SFT demonstrations as earlier successful experience (§1.2.4)."""


@dataclass(frozen=True)
class CurriculumSection:
    critic_band: tuple[float, float] = (0.05, 0.75)
    """Keep a generated task when either critic head's P(success) of its start state is in this band (§6.3)."""
    tasks_per_phase: int = 500
    """Tasks kept per phase after all filters (P: App. A)."""
    generator: Literal["offline", "openai", "hf"] = "offline"
    """Task generator: offline templates, an OpenAI-compatible chat model, or a local HF model."""
    generator_url: str = ""
    """Base URL of the OpenAI-compatible generator."""
    seeds_per_call: int = 10
    """Failed tasks shown per generation call (§6.1)."""
    calls_per_site: int = 2
    """Generation calls per website per round (§6.1)."""
    approval: Literal["auto", "reviewer"] = "auto"
    """Generated tasks are approved automatically or wait for a curator."""
    dedupe_threshold: float = 0.9
    """Drop a generated task whose similarity to an existing one is at least this."""
    feasibility_url: str = ""
    """OpenAI-compatible URL of the feasibility judge (§6.2); "" skips the judge."""


@dataclass(frozen=True)
class EngineSection:
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where tensors live; "auto" picks CUDA when available."""
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """Parameter dtype; "auto" = bf16 on CUDA, fp32 on CPU."""
    backend: Literal["torch", "deepspeed"] = "torch"
    """Plain torch, or DeepSpeed (used only under a multi-process launcher)."""
    zero_stage: int = 3
    """DeepSpeed ZeRO stage (§1.6)."""
    offload: bool = True
    """DeepSpeed: offload parameters and optimizer state to CPU (§1.6)."""
    micro_batch: int = 1
    """Sequences per forward pass (code: 1 per GPU)."""
    length_window: int = 64
    """SFT and ORM training sort each window of this many shuffled sequences by length before
    cutting it into micro-batches (whose order is then shuffled), so a micro-batch pads less;
    0 or 1 keeps the shuffled order. On a demo-cpu phase 0's 2,607 records (2 epochs, batches of
    4) padding fell from 26.5% to 2.8% of the tokens computed (4.55M -> 3.44M)."""
    grad_accum: int = 16
    """Micro-batches per optimizer step; global batch = micro_batch × grad_accum × world size (paper 128)."""
    max_seq_len: int = 16384
    """Token budget per sequence (§1.6); a longer prompt keeps its instruction, intent and history and
    loses the middle of its page HTML (trainer/data.py `fit_prompt`), so the action survives."""
    checkpoint_every: int = 400
    """Save a checkpoint every this many optimizer steps; the last step is always saved (§1.6, §11.17)."""
    checkpoint_root: str = "checkpoints"
    """Directory under which runs write their checkpoints."""
    keep_step_checkpoints: int = 2
    """Step checkpoints (with optimizer state) kept per training stage, the newest; each stage's
    final model is always kept; 0 keeps every one."""
    weight_decay: float = 0.01
    """AdamW weight decay (§1.6)."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm (§1.6)."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward to save memory (the paper uses it on GPUs)."""


@dataclass(frozen=True)
class EvalSection:
    temperature: float = 0.0
    """Evaluation decoding temperature (§7.3)."""
    split: str = "test"
    """Task split evaluated after each phase."""
    max_tokens: int = 2048
    """Most tokens per action at evaluation (§1.6)."""


TRACKERS = ("tensorboard", "wandb", "mlflow")


@dataclass(frozen=True)
class RunSection:
    phases: int = 8
    """Number of WebRL phases N (not stated in the paper, §11.1)."""
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    """Experiment trackers that receive every metric point, as Hugging Face's `report_to`: any of
    "tensorboard" (event files under the dashboard's TENSORBOARD_ROOT/run-<id>/), "wandb", "mlflow"
    (optional extras: `pip install -e ".[wandb]"`); [] = none."""


@dataclass(frozen=True)
class RunConfig:
    schema_version: int = SCHEMA_VERSION
    """Version of this document's layout."""
    preset: str = "paper-llama8b"
    """Name of the preset these values started from."""
    world: Literal["sandbox", "webarena", "miniwob"] = "sandbox"
    """Which web world the agent acts in."""
    world_seed: int = 0
    """The built-in world's seed (its products, forums, people, places and task splits); the world
    at WORLD_URL must be served from it (`world serve --seed N`, tasks by `load_world_tasks --seed N`)."""
    seed: int = 0
    """Seed for model init, sampling and shuffles."""
    model: ModelSection = field(default_factory=ModelSection)
    rollout: RolloutSection = field(default_factory=RolloutSection)
    orm: OrmSection = field(default_factory=OrmSection)
    critic: CriticSection = field(default_factory=CriticSection)
    actor: ActorSection = field(default_factory=ActorSection)
    sft: SftSection = field(default_factory=SftSection)
    replay: ReplaySection = field(default_factory=ReplaySection)
    curriculum: CurriculumSection = field(default_factory=CurriculumSection)
    engine: EngineSection = field(default_factory=EngineSection)
    eval: EvalSection = field(default_factory=EvalSection)
    run: RunSection = field(default_factory=RunSection)

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise ConfigError(
                f"schema_version: this trainer reads version {SCHEMA_VERSION}, got {self.schema_version}"
            )
        lo, hi = self.curriculum.critic_band
        if not 0.0 <= lo <= hi <= 1.0:
            raise ConfigError(f"curriculum.critic_band: need 0 <= low <= high <= 1, got {(lo, hi)}")
        if not 0.0 <= self.replay.conf_low < self.replay.conf_high <= 1.0:
            raise ConfigError("replay: need 0 <= conf_low < conf_high <= 1")
        for name in ("micro_batch", "grad_accum", "max_seq_len", "checkpoint_every"):
            if getattr(self.engine, name) < 1:
                raise ConfigError(f"engine.{name}: must be >= 1")
        if self.model.pretrain_steps < 0:
            raise ConfigError("model.pretrain_steps: must be >= 0 (0 = no copy pretraining)")
        if self.model.init and self.model.policy:
            raise ConfigError(
                "model.init: a base for the tiny Llama; leave it empty when model.policy names a model"
            )
        if self.model.pretrain_lr <= 0:
            raise ConfigError("model.pretrain_lr: must be > 0")
        if self.rollout.decoding not in ("free", "valid_actions"):
            raise ConfigError(
                f"rollout.decoding: set it to 'free' or 'valid_actions', got {self.rollout.decoding!r}"
            )
        if self.rollout.prompt not in ("webrl", "instruction_last"):
            raise ConfigError(
                f"rollout.prompt: set it to 'webrl' or 'instruction_last', got {self.rollout.prompt!r}"
            )
        if self.world_seed < 0:
            raise ConfigError("world_seed: must be >= 0")
        if self.sft.demos_per_template < 0:
            raise ConfigError("sft.demos_per_template: must be >= 0")
        if self.sft.demo_tasks < 0:
            raise ConfigError("sft.demo_tasks: must be >= 0 (0 = rollout.tasks_per_phase)")
        o = self.orm
        if not 0.0 <= o.threshold <= 1.0:
            raise ConfigError(f"orm.threshold: must be in [0, 1], got {o.threshold}")
        if not 0.0 <= o.holdout_fraction < 1.0:
            raise ConfigError(f"orm.holdout_fraction: must be in [0, 1), got {o.holdout_fraction}")
        if o.examples_per_class < 0:
            raise ConfigError("orm.examples_per_class: must be >= 0 (0 = the smaller class's size)")
        if o.heldout_tasks < 0:
            raise ConfigError("orm.heldout_tasks: must be >= 0 (0 = no held-out oracle runs)")
        if o.backend == "openai" and not (o.judge_url and o.judge_model):
            raise ConfigError(
                'orm.backend "openai" needs orm.judge_url and orm.judge_model (an OpenAI-compatible '
                'chat endpoint and its model name), or use orm.backend "trained"'
            )
        _check_values(self)
        _check_trackers(self.run.report_to)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Build from a JSON-like dict; unknown keys and wrong types raise ConfigError."""
        return _build(cls, d, "")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict that `from_dict` turns back into an equal config."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def with_overrides(self, overrides: list[str]) -> RunConfig:
        """Apply `section.field=value` strings (the CLI's --set); values parse as JSON, else as text."""
        d = self.to_dict()
        for item in overrides:
            key, sep, raw = item.partition("=")
            if not sep:
                raise ConfigError(f"override {item!r}: expected section.field=value")
            parts = key.strip().split(".")
            target = d
            for i, part in enumerate(parts[:-1]):
                if part not in target or not isinstance(target[part], dict):
                    raise ConfigError(_unknown(".".join(parts[: i + 1]), _all_keys()))
                target = target[part]
            if parts[-1] not in target:
                raise ConfigError(_unknown(key.strip(), _all_keys()))
            target[parts[-1]] = _parse_override(raw, _field_type(parts))
        return RunConfig.from_dict(d)


def _check_trackers(names: list[str]) -> None:
    if not isinstance(names, list | tuple):
        raise ConfigError(f"run.report_to: expected a list of tracker names, got {names!r}")
    for name in names:
        if name not in TRACKERS:
            close = difflib.get_close_matches(name, TRACKERS, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"run.report_to: unknown tracker {name!r}{hint}; choose from {', '.join(TRACKERS)}"
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"run.report_to: {names!r} names a tracker twice")


def _field_type(parts: list[str]) -> Any:
    cls: Any = RunConfig
    for part in parts:
        cls = typing.get_type_hints(cls)[part]
    return cls


def _parse_override(raw: str, tp: Any) -> Any:
    if tp is str or (
        typing.get_origin(tp) is Literal and all(isinstance(a, str) for a in tp.__args__)
    ):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        if typing.get_origin(tp) is list:  # `run.report_to=tensorboard,wandb`
            return [part.strip() for part in raw.split(",") if part.strip()]
        return raw


def _all_keys(cls: Any = RunConfig, prefix: str = "") -> list[str]:
    keys = []
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            keys.append(prefix + f.name)
            keys.extend(_all_keys(tp, f"{prefix}{f.name}."))
        else:
            keys.append(prefix + f.name)
    return keys


def _unknown(path: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(path, candidates, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {path!r}{hint}"


def _build(cls: Any, d: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "config"
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected an object, got {d!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in d:
        if key not in names:
            raise ConfigError(_unknown(prefix + str(key), _all_keys()))
    kwargs = {}
    for name in names & d.keys():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, d[name], f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(prefix + name, d[name], tp)
    return cls(**kwargs)


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in tp.__args__)
    if typing.get_origin(tp) is tuple:
        return f"a list of {len(tp.__args__)} numbers"
    if typing.get_origin(tp) is list:
        return f"a list of {_describe(tp.__args__[0]).removeprefix('a ')}s"
    return {int: "an integer", float: "a float", str: "a string", bool: "true or false"}.get(
        tp, str(tp)
    )


def _coerce(path: str, value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    bad = ConfigError(f"{path}: expected {_describe(tp)}, got {value!r}")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in tp.__args__:
            return None
        (inner,) = [a for a in tp.__args__ if a is not type(None)]
        return _coerce(path, value, inner)
    if origin is Literal:
        if value not in tp.__args__:
            raise bad
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(tp.__args__):
            raise bad
        return tuple(
            _coerce(f"{path}[{i}]", v, t)
            for i, (v, t) in enumerate(zip(value, tp.__args__, strict=True))
        )
    if origin is list:
        if not isinstance(value, list | tuple):
            raise bad
        return [_coerce(f"{path}[{i}]", v, tp.__args__[0]) for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise ConfigError(f"{path}: unsupported field type {tp}")


# (dotted key, lowest, highest) of every bounded number; None = unbounded on that side.
RANGES: tuple[tuple[str, float | None, float | None], ...] = (
    ("seed", 0, 2**31 - 1),
    ("run.phases", 0, 1000),
    *((f"model.{k}", 1, None) for k in ("hidden_size", "intermediate_size", "num_layers",
                                         "num_heads", "vocab_size")),
    ("rollout.temperature", 0.0, None), ("rollout.top_p", 0.0, 1.0),
    *((f"rollout.{k}", 1, None) for k in ("max_new_tokens", "max_steps", "max_repeats",
                                           "max_parse_failures", "contexts", "slots",
                                           "tasks_per_phase", "batch_size")),
    ("orm.lr", 0.0, None), ("orm.warmup_ratio", 0.0, 1.0), ("orm.epochs", 1, None),
    ("orm.threshold", 0.0, 1.0), ("orm.holdout_fraction", 0.0, 0.9),
    ("orm.max_seq_len", 0, None),
    ("critic.lr", 0.0, None), ("critic.epochs", 1, None), ("critic.head_init_std", 0.0, None),
    ("actor.lr", 0.0, None), ("actor.epochs", 1, None), ("actor.gamma", 0.0, 1.0),
    ("actor.lam", 0.0, 1.0), ("actor.beta", 0.0, None), ("actor.advantage_clip", 0.0, None),
    ("actor.beta_base", 0.0, None), ("actor.beta_high", 0.0, None),
    ("actor.ref_conf_positive", 0.0, 1.0), ("actor.ref_conf_negative", 0.0, 1.0),
    ("actor.huber_delta", 0.0, None),
    ("sft.lr", 0.0, None), ("sft.warmup_ratio", 0.0, 1.0), ("sft.epochs", 1, None),
    ("sft.prompt_weight", 0.0, None),
    ("replay.cap_ratio", 0.0, None),
    ("curriculum.tasks_per_phase", 0, None), ("curriculum.seeds_per_call", 1, None),
    ("curriculum.calls_per_site", 1, None), ("curriculum.dedupe_threshold", 0.0, 1.0),
    ("engine.zero_stage", 0, 3), ("engine.length_window", 0, None), ("engine.weight_decay", 0.0, None),
    ("engine.max_grad_norm", 0.0, None), ("engine.keep_step_checkpoints", 0, None),
    ("eval.temperature", 0.0, None), ("eval.max_tokens", 1, None),
)  # fmt: skip
MAX_TEXT = 4096  # a path, URL or name
URL_FIELDS = (
    "rollout.server_url",
    "curriculum.generator_url",
    "curriculum.feasibility_url",
    "orm.judge_url",
)


def _leaves(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if dataclasses.is_dataclass(value):
        out = []
        for f in dataclasses.fields(value):
            out += _leaves(getattr(value, f.name), f"{prefix}{f.name}.")
        return out
    return [(prefix.rstrip("."), value)]


def _check_values(config: RunConfig) -> None:
    """Every number finite and in its range, no NUL in any text, URLs with a scheme and a host, and
    a checkpoint root inside the deployment's own (a relative path that does not climb out)."""
    import math
    import urllib.parse
    from pathlib import PurePosixPath, PureWindowsPath

    leaves = dict(_leaves(config))
    for key, value in leaves.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key}: must be a finite number, got {value}")
        if isinstance(value, int) and not -(2**53) <= value <= 2**53:  # JSON's exact integers
            raise ConfigError(f"{key}: {value} is too large")
        if isinstance(value, str) and "\x00" in value:
            raise ConfigError(f"{key}: contains a NUL character")
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise ConfigError(f"{key}: {len(value)} characters, at most {MAX_TEXT}")
    for key, low, high in RANGES:
        value = leaves[key]
        if (low is not None and value < low) or (high is not None and value > high):
            span = f">= {low}" if high is None else f"between {low} and {high}"
            raise ConfigError(f"{key}: must be {span}, got {value}")
    for key in URL_FIELDS:
        url = leaves[key]
        if not url:
            continue
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{key}: expected http(s)://host[:port]/..., got {url!r}")
        try:
            _ = parts.port
        except ValueError:
            raise ConfigError(f"{key}: the port in {url!r} is not a number") from None
    root = config.engine.checkpoint_root
    if (
        PurePosixPath(root).is_absolute()
        or PureWindowsPath(root).is_absolute()
        or ".." in PurePosixPath(root).parts
        or root.startswith("~")
    ):
        raise ConfigError(
            f"engine.checkpoint_root: must be a relative path inside CHECKPOINT_ROOT, got {root!r}"
        )


def preset(name: str) -> RunConfig:
    """A named starting point: `demo-cpu` (tiny models, 2 CPU cores) or `paper-llama8b` (§1.6)."""
    if name == "paper-llama8b":
        return RunConfig(preset=name)
    if name == "demo-cpu":
        return _demo_cpu()
    raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")


def _demo_cpu() -> RunConfig:
    # A 7.4M-parameter Llama trained from scratch. The paper's learning rates (1e-5 SFT, 1e-6 RL)
    # are tuned for a pretrained 8B model; a randomly initialised tiny model barely moves at those
    # rates within a few hundred steps, so SFT uses 1e-3 and the RL updates 1e-5/1e-4.
    # MEASURED.md: ~2,000 tokens/s training at this size on 2 cores, so the agent sees the compact
    # page view (median ~500 tokens a prompt instead of ~1,800), sequences are capped at 1,024
    # tokens, and phases are kept to tens of tasks.
    # The tiny model has no induction heads (docs/results.md, fourth attempt), so it cannot copy a
    # name from an instruction 450 tokens back; copy pretraining did not teach it (1,500 steps,
    # ~11 min, dropped). Instead the instruction is repeated right before the reply
    # (rollout.prompt "instruction_last") and decoding goes token by token through the page's valid
    # actions (rollout.decoding "valid_actions"), whose Type/Search arguments are spans of the
    # instruction: on 150 held-out oracle steps that took exact actions from 7% (free decoding)
    # to 34% (issue 19's pilot). Phase 0 demonstrates 500 train tasks, at least 4 of every
    # template, twice over. Typed arguments are whole names and quoted phrases, and a question is
    # not exited empty: the same SFT checkpoint then solved 6 of 165 test tasks instead of 1
    # (`eval_policy`, docs/results.md); not offering an action that changed nothing did nothing.
    # The ORM ends its prompt with facts read off it (orm.checks: the instruction's names the
    # trajectory never shows, whether the answer is on the page) and reads 512 tokens, which buys
    # 4 epochs in the minutes 2 took at 1,024: held-out balanced accuracy 0.714 -> 0.876, and
    # 0.636 -> 0.856 on near-misses, on one phase-0 run's data (three seeds: means 0.863 and
    # 0.847; `orm_measure --retrain`, docs/results.md).
    base = RunConfig()
    return dataclasses.replace(
        base,
        preset="demo-cpu",
        model=ModelSection(
            hidden_size=256,
            intermediate_size=688,
            num_layers=4,
            num_heads=4,
            vocab_size=8192,
            pretrain_steps=0,
        ),
        rollout=dataclasses.replace(
            base.rollout,
            max_new_tokens=96,
            max_steps=10,
            contexts=2,
            slots=4,
            tasks_per_phase=40,
            observation="compact",
            decoding="valid_actions",
            arguments="phrases",
            answer_questions=True,
            prompt="instruction_last",
        ),
        orm=dataclasses.replace(base.orm, lr=3e-4, epochs=4, checks=True, max_seq_len=512),
        critic=dataclasses.replace(base.critic, lr=1e-4),
        actor=dataclasses.replace(base.actor, lr=1e-5),
        sft=dataclasses.replace(base.sft, lr=1e-3, epochs=2, demo_tasks=500),
        curriculum=dataclasses.replace(base.curriculum, tasks_per_phase=40),
        engine=dataclasses.replace(
            base.engine,
            device="cpu",
            dtype="float32",
            micro_batch=4,
            grad_accum=1,
            max_seq_len=1024,
            checkpoint_every=200,
            offload=False,
        ),
        eval=dataclasses.replace(base.eval, max_tokens=96),
        run=RunSection(phases=3),
    )


PRESETS = ("demo-cpu", "paper-llama8b")


def load_config(source: str, overrides: list[str] | None = None) -> RunConfig:
    """A preset name or a JSON file path, then `--set` overrides."""
    if source in PRESETS:
        config = preset(source)
    else:
        try:
            with open(source, encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            raise ConfigError(
                f"config {source!r}: no such preset or file ({', '.join(PRESETS)})"
            ) from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config {source!r}: not valid JSON ({exc})") from None
        config = RunConfig.from_dict(data)
    return config.with_overrides(overrides or [])
