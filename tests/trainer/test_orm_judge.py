"""The LLM-judge ORM against the project's own OpenAI-compatible server (a real HTTP round trip)."""

import pytest
import torch

from tests.trainer.helpers import PAGES, WORDS
from trainer.learn.models import load_causal_lm, load_tokenizer, save_model
from trainer.learn.orm import classification_metrics, example_prompt, p_yes, yes_no_ids
from trainer.learn.tokenizer import encode_prompt
from trainer.serve.orm_judge import OpenAIOrm, OrmJudgeError
from trainer.serve.server import serve_in_thread


def _examples() -> list[dict]:
    out = []
    for i, word in enumerate(WORDS):
        out.append({
            "intent": f"Search for {word}",
            "responses": [f'do(action="Search", argument="{word}", element="1")',
                          f'exit(message="{WORDS[(i * 3) % len(WORDS)]}")'],
            "last_html": PAGES[("shop", "forum", "map")[i % 3]],
            "label": i % 2 == 0,
        })  # fmt: skip
    return out


@pytest.fixture(scope="module")
def judge_dir(sft_dir, tmp_path_factory):
    """The tiny SFT model with a head that answers only YES or NO: YES has logit h·w, NO -h·w and
    every other token 0, for a direction w that sends the first example to YES and the second to
    NO. Greedy decoding then says YES exactly where the two-way P(YES) of §4.1 is above 0.5."""
    model, tok = load_causal_lm(sft_dir), load_tokenizer(sft_dir)
    yes, no = yes_no_ids(tok)
    prompts = [example_prompt(ex) for ex in _examples()[:2]]
    with torch.no_grad():
        h = [model.model(input_ids=torch.tensor([encode_prompt(tok, p)])).last_hidden_state[0, -1]
             for p in prompts]  # fmt: skip
        w = h[0] - h[1]
        model.lm_head.weight.zero_()
        model.lm_head.weight[yes] = w
        model.lm_head.weight[no] = -w
    out = tmp_path_factory.mktemp("judge")
    save_model(model, tok, out)
    return out


def test_the_judge_gives_the_same_verdicts_and_figures_as_the_model_scored_in_process(judge_dir):
    examples = _examples()
    labels = [ex["label"] for ex in examples]
    local = p_yes(load_causal_lm(judge_dir), load_tokenizer(judge_dir),
                  [example_prompt(ex) for ex in examples])  # fmt: skip
    with serve_in_thread(judge_dir, name="tiny-orm") as server:
        judge = OpenAIOrm(f"{server.url}/v1", "tiny-orm")
        judged = judge.p_yes(examples)
    assert judge.unparsed == 0
    said_yes = [p >= 0.5 for p in judged]
    assert said_yes == [p >= 0.5 for p in local]
    assert said_yes[0] and not said_yes[1]  # both answers occur
    assert classification_metrics(judged, labels) == classification_metrics(local, labels)


def test_an_unreachable_judge_is_an_error_that_names_its_url():
    judge = OpenAIOrm("http://127.0.0.1:9/v1", "none", timeout_s=2.0)
    with pytest.raises(OrmJudgeError, match="127.0.0.1:9"):
        judge.p_yes(_examples()[:1])


def test_answers_are_read_from_log_probabilities_when_given_and_from_the_text_otherwise():
    judge = OpenAIOrm("http://unused", "m")
    both = {"message": {"content": "YES"}, "logprobs": {"content": [{
        "token": "YES", "logprob": -0.5,
        "top_logprobs": [{"token": "YES", "logprob": -0.5}, {"token": "NO", "logprob": -1.5}]}]}}  # fmt: skip
    assert judge.p_yes_of(both) == pytest.approx(1 / (1 + 2.718281828**-1.0))
    own = {
        "message": {"content": "NO"},
        "logprobs": {"content": [{"token": "NO", "logprob": -0.1}]},
    }
    assert judge.p_yes_of(own) == pytest.approx((1 - 0.9048) / 2, abs=1e-4)
    assert judge.p_yes_of({"message": {"content": "Yes."}}) == 1.0
    assert judge.p_yes_of({"message": {"content": "maybe"}}) == 0.0 and judge.unparsed == 1
