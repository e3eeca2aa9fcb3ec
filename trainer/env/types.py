"""The browser environment's data types: what a policy sees, what an episode records, when it stops.

`trainer.env.pool.BrowserPool` runs episodes with these; this module imports nothing of the browser,
so the learning and serving code can use the types without Playwright.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

from trainer.prompts import PROMPTS

ENV_VERSION = "webrl-env/1"

STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_TIMEOUT = "timeout"
STATUS_CANCELLED = "cancelled"


@dataclass
class Observation:
    """One step's view of the page: §7.2's simplified HTML plus what execution needs."""

    html: str
    url: str
    title: str
    elements: dict[str, dict] = field(default_factory=dict)
    """id -> {"tag", "bbox": [l, t, w, h], "text", "attrs": {kept attribute -> value}}."""
    screenshot: bytes | None = None
    """JPEG, quality 50, of the 1280x720 viewport (None when screenshots are off)."""


@dataclass
class PolicyOutput:
    text: str
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None


@dataclass
class StepContext:
    task: dict
    intent: str
    step: int
    prompt: str
    """§7.3's P_t, ready for a completion endpoint."""
    observation: Observation
    responses: list[str]
    """The raw responses A_0..A_{t-1} of earlier steps."""
    valid_actions: list[str] | None = None
    """With `EpisodeLimits.decoding="valid_actions"`: the responses valid on this page
    (`trainer.env.valid_actions`), one of which the policy must write; None = free decoding."""


Policy = Callable[[StepContext], Awaitable[PolicyOutput]]


VIEWS = ("webrl", "compact")
"""Names of the agent's text views of a page (`trainer.env.observation.html_view`)."""
DECODINGS = ("free", "valid_actions")
"""`rollout.decoding`: free text, or one of the page's valid actions (`StepContext.valid_actions`)."""


@dataclass
class EpisodeLimits:
    """When an episode stops (§7.1) and how long the browser may take."""

    max_steps: int = 30
    """Actions taken before the episode stops (the STOP itself not counted)."""
    max_repeats: int = 5
    """Stop when this many consecutive raw responses are identical."""
    max_parse_failures: int = 3
    """Stop when this many consecutive responses fail to parse."""
    action_timeout_s: float = 20.0
    """One action, one observation or one evaluation step longer than this: status `timeout`."""
    episode_timeout_s: float = 900.0
    """Watchdog over the whole episode, policy time included: status `timeout`."""
    settle_ms: int = 3000
    """After an action that navigates, wait for the new page's load event at most this long."""
    nav_grace_ms: int = 60
    """After a click, Enter, search, select or history move, wait this long for a navigation to
    start before observing: on a busy machine a form's request leaves after the action returns."""
    screenshots: bool = True
    """Take a JPEG screenshot with every observation."""
    view: str = "webrl"
    """The agent's text view of a page (`trainer.env.observation.html_view`): what its prompt holds and
    what the step records. A policy's StepContext still carries the full observation."""
    prompt: str = "webrl"
    """The agent prompt's variant (`trainer.prompts.PROMPTS`): §7.3's, or `instruction_last`."""
    decoding: str = "free"
    """`valid_actions`: every StepContext carries the actions valid on its page (`DECODINGS`)."""
    arguments: str = "spans"
    """With `valid_actions`: Type/Search arguments are every span of the instruction, or `phrases`
    (`trainer.env.valid_actions.phrase_spans`: none cuts a quoted phrase or a name in two)."""
    block_noop_repeats: bool = False
    """With `valid_actions`: the previous action is not valid again while the page it left is the
    page it was taken on (it did nothing visible)."""
    answer_questions: bool = False
    """With `valid_actions`: an instruction that is a question (ends with "?") is not exited with
    an empty message."""

    def __post_init__(self) -> None:
        for name in ("max_steps", "max_repeats", "max_parse_failures"):
            if getattr(self, name) < 1:
                raise ValueError(f"EpisodeLimits.{name} must be >= 1, got {getattr(self, name)}")
        if self.action_timeout_s <= 0 or self.episode_timeout_s <= 0:
            raise ValueError("EpisodeLimits timeouts must be positive seconds")
        if self.view not in VIEWS:
            raise ValueError(f"EpisodeLimits.view must be one of {VIEWS}, got {self.view!r}")
        if self.prompt not in PROMPTS:
            raise ValueError(f"EpisodeLimits.prompt must be one of {PROMPTS}, got {self.prompt!r}")
        if self.decoding not in DECODINGS:
            raise ValueError(
                f"EpisodeLimits.decoding must be one of {DECODINGS}, got {self.decoding!r}"
            )
        if self.settle_ms < 0 or self.nav_grace_ms < 0:
            raise ValueError("EpisodeLimits.settle_ms and nav_grace_ms must be >= 0 milliseconds")


@dataclass
class StepRecord:
    index: int
    observation: str
    """The simplified HTML the action was chosen on."""
    prompt: str
    response: str
    token_ids: list[int] | None
    logprobs: list[float] | None
    action: dict | None
    """The parsed action (`Action.to_dict()`), None when the response did not parse."""
    url: str
    screenshot: bytes | None
    error: str | None
    """Why the response did not parse or the action failed; None when it ran."""
    elapsed_ms: float
    """Wall time of this step: policy, action and the next observation."""

    def to_dict(self) -> dict:
        """JSON-safe form (the screenshot is left out)."""
        d = asdict(self)
        d.pop("screenshot")
        return d


@dataclass
class EpisodeResult:
    status: str
    """"ok" | "error" | "timeout" | "cancelled"; only "ok" episodes carry a score."""
    steps: list[StepRecord]
    final_answer: str | None
    final_url: str
    last_html: str
    score: float | None
    """The evaluator's score; None for infrastructure faults or when a judge is needed."""
    eval_detail: dict
    error: str = ""
    env_version: str = ENV_VERSION
    evaluator_version: str = ""
    intent: str = ""
    """The task text the policy saw (MiniWoB tasks take it from the page)."""
    browser_fault: bool = False
    """An "error" because the browser or page broke (crashed, killed, disconnected), not because of
    anything the agent did: the episode may be run again on a fresh browser."""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["steps"] = [s.to_dict() for s in self.steps]
        return d


__all__ = [
    "EpisodeLimits",
    "EpisodeResult",
    "Observation",
    "Policy",
    "PolicyOutput",
    "StepContext",
    "StepRecord",
]
