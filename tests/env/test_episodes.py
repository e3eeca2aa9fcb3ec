"""Episodes on real Chromium: action round trips, limits, blocked origins, hangs and crashes."""

import os
import signal
import socket

import pytest

from trainer.env.types import EpisodeLimits, PolicyOutput

pytestmark = pytest.mark.browser


def by_testid(obs, testid):
    for element_id, element in obs.elements.items():
        if element["attrs"].get("data-testid") == testid:
            return element_id
    raise AssertionError(f"no element with data-testid={testid!r} in {obs.elements}")


def scripted(*steps):
    """A policy that plays `steps`: strings, or callables of the step context returning a string."""
    seen = []

    async def policy(ctx):
        seen.append(ctx)
        step = steps[min(ctx.step, len(steps) - 1)]
        return PolicyOutput(step(ctx) if callable(step) else step)

    policy.seen = seen
    return policy


def form_task(pages, **extra):
    return {"task_id": 1, "intent": "Use the form", "start_url": pages.url + "/form.html", **extra}


def test_typed_text_comes_back_as_data_value(env, pages):
    policy = scripted(
        lambda c: (
            f'# Element: the box\ndo(action="Type", argument="blue socks", element="{by_testid(c.observation, "q")}")'
        ),
        'exit(message="done")',
    )
    result = env.run(env.pool.run_episode(form_task(pages), policy, evaluate=False))
    assert result.status == "ok", result.error
    after = policy.seen[1].observation
    assert after.elements[by_testid(after, "q")]["attrs"]["data-value"] == "blue socks"
    assert 'data-value="blue socks"' in after.html
    assert [s.error for s in result.steps] == [None, None]
    assert result.final_answer == "done"


def test_select_picks_the_first_option_containing_the_text(env, pages):
    policy = scripted(
        lambda c: (
            f'do(action="Select Dropdown Option", argument="large", element="{by_testid(c.observation, "size")}")'
        ),
        'exit(message="")',
    )
    result = env.run(env.pool.run_episode(form_task(pages), policy, evaluate=False))
    after = policy.seen[1].observation
    attrs = after.elements[by_testid(after, "size")]["attrs"]
    assert (attrs["data-value"], attrs["data-text"]) == ("l", "Large size")
    assert result.steps[0].error is None


def test_selecting_a_missing_option_is_a_recorded_step_error(env, pages):
    policy = scripted(
        lambda c: (
            f'do(action="Select Dropdown Option", argument="XXL", element="{by_testid(c.observation, "size")}")'
        ),
        'exit(message="")',
    )
    result = env.run(env.pool.run_episode(form_task(pages), policy, evaluate=False))
    assert result.status == "ok"
    assert "no option containing" in result.steps[0].error


def test_scrolling_moves_the_viewport_and_renumbers(env, pages):
    policy = scripted('do(action="Scroll Down")', 'do(action="Scroll Up")', 'exit(message="")')
    result = env.run(env.pool.run_episode(form_task(pages), policy, evaluate=False))
    first, scrolled, back = (c.observation for c in policy.seen)
    assert "<h1" in first.html and "<h1" not in scrolled.html
    assert "q" not in {e["attrs"].get("data-testid") for e in scrolled.elements.values()}
    assert back.html == first.html
    assert result.status == "ok"


def test_back_and_forward_follow_history(env, pages):
    policy = scripted(
        lambda c: f'do(action="Click", element="{by_testid(c.observation, "next")}")',
        'do(action="Go Backward")',
        'do(action="Go Forward")',
        'exit(message="")',
    )
    result = env.run(env.pool.run_episode(form_task(pages), policy, evaluate=False))
    urls = [c.observation.url.rsplit("/", 1)[1] for c in policy.seen]
    assert urls == ["form.html", "page2.html", "form.html", "page2.html"]
    assert result.final_url.endswith("/page2.html")
    assert policy.seen[1].observation.title == "Page two"


def test_a_link_opening_a_new_tab_moves_the_agent_there(env, pages):
    policy = scripted(
        lambda c: f'do(action="Click", element="{by_testid(c.observation, "tab")}")',
        'exit(message="")',
    )
    result = env.run(env.pool.run_episode(form_task(pages), policy, evaluate=False))
    assert policy.seen[1].observation.url.endswith("/page2.html")
    assert result.final_url.endswith("/page2.html")


def test_off_origin_navigation_is_blocked_and_recorded(env, pages, other_site):
    target = other_site.url + "/page2.html"
    task = form_task(pages, start_url=f"{pages.url}/form.html?off={target}")
    policy = scripted(
        lambda c: f'do(action="Click", element="{by_testid(c.observation, "off")}")',
        'exit(message="")',
    )
    result = env.run(env.pool.run_episode(task, policy, evaluate=False))
    assert result.status == "ok"
    assert target in result.eval_detail["blocked_requests"]
    assert not result.final_url.startswith(other_site.url)


