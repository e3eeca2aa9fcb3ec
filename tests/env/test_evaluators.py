"""WebArena-Lite's matchers (spec §8.3) as pure functions, the tokenizer, and the judge client."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from trainer.env.evaluators import (
    EvaluatorError,
    NeedsJudge,
    clean_answer,
    compare_inequality,
    score_contents,
    score_string_match,
    score_url_match,
    word_tokenize,
)
from trainer.env.judge import JudgeError, OpenAIJudge


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("The price is $12.99.", ["The", "price", "is", "$", "12.99", "."]),
        ("Hello, world!", ["Hello", ",", "world", "!"]),
        ("I don't know", ["I", "do", "n't", "know"]),
        ("1,000 items", ["1,000", "items"]),
        ("a/b test", ["a/b", "test"]),
        ("(555) 123-4567", ["(", "555", ")", "123-4567"]),
        ("It's 3:30pm", ["It", "'s", "3:30pm"]),
        ("e-mail: foo@bar.com", ["e-mail", ":", "foo", "@", "bar.com"]),
        ("it costs 12.5%", ["it", "costs", "12.5", "%"]),
        ("Done. Next one", ["Done", ".", "Next", "one"]),
        ("e.g. this", ["e.g.", "this"]),
    ],
)
def test_the_tokenizer_splits_like_nltk_word_tokenize(text, tokens):
    assert word_tokenize(text) == tokens


def test_clean_answer_strips_one_pair_of_quotes_and_lowercases():
    assert clean_answer(' "Hello World" ') == "hello world"
    assert clean_answer("'x'") == "x"
    assert clean_answer("'x\"") == "'x\""


def test_exact_match_compares_cleaned_strings():
    assert score_string_match({"exact_match": "Yes"}, '"yes"') == 1.0
    assert score_string_match({"exact_match": "Yes"}, "yes, it is") == 0.0


def test_must_include_needs_every_item():
    refs = {"must_include": ["Impulse Duffle", "Overnight Duffle"]}
    assert score_string_match(refs, "impulse duffle and overnight duffle") == 1.0
    assert score_string_match(refs, "Impulse Duffle only") == 0.0


def test_must_include_accepts_any_or_alternative():
    refs = {"must_include": ["December 2022 |OR| 12/2022"]}
    assert score_string_match(refs, "It was 12/2022") == 1.0
    assert score_string_match(refs, "It was in 2022") == 0.0


def test_a_single_token_reference_must_be_a_whole_token():
    assert score_string_match({"must_include": ["0"]}, "There are 0 orders") == 1.0
    assert score_string_match({"must_include": ["0"]}, "There are 10 orders") == 0.0
    assert score_string_match({"must_include": ["1"]}, "1.5 stars") == 0.0


def test_slash_joined_answer_tokens_are_also_split():
    assert score_string_match({"must_include": ["red"]}, "colors: red/blue") == 1.0


def test_multi_token_references_match_as_substrings():
    assert score_string_match({"must_include": ["new york"]}, "I live in new yorkshire") == 1.0


def test_must_exclude_fails_when_the_item_appears():
    assert score_string_match({"must_exclude": ["refund"]}, "No refund given") == 0.0
    assert score_string_match({"must_exclude": ["refund"]}, "Refunded") == 1.0


def test_one_of_needs_any_item_as_substring():
    assert score_string_match({"one_of": ["Alice", "Bob"]}, "bob did it") == 1.0
    assert score_string_match({"one_of": ["Alice", "Bob"]}, "carol") == 0.0


def test_required_values_parse_the_answer_as_an_integer():
    assert score_string_match({"required_values": [">= 300", "< 700"]}, "1,000") == 0.0
    assert score_string_match({"required_values": [">= 300", "< 700"]}, "450") == 1.0
    assert score_string_match({"required_values": ["== 5 |OR| == 6"]}, "6") == 1.0
    assert score_string_match({"required_values": ["> 1"]}, "about five") == 0.0


def test_compare_inequality_rejects_nonsense():
    with pytest.raises(EvaluatorError):
        compare_inequality(1, "about 5")


def test_the_score_is_the_product_over_keys():
    refs = {"exact_match": "42", "must_include": ["42"]}
    assert score_string_match(refs, "42") == 1.0
    refs = {"must_include": ["42"], "must_exclude": ["42"]}
    assert score_string_match(refs, "42") == 0.0


def test_fuzzy_match_without_a_judge_needs_one():
    with pytest.raises(NeedsJudge):
        score_string_match({"fuzzy_match": ["refund", "broken"]}, "they want a refund")


def test_fuzzy_na_accepts_a_literal_na_without_a_judge():
    assert score_string_match({"fuzzy_match": "N/A"}, "N/A") == 1.0
    with pytest.raises(NeedsJudge):
        score_string_match({"fuzzy_match": "N/A"}, "the product does not exist")


def test_unknown_reference_keys_are_evaluator_errors():
    with pytest.raises(EvaluatorError):
        score_string_match({"regex": "x"}, "x")


@pytest.mark.parametrize(
    ("reference", "final", "note", "want"),
    [
        ("http://127.0.0.1:7770/a", "http://127.0.0.1:7770/a/", "EXACT", 1.0),
        ("http://localhost:7770/a", "http://127.0.0.1:7770/a", "EXACT", 1.0),
        ("http://127.0.0.1:7770/a", "http://127.0.0.1:7770/a?x=1", "EXACT", 0.0),
        ("http://h/a |OR| http://h/b", "http://h/b", "EXACT", 1.0),
        ("http://h/f/deeplearning", "http://h/f/deeplearning/123/slug", "GOLD in PRED", 1.0),
        ("http://h/f/x |OR| http://h/f/y", "http://h/f/y/1", "GOLD in PRED", 1.0),
        ("http://h/f/x", "http://h/f/z/1", "GOLD in PRED", 0.0),
    ],
)
def test_url_match_notes(reference, final, note, want):
    assert score_url_match(reference, final, note) == want


def test_unknown_url_notes_are_errors():
    with pytest.raises(EvaluatorError):
        score_url_match("http://h", "http://h", "PRED in GOLD")


def test_required_contents_use_the_same_matchers():
    assert score_contents({"exact_match": "Hello"}, "hello") == 1.0
    assert score_contents({"must_include": ["a |OR| b", "c"]}, "b and c") == 1.0
    assert score_contents({"must_exclude": ["spam"]}, "ham") == 1.0
    assert score_contents({"required_values": ["> 3"]}, "4") == 1.0
    with pytest.raises(EvaluatorError):
        score_contents({"nope": 1}, "x")


class _JudgeHandler(BaseHTTPRequestHandler):
    answer = "correct"
    seen: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(body)
        data = json.dumps({"choices": [{"message": {"content": type(self).answer}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def judge_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _JudgeHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_a_configured_judge_grades_fuzzy_references(judge_server):
    judge = OpenAIJudge(f"http://127.0.0.1:{judge_server.server_port}/v1", model="m")
    _JudgeHandler.answer = "Correct"
    assert (
        score_string_match({"fuzzy_match": ["refund"]}, "a refund", intent="q", judge=judge) == 1.0
    )
    sent = _JudgeHandler.seen[-1]
    assert sent["model"] == "m" and sent["temperature"] == 0
    assert "refund" in sent["messages"][-1]["content"]
    _JudgeHandler.answer = "partially correct"
    assert score_string_match({"fuzzy_match": ["refund"]}, "x", judge=judge) == 0.0
    _JudgeHandler.answer = "same"
    assert score_string_match({"fuzzy_match": "N/A"}, "no such item", judge=judge) == 1.0


def test_a_judge_that_answers_nonsense_raises_a_judge_error(judge_server):
    judge = OpenAIJudge(f"http://127.0.0.1:{judge_server.server_port}/v1", model="m")
    _JudgeHandler.answer = "maybe"
    with pytest.raises(JudgeError):
        score_string_match({"fuzzy_match": ["refund"]}, "x", judge=judge)


def test_an_unreachable_judge_raises_a_judge_error():
    judge = OpenAIJudge("http://127.0.0.1:9/v1", model="m", timeout_s=2)
    with pytest.raises(JudgeError):
        judge.fuzzy_match(pred="x", reference="y", intent="z")


def test_a_bare_string_must_include_counts_as_one_item():
    assert score_string_match({"must_include": "yjlou"}, "The user is yjlou") == 1.0
