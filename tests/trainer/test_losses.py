import math

import torch
from torch.testing import assert_close

from trainer.learn.losses import (
    critic_loss,
    paper_advantages,
    prompt_lm_loss,
    released_advantages,
    sequence_logprobs,
    sft_loss,
    token_logprobs,
    webrl_paper,
    webrl_released,
)


def t(*xs, grad=False):
    return torch.tensor(xs, dtype=torch.float32, requires_grad=grad)


def test_token_logprobs_reads_the_next_token_at_action_positions_only():
    logits = torch.tensor(
        [[[0.0, 0.0, math.log(2.0)], [0.0, 0.0, 0.0], [5.0, 1.0, 2.0]]]
    )  # [1, 3, 3]
    input_ids = torch.tensor([[0, 2, 1]])
    action_mask = torch.tensor([[0, 1, 1]])
    lp = token_logprobs(logits, input_ids, action_mask)
    assert_close(lp, torch.tensor([[math.log(0.5), -math.log(3.0)]]))
    total, n = sequence_logprobs(lp, action_mask)
    assert_close(total, torch.tensor([math.log(0.5) - math.log(3.0)]))
    assert_close(n, torch.tensor([2.0]))


def test_sft_is_the_token_mean_nll_over_action_tokens():
    token_lp = torch.tensor([[-1.0, -2.0, -9.0], [-3.0, -9.0, -9.0]])
    action_mask = torch.tensor([[0, 1, 1, 0], [0, 1, 0, 0]])
    loss, metrics = sft_loss(token_lp, action_mask)
    assert_close(loss, torch.tensor(2.0))
    assert metrics["tokens"] == 3


def test_the_prompt_loss_is_the_token_mean_nll_over_real_prompt_tokens_only():
    # Targets: position 1 (prompt, token 2), 2 (action, token 1: left out), 3 (padding: left out).
    logits = torch.tensor([[[0.0, 0.0, math.log(2.0)], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0],
                            [0.0, 0.0, 0.0]]])  # fmt: skip
    input_ids = torch.tensor([[0, 2, 1, 0]])
    attention = torch.tensor([[1, 1, 1, 0]])
    action_mask = torch.tensor([[0, 0, 1, 0]])
    loss, metrics = prompt_lm_loss(logits, input_ids, attention, action_mask)
    assert_close(loss, torch.tensor(-math.log(0.5)))
    assert metrics["prompt_tokens"] == 1.0
    none, metrics = prompt_lm_loss(logits, input_ids, torch.tensor([[1, 0, 0, 0]]), action_mask)
    assert none.item() == 0.0 and metrics["prompt_tokens"] == 0.0


def test_paper_advantage_mixes_next_step_and_final_step_estimates():
    A = paper_advantages(
        t(0.2, 0.6), t(0.5, 0.9), t(0.0, 1.0), t(1.0, 1.0), torch.tensor([0, 1]), lam=0.5
    )
    # step 0: 0.5*(0 + 0.5 - 0.2) + 0.5*(1 - 0.2); last step: V(s_{T+1}) = 0
    assert_close(A, t(0.55, 0.4))


def test_paper_loss_is_the_squared_kl_regression():
    logp, ref, A, n = t(-1.0, -2.0, grad=True), t(-1.5, -1.0), t(0.5, -0.2), t(3.0, 2.0)
    loss, _ = webrl_paper(logp, ref, A, n, beta=1.0)
    assert_close(loss, torch.tensor((0.0**2 + (-0.8) ** 2) / 2))
    loss.backward()
    assert_close(logp.grad, t(0.0, -0.8))  # 2·β·(β·Δ − A)/B
    loss2, _ = webrl_paper(t(-1.0, -2.0), ref, A, n, beta=2.0)
    assert_close(loss2, torch.tensor((0.5**2 + 1.8**2) / 2))


def test_released_advantages_are_offset_clamped_and_binarised():
    v, v_next = t(0.3, 0.3, 0.3), t(0.4, 0.33, 0.2)
    A = released_advantages(
        v,
        v_next,
        t(0.0, 0.0, 1.0),
        t(0.0, 0.0, 1.0),
        offset=-0.05,
        clip=1.0,
        positive=1.0,
        negative=-0.6,
    )
    assert_close(A, t(1.0, -0.6, 1.0))


def test_released_loss_matches_a_hand_computation():
    logp = t(-2.0, -1.0, -0.2, grad=True)
    ref, A, n = t(-3.0, -0.5, -0.1), t(1.0, -0.6, 1.0), t(2.0, 1.0, 2.0)
    loss, metrics = webrl_released(logp, ref, A, n)
    # N = 4; r = (0.25, ·, -0.025); β0 = (1, ·, 5) by ref confidence (0.22 < 0.8, 0.95 >= 0.8);
    # Huber(0.25 - 1)/1 = 0.28125, Huber(5·-0.025 - 1)/5 = 0.625/5; mean over the 3 samples.
    assert_close(loss, torch.tensor((0.28125 + 0.0 + 0.125) / 3))
    loss.backward()
    assert_close(logp.grad, t(-0.75 / 4 / 3, 0.0, -1.0 / 4 / 3))
    assert abs(metrics["actor/kept_fraction"] - 2 / 3) < 1e-6


def test_released_loss_caps_beta_at_the_advantage_over_the_ratio():
    logp = t(4.0, grad=True)
    loss, metrics = webrl_released(logp, t(-4.0), t(1.0), t(4.0))
    # r = 8/4 = 2, β = min(1, |1/2|) = 0.5, so β·r − A = 0: no loss, no push further up
    assert metrics["actor/beta"] == 0.5
    assert_close(loss, torch.tensor(0.0))
    loss.backward()
    assert_close(logp.grad, t(0.0))


def test_released_loss_ignores_negative_advantages():
    logp = t(-1.0, -2.0, grad=True)
    loss, _ = webrl_released(logp, t(-0.5, -0.1), t(-0.6, -0.6), t(2.0, 3.0))
    loss.backward()
    assert loss.item() == 0.0
    assert_close(logp.grad, t(0.0, 0.0))


def test_an_all_masked_batch_gives_zero_loss_and_no_nan():
    logp = t(0.0, 0.0, grad=True)
    no_tokens = t(0.0, 0.0)
    for loss, _ in (
        webrl_released(logp, t(0.0, 0.0), t(1.0, 1.0), no_tokens),
        webrl_paper(logp, t(0.0, 0.0), t(1.0, -1.0), no_tokens, beta=1.0),
        sft_loss(torch.zeros(2, 3), torch.zeros(2, 4)),
    ):
        assert loss.item() == 0.0 and not torch.isnan(loss)
    loss, _ = webrl_released(logp, t(0.0, 0.0), t(1.0, 1.0), no_tokens)
    loss.backward()
    assert not torch.isnan(logp.grad).any()


def test_critic_loss_sums_four_cross_entropies_of_raw_logits():
    zero = torch.zeros(1, 2)
    three_to_one = torch.tensor([[0.0, math.log(3.0)]])  # P(success) = 0.75
    loss, metrics = critic_loss(three_to_one, zero, zero, zero, torch.tensor([1]))
    assert_close(loss, torch.tensor(-math.log(0.75) + 3 * math.log(2.0)))
    assert metrics["critic/value"] == 0.5  # min of the two heads on s
    loss0, _ = critic_loss(
        three_to_one, three_to_one, three_to_one, three_to_one, torch.tensor([0])
    )
    assert_close(loss0, torch.tensor(-4 * math.log(0.25)))