def test_explicitly_allowed_origins_are_let_through(env, pages, other_site):
    target = other_site.url + "/page2.html"
    task = form_task(pages, start_url=f"{pages.url}/form.html?off={target}")
    policy = scripted(
        lambda c: f'do(action="Click", element="{by_testid(c.observation, "off")}")',
        'exit(message="")',
    )
    result = env.run(
        env.pool.run_episode(
            task, policy, evaluate=False, allowed_origins=[pages.url, other_site.url]
        )
    )
    assert result.final_url == target
    assert "blocked_requests" not in result.eval_detail


def test_malformed_outputs_are_recorded_parse_errors(env, pages):
    garbage = "do(" + "x(" * 50_000
    responses = [
        "",
        "I will click the search box.",
        'do(action="Fly", element="1")',
        'do(action="Click", element=\'1)',
        'do(action="Click")',
        'do(action="Click", element="999")',
        garbage,
        'exit(message="gave up")',
    ]
    policy = scripted(*responses)
    limits = EpisodeLimits(max_parse_failures=10)
    result = env.run(env.pool.run_episode(form_task(pages), policy, limits=limits, evaluate=False))
    assert result.status == "ok"
    errors = [s.error for s in result.steps]
    assert [e is not None and e.startswith("parse error") for e in errors] == [
        True,
        True,
        True,
        True,
        True,
        False,
        True,
        False,
    ]
    assert "not in the current observation" in errors[5]
    assert [s.response for s in result.steps] == responses
    assert result.final_answer == "gave up"


def test_three_unparsable_responses_in_a_row_end_the_episode(env, pages):
    result = env.run(env.pool.run_episode(form_task(pages), scripted("hmm"), evaluate=False))
    assert len(result.steps) == 3
    assert result.final_answer.startswith("Early stop")
    assert result.status == "ok"


def test_five_identical_actions_end_the_episode(env, pages):
    result = env.run(
        env.pool.run_episode(form_task(pages), scripted('do(action="Scroll Down")'), evaluate=False)
    )
    assert len(result.steps) == 5
    assert "identical" in result.eval_detail["stop_reason"]


def test_max_steps_ends_the_episode(env, pages):
    policy = scripted(*[f'do(action="Scroll {d}")' for d in ("Down", "Up") * 10])
    limits = EpisodeLimits(max_steps=4)
    result = env.run(env.pool.run_episode(form_task(pages), policy, limits=limits, evaluate=False))
    assert len(result.steps) == 4
    assert result.final_answer == "Early stop: reached 4 steps"


def test_prompts_follow_the_webrl_grammar_with_history(env, pages):
    policy = scripted('do(action="Scroll Down")', 'exit(message="x")')
    env.run(env.pool.run_episode(form_task(pages), policy, evaluate=False))
    second = policy.seen[1]
    assert second.responses == ['do(action="Scroll Down")']
    assert second.prompt.startswith("Task Instruction: Use the form\n\nRound 0\n\n")
    assert second.prompt.endswith(
        second.observation.html + "\n\n<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
    )


def test_on_step_sees_every_step_sync_or_async(env, pages):
    got = []

    async def on_step(record):
        got.append(record.index)

    env.run(
        env.pool.run_episode(
            form_task(pages),
            scripted('do(action="Press Enter")', 'exit(message="")'),
            on_step=on_step,
            evaluate=False,
        )
    )
    env.run(
        env.pool.run_episode(
            form_task(pages),
            scripted('exit(message="")'),
            on_step=lambda r: got.append(r.index),
            evaluate=False,
        )
    )
    assert got == [0, 1, 0]


def test_should_stop_cancels_the_episode(env, pages):
    result = env.run(
        env.pool.run_episode(
            form_task(pages), scripted('do(action="Scroll Down")'), should_stop=lambda: True
        )
    )
    assert result.status == "cancelled"
    assert result.score is None


def test_a_policy_that_raises_is_an_error_not_a_zero(env, pages):
    async def policy(ctx):
        raise RuntimeError("model server down")

    result = env.run(env.pool.run_episode(form_task(pages), policy))
    assert result.status == "error"
    assert "model server down" in result.error
    assert result.score is None


def test_string_and_program_html_evaluation_after_exit(env, pages):
    task = form_task(
        pages,
        eval={
            "eval_types": ["string_match", "program_html"],
            "reference_answers": {"must_include": ["blue socks"]},
            "program_html": [
                {
                    "url": "last",
                    "locator": "document.querySelector('[data-testid=q]').value",
                    "required_contents": {"exact_match": "blue socks"},
                },
                {
                    "url": pages.url + "/page2.html",
                    "locator": "",
                    "required_contents": {"must_include": ["Second page"]},
                },
            ],
        },
    )
    policy = scripted(
        lambda c: (
            f'do(action="Type", argument="blue socks", element="{by_testid(c.observation, "q")}")'
        ),
        'exit(message="I typed Blue Socks")',
    )
    result = env.run(env.pool.run_episode(task, policy))
    assert result.status == "ok"
    assert result.score == 1.0, result.eval_detail
    assert [t["score"] for t in result.eval_detail["program_html_targets"]] == [1.0, 1.0]


def test_url_match_scores_the_final_page(env, pages):
    task = form_task(
        pages, eval={"eval_types": ["url_match"], "reference_url": pages.url + "/page2.html/"}
    )
    policy = scripted(
        lambda c: f'do(action="Click", element="{by_testid(c.observation, "next")}")',
        'exit(message="")',
    )
    assert env.run(env.pool.run_episode(task, policy)).score == 1.0
    assert env.run(env.pool.run_episode(task, scripted('exit(message="")'))).score == 0.0


def test_fuzzy_tasks_without_a_judge_score_none(env, pages):
    task = form_task(
        pages,
        eval={"eval_types": ["string_match"], "reference_answers": {"fuzzy_match": ["socks"]}},
    )
    result = env.run(env.pool.run_episode(task, scripted('exit(message="socks")')))
    assert result.status == "ok"
    assert result.score is None
    assert result.eval_detail["needs_judge"] is True


def test_unknown_func_helpers_are_evaluator_errors_not_python(env, pages):
    task = form_task(
        pages,
        eval={
            "eval_types": ["program_html"],
            "program_html": [
                {
                    "url": "last",
                    "locator": "func:open('/etc/passwd').read()",
                    "required_contents": {"exact_match": "x"},
                }
            ],
        },
    )
    result = env.run(env.pool.run_episode(task, scripted('exit(message="")')))
    assert result.score is None
    assert "must be name(positional args)" in result.eval_detail["evaluator_error"]


def test_a_hung_page_times_out_and_the_pool_recovers(env, pages):
    policy = scripted(
        lambda c: f'do(action="Click", element="{by_testid(c.observation, "hang")}")',
        'exit(message="")',
    )
    limits = EpisodeLimits(action_timeout_s=2, episode_timeout_s=30)
    result = env.run(env.pool.run_episode(form_task(pages), policy, limits=limits))
    assert result.status == "timeout", result.error
    assert result.score is None
    assert not result.browser_fault  # a hang is not a broken browser
    assert len(result.steps) <= 1
    again = env.run(
        env.pool.run_episode(form_task(pages), scripted('exit(message="")'), evaluate=False)
    )
    assert again.status == "ok"


def test_a_browser_killed_mid_episode_is_an_error_and_the_pool_relaunches(env, pages):
    launches = env.pool.launches
    pid = env.run(env.pool.browser_pid())

    async def policy(ctx):
        os.kill(pid, signal.SIGKILL)
        return PolicyOutput(f'do(action="Click", element="{by_testid(ctx.observation, "next")}")')

    result = env.run(env.pool.run_episode(form_task(pages), policy))
    assert result.status == "error"
    assert result.score is None
    assert "browser" in result.error or "closed" in result.error
    # flagged whatever the message says: it reads "click: browser disconnected: …"
    assert result.browser_fault, result.error
    again = env.run(
        env.pool.run_episode(form_task(pages), scripted('exit(message="")'), evaluate=False)
    )
    assert again.status == "ok"
    assert env.pool.launches == launches + 1


def test_an_on_step_callback_that_raises_is_an_error_not_a_crash(env, pages):
    def on_step(record):
        raise ValueError("dashboard is down")

    result = env.run(
        env.pool.run_episode(form_task(pages), scripted('exit(message="")'), on_step=on_step)
    )
    assert result.status == "error"
    assert "dashboard is down" in result.error
    assert result.score is None
    assert not result.browser_fault


def test_an_unreachable_start_url_is_an_error(env):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    task = {"task_id": 2, "intent": "x", "start_url": f"http://127.0.0.1:{port}/nothing"}
    result = env.run(env.pool.run_episode(task, scripted('exit(message="")')))
    assert result.status == "error"
    assert "ERR_CONNECTION_REFUSED" in result.error
    assert result.score is None
    assert not result.browser_fault  # the site, not the browser: running it again will not help


def test_the_off_origin_pattern_matches_only_other_origins():
    from trainer.env.pool import off_origin_pattern

    pattern = off_origin_pattern({"http://127.0.0.1:8000"})
    assert not pattern.search("http://127.0.0.1:8000/shop?q=1")
    assert not pattern.search("data:text/html,hi")
    assert pattern.search("http://127.0.0.1:80001/x")
    assert pattern.search("http://127.0.0.1:8000.evil.example/")
    assert pattern.search("https://example.com/")


def test_concurrent_episodes_get_fresh_contexts_with_their_own_storage_state(env, pages):
    import asyncio

    state = {
        "cookies": [
            {
                "name": "sid",
                "value": "abc",
                "domain": "127.0.0.1",
                "path": "/",
                "expires": -1,
                "httpOnly": False,
                "secure": False,
                "sameSite": "Lax",
            }
        ],
        "origins": [],
    }
    task = {"task_id": 3, "intent": "x", "start_url": pages.url + "/cookie.html"}

    async def both():
        logged_in = scripted('exit(message="")')
        anonymous = scripted('exit(message="")')
        await asyncio.gather(
            env.pool.run_episode(task, logged_in, storage_state=state, evaluate=False),
            env.pool.run_episode(task, anonymous, evaluate=False),
        )
        return logged_in.seen[0].observation.html, anonymous.seen[0].observation.html

    with_cookie, without = env.run(both())
    assert "cookies: sid=abc" in with_cookie
    assert "cookies: none" in without


def test_a_crash_during_concurrent_episodes_fails_both_and_relaunches_once(env, pages):
    import asyncio

    launches = env.pool.launches
    pid = env.run(env.pool.browser_pid())

    async def both():
        killed = asyncio.Event()

        async def killer(ctx):
            os.kill(pid, signal.SIGKILL)
            killed.set()
            return PolicyOutput('do(action="Scroll Down")')

        async def bystander(ctx):
            await killed.wait()
            await asyncio.sleep(0.2)
            return PolicyOutput('do(action="Scroll Down")')

        return await asyncio.gather(
            env.pool.run_episode(form_task(pages), killer, evaluate=False),
            env.pool.run_episode(form_task(pages), bystander, evaluate=False),
        )

    results = env.run(both())
    assert [r.status for r in results] == ["error", "error"]
    assert all(r.score is None for r in results)
    assert all(r.browser_fault for r in results), [r.error for r in results]
    after = env.run(
        env.pool.run_episode(form_task(pages), scripted('exit(message="")'), evaluate=False)
    )
    assert after.status == "ok"
    assert env.pool.launches == launches + 1


def test_a_crashed_page_is_an_error_and_the_browser_is_kept(env, pages):
    launches = env.pool.launches

    async def policy(ctx):
        for pid in (await env.pool.process_ids()).get("renderer", []):
            os.kill(pid, signal.SIGKILL)
        return PolicyOutput('do(action="Scroll Down")')

    result = env.run(env.pool.run_episode(form_task(pages), policy))
    assert result.status == "error"
    assert "crash" in result.error or "closed" in result.error
    assert result.score is None
    assert result.browser_fault, result.error
    again = env.run(
        env.pool.run_episode(form_task(pages), scripted('exit(message="")'), evaluate=False)
    )
    assert again.status == "ok"
    assert env.pool.launches == launches


def test_a_navigation_that_starts_late_is_waited_for(env, pages):
    """A click whose page leaves a moment later (a busy machine's form submit) shows the new page."""
    policy = scripted(
        lambda c: f'do(action="Click", element="{by_testid(c.observation, "late")}")',
        'exit(message="")',
    )
    task = {"task_id": 2, "intent": "Continue", "start_url": pages.url + "/late.html"}
    limits = EpisodeLimits(nav_grace_ms=2000)
    result = env.run(env.pool.run_episode(task, policy, limits=limits, evaluate=False))
    assert result.status == "ok", result.error
    assert policy.seen[1].observation.title == "Page two"


def test_the_compact_view_is_what_the_prompt_and_the_step_hold_and_the_policy_still_sees_all(
    env, pages
):
    from trainer.env.observation import compact_html

    policy = scripted('do(action="Scroll Down")', 'exit(message="x")')
    limits = EpisodeLimits(view="compact")
    result = env.run(env.pool.run_episode(form_task(pages), policy, limits=limits, evaluate=False))
    first = policy.seen[0]
    assert "data-bbox" in first.observation.html
    assert "data-bbox" not in first.prompt and "data-bbox" not in result.steps[0].observation
    assert result.steps[0].observation == compact_html(first.observation.html)
    assert result.steps[0].observation in first.prompt
    assert "data-bbox" not in result.last_html


def test_an_unknown_view_is_refused_before_any_episode():
    with pytest.raises(ValueError, match="view"):
        EpisodeLimits(view="tiny")
