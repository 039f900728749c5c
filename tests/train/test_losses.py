"""The student's losses against hand-computed values, padding, degenerate rows and gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rescore.train.losses import md_loss, mwed_loss, mwed_temperature, mwer_loss, nbest_index, pad_nbest

E = math.exp
# The 3-hypothesis example: s = [0, -1, -2], eps = [0, 1, 2].
# Z = 1 + e^-1 + e^-2 = 1 + 0.36787944 + 0.13533528 = 1.50321472
# P = [1, e^-1, e^-2] / Z = [0.66524096, 0.24472847, 0.09003057]
Z3 = 1 + E(-1) + E(-2)
P3 = [1 / Z3, E(-1) / Z3, E(-2) / Z3]


def batch(scores, errors, n=None, pad_score=0.0, pad_error=0.0, dtype=torch.float64, grad=True):
    """One-row-per-list padded batch: ``scores``/``errors`` are lists of lists, padded to ``n``."""
    n = n or max(len(r) for r in scores)
    s = torch.full((len(scores), n), pad_score, dtype=dtype)
    e = torch.full((len(scores), n), pad_error, dtype=dtype)
    m = torch.zeros((len(scores), n), dtype=torch.bool)
    for u, (sr, er) in enumerate(zip(scores, errors, strict=True)):
        s[u, : len(sr)] = torch.tensor(sr, dtype=dtype)
        e[u, : len(er)] = torch.tensor(er, dtype=dtype)
        m[u, : len(sr)] = True
    return s.requires_grad_(grad), e, m


def grad_of(loss_fn, s, e, m, **kw):
    s = s.detach().clone().requires_grad_(True)
    loss = loss_fn(s, e, m, **kw)
    loss.backward()
    return loss.detach(), s.grad


# --------------------------------------------------------------------------------------------
# MWER
# --------------------------------------------------------------------------------------------


def test_mwer_hand_value():
    s, e, m = batch([[0.0, -1.0, -2.0]], [[0, 1, 2]])
    # mean eps = (0 + 1 + 2) / 3 = 1, eps - mean = [-1, 0, 1]
    # L = -P0 + 0 * P1 + P2 = (e^-2 - 1) / Z = -0.66524096 + 0.09003057 = -0.57521039
    expected = (E(-2) - 1) / Z3
    assert expected == pytest.approx(-0.5752103826, abs=1e-9)
    assert mwer_loss(s, e, m).item() == pytest.approx(expected, abs=1e-12)


def test_mwer_hand_gradient_and_signs():
    s, e, m = batch([[0.0, -1.0, -2.0]], [[0, 1, 2]])
    loss, g = grad_of(mwer_loss, s, e, m)
    # dL/ds_i = P_i * (c_i - L), c = [-1, 0, 1], L = -0.57521039
    # = [0.66524 * -0.42479, 0.24473 * 0.57521, 0.09003 * 1.57521] = [-0.28259, 0.14077, 0.14182]
    c = [-1.0, 0.0, 1.0]
    expected = [P3[i] * (c[i] - loss.item()) for i in range(3)]
    assert g[0].tolist() == pytest.approx(expected, abs=1e-12)
    assert g[0, 0] < 0 < g[0, 2]  # pushes the lowest-error hypothesis up, the highest down
    assert g.sum().item() == pytest.approx(0.0, abs=1e-12)  # shift invariance


def test_mwer_padding_gives_same_loss_and_no_gradient_to_padding():
    base, gb = grad_of(mwer_loss, *batch([[0.0, -1.0, -2.0]], [[0, 1, 2]]))
    # padded to N = 5 with values that would wreck a careless implementation
    for pad_score in (0.0, 1e9, -math.inf, math.inf, math.nan):
        s, e, m = batch([[0.0, -1.0, -2.0]], [[0, 1, 2]], n=5, pad_score=pad_score, pad_error=math.nan)
        loss, g = grad_of(mwer_loss, s, e, m)
        assert loss.item() == pytest.approx(base.item(), abs=1e-12)
        assert g[0, :3].tolist() == pytest.approx(gb[0].tolist(), abs=1e-12)
        assert g[0, 3:].tolist() == [0.0, 0.0]


def test_single_hypothesis_and_equal_errors_contribute_zero():
    for fn in (mwer_loss, mwed_loss):
        # one valid hypothesis (padded to 3), all errors equal, a fully padded row
        s, e, m = batch([[-3.0], [0.0, -1.0, -2.0], []], [[4], [2, 2, 2], []], n=3, pad_score=math.nan)
        loss, g = grad_of(fn, s, e, m)
        assert loss.item() == 0.0
        assert torch.equal(g, torch.zeros_like(g))


def test_mean_over_utterances_includes_zero_rows():
    s, e, m = batch([[0.0, -1.0, -2.0], [5.0]], [[0, 1, 2], [3]])
    # (L_1 + 0) / U with U = 2
    assert mwer_loss(s, e, m).item() == pytest.approx((E(-2) - 1) / Z3 / 2, abs=1e-12)


def test_mwer_two_equal_errors_hand_value():
    s, e, m = batch([[0.0, -1.0, -2.0]], [[0, 0, 3]])
    # mean eps = 3 / 3 = 1, eps - mean = [-1, -1, 2]
    # L = -P0 - P1 + 2 P2 = -0.66524096 - 0.24472847 + 0.18006115 = -0.72990828
    expected = (-1 - E(-1) + 2 * E(-2)) / Z3
    assert expected == pytest.approx(-0.7299082805, abs=1e-9)
    loss, g = grad_of(mwer_loss, s, e, m)
    assert loss.item() == pytest.approx(expected, abs=1e-12)
    assert g[0, 0] < 0 and g[0, 1] < 0 < g[0, 2]


def test_non_finite_scores_are_not_competitors():
    # a real hypothesis scored -inf (or NaN) is treated like padding: same loss as without it
    ref = mwer_loss(*batch([[0.0, -1.0]], [[0, 1]]))
    for bad in (-math.inf, math.nan):
        s, e, m = batch([[0.0, -1.0, bad]], [[0, 1, 5]])
        loss, g = grad_of(mwer_loss, s, e, m)
        assert loss.item() == pytest.approx(ref.item(), abs=1e-12)
        assert g[0, 2].item() == 0.0 and torch.isfinite(g).all()


# --------------------------------------------------------------------------------------------
# MWED
# --------------------------------------------------------------------------------------------


def test_mwed_mad_temperature_hand_value():
    s, e, m = batch([[0.0, -2.0, -6.0]], [[0, 1, 2]])
    # mean s = -8/3; sum |s - mean s| = 8/3 + 2/3 + 10/3 = 20/3
    # mean eps = 1;  sum |eps - mean eps| = 1 + 0 + 1 = 2          -> T = (20/3) / 2 = 10/3
    assert mwed_temperature(s, e, m).tolist() == pytest.approx([10 / 3], abs=1e-12)
    # target t = softmax(-eps) = softmax([0, -1, -2]) = P3 = [0.66524096, 0.24472847, 0.09003057]
    # s / T = [0, -0.6, -1.8]; Zq = 1 + e^-0.6 + e^-1.8 = 1 + 0.54881164 + 0.16529889 = 1.71411053
    # log q = [0, -0.6, -1.8] - ln Zq, ln Zq = 0.53889430
    # CE = -sum t_i log q_i = ln Zq + 0.6 t1 + 1.8 t2 = 0.53889430 + 0.14683708 + 0.16205503 = 0.84778642
    expected = math.log(1 + E(-0.6) + E(-1.8)) + 0.6 * P3[1] + 1.8 * P3[2]
    assert expected == pytest.approx(0.8477864157, abs=1e-9)
    assert mwed_loss(s, e, m).item() == pytest.approx(expected, abs=1e-12)
    assert mwed_loss(s, e, m, temperature="mad").item() == pytest.approx(expected, abs=1e-12)
    # the 3-hypothesis example: sum |s - mean| = 1 + 0 + 1 = 2 = sum |eps - mean| -> T = 1
    s3, e3, m3 = batch([[0.0, -1.0, -2.0]], [[0, 1, 2]])
    assert mwed_temperature(s3, e3, m3).tolist() == [1.0]


def test_mwed_fixed_temperature_hand_value():
    s, e, m = batch([[0.0, -1.0, -2.0]], [[0, 1, 2]])
    # T = 2: s / T = [0, -0.5, -1]; CE = ln(1 + e^-0.5 + e^-1) + 0.5 t1 + 1.0 t2
    # = ln(1 + 0.60653066 + 0.36787944) + 0.12236424 + 0.09003057 = 0.68026967 + 0.21239481 = 0.89266448
    expected = math.log(1 + E(-0.5) + E(-1)) + 0.5 * P3[1] + 1.0 * P3[2]
    assert expected == pytest.approx(0.8926644793, abs=1e-9)
    assert mwed_loss(s, e, m, temperature=2.0).item() == pytest.approx(expected, abs=1e-12)
    # T = 1: q = t exactly, so CE = H(t) = -sum t log t
    entropy = -sum(p * math.log(p) for p in P3)
    assert mwed_loss(s, e, m, temperature=1.0).item() == pytest.approx(entropy, abs=1e-12)


def test_mwed_mad_gradient_is_q_minus_t_over_T_and_signs():
    # misranked: the highest-error hypothesis has the best score
    s, e, m = batch([[-2.0, -1.0, 0.0]], [[0, 1, 2]])
    loss, g = grad_of(mwed_loss, s, e, m)
    # T = (1 + 0 + 1) / (1 + 0 + 1) = 1 (detached); dCE/ds_i = (q_i - t_i) / T, q = softmax(s / T)
    q = torch.softmax(s.detach()[0] / 1.0, 0)
    t = torch.tensor(P3, dtype=torch.float64)
    assert g[0].tolist() == pytest.approx(((q - t) / 1.0).tolist(), abs=1e-12)
    assert g[0, 0] < 0 < g[0, 2]
    # a non-trivial T: the temperature is no path for gradients, so the gradient is exactly (q - t) / T
    s, e, m = batch([[-6.0, -2.0, 0.0]], [[0, 1, 2]])
    _, g = grad_of(mwed_loss, s, e, m)
    T = 10 / 3
    q = torch.softmax(s.detach()[0] / T, 0)
    assert g[0].tolist() == pytest.approx(((q - t) / T).tolist(), abs=1e-12)
    assert g[0, 0] < 0 < g[0, 2]
    # and with a fixed temperature
    _, g = grad_of(mwed_loss, s, e, m, temperature=0.5)
    assert g[0, 0] < 0 < g[0, 2]


def test_mwed_two_equal_errors_and_padding():
    # errors [0, 0, 3], T fixed at 1: t = [1, 1, e^-3] / (2 + e^-3)
    # CE = ln Z3 - sum t_i s_i = ln Z3 + t1 + 2 t2
    zt = 2 + E(-3)
    expected = math.log(Z3) + 1 / zt + 2 * E(-3) / zt
    ref = mwed_loss(*batch([[0.0, -1.0, -2.0]], [[0, 0, 3]]), temperature=1.0)
    assert ref.item() == pytest.approx(expected, abs=1e-12)
    for temperature in ("mad", 1.0):
        base, gb = grad_of(mwed_loss, *batch([[0.0, -1.0, -2.0]], [[0, 0, 3]]), temperature=temperature)
        s, e, m = batch([[0.0, -1.0, -2.0]], [[0, 0, 3]], n=5, pad_score=math.inf, pad_error=-7.0)
        loss, g = grad_of(mwed_loss, s, e, m, temperature=temperature)
        assert loss.item() == pytest.approx(base.item(), abs=1e-12)
        assert g[0, :3].tolist() == pytest.approx(gb[0].tolist(), abs=1e-12)
        assert g[0, 3:].tolist() == [0.0, 0.0]


def test_mwed_cross_entropy_is_kl_plus_target_entropy():
    gen = torch.Generator().manual_seed(0)
    s = torch.randn(4, 6, generator=gen, dtype=torch.float64) * 3
    e = torch.randint(0, 5, (4, 6), generator=gen).double()
    e[:, 0], e[:, 1] = 0, 4  # every row has distinct errors
    m = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4, [1] * 5 + [0]], dtype=torch.bool)
    for temperature in ("mad", 0.7):
        T = mwed_temperature(s, e, m) if temperature == "mad" else torch.full((4,), 0.7, dtype=torch.float64)
        total = 0.0
        for u in range(4):
            su, eu = s[u][m[u]], e[u][m[u]]
            t = torch.softmax(-eu, 0)
            log_q = torch.log_softmax(su / T[u], 0)
            kl = (t * (t.log() - log_q)).sum()
            entropy = -(t * t.log()).sum()
            total += (kl + entropy).item()
        assert mwed_loss(s, e, m, temperature=temperature).item() == pytest.approx(total / 4, abs=1e-12)


def test_mwed_rejects_bad_temperature():
    s, e, m = batch([[0.0, -1.0]], [[0, 1]])
    for bad in ("fixed", 0.0, -1.0, math.inf, math.nan, True):
        with pytest.raises(ValueError, match="temperature"):
            mwed_loss(s, e, m, temperature=bad)


def test_mwed_equal_scores_use_a_uniform_model():
    # all scores equal: MAD T would be 0 (0/0 in s/T); the model distribution is uniform for any T
    s, e, m = batch([[1.0, 1.0, 1.0]], [[0, 1, 2]])
    loss, g = grad_of(mwed_loss, s, e, m)
    # CE = -sum t log(1/3) = ln 3
    assert loss.item() == pytest.approx(math.log(3), abs=1e-12)
    assert torch.isfinite(g).all() and g[0, 0] < 0 < g[0, 2]


# --------------------------------------------------------------------------------------------
# Robustness, reductions, gradcheck
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [mwer_loss, mwed_loss])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_no_nan_with_extreme_scores_and_padded_rows(fn, dtype):
    big = 1e30 if dtype != torch.float64 else 1e300
    rows = [
        [0.0, -math.inf, -1.0],          # one -inf competitor
        [-math.inf, -math.inf, -math.inf],  # no finite score: contributes 0
        [big, -big, 0.0],               # very large spread
        [big, big * 0.5, -big],
        [math.inf, 0.0, -1.0],          # +inf: dropped like padding
        [],                             # fully padded row
        [3.0],                          # a single hypothesis
    ]
    errs = [[0, 1, 2], [0, 1, 2], [2, 0, 1], [0, 1, 3], [0, 1, 2], [], [1]]
    s, e, m = batch(rows, errs, n=4, pad_score=math.nan, pad_error=math.nan, dtype=dtype, grad=False)
    s.requires_grad_(True)
    loss = fn(s, e, m)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()
    assert torch.equal(s.grad[~m], torch.zeros_like(s.grad[~m]))
    assert s.grad[1].abs().sum().item() == 0.0 and s.grad[5:].abs().sum().item() == 0.0


@pytest.mark.parametrize("fn", [mwer_loss, mwed_loss])
def test_empty_batches(fn):
    for shape in ((0, 3), (2, 0), (0, 0)):
        s = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
        loss = fn(s, torch.zeros(shape), torch.zeros(shape, dtype=torch.bool))
        loss.backward()
        assert loss.item() == 0.0


def test_input_checks():
    s, e, m = batch([[0.0, -1.0]], [[0, 1]])
    with pytest.raises(ValueError, match="shape"):
        mwer_loss(s, e[:, :1], m)
    with pytest.raises(ValueError, match="bool"):
        mwer_loss(s, e, m.int())
    with pytest.raises(ValueError, match="errors must be finite"):
        mwer_loss(s, torch.tensor([[0.0, math.nan]], dtype=torch.float64), m)
    # integer errors are fine
    assert mwer_loss(s, e.long(), m).item() == pytest.approx(mwer_loss(s, e, m).item())


def test_gradcheck_mwer_and_mwed():
    gen = torch.Generator().manual_seed(1)
    s = torch.randn(3, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    e = torch.tensor([[0, 1, 2, 3, 0], [2, 0, 2, 9, 9], [1, 1, 0, 5, 5]], dtype=torch.float64)
    m = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.autograd.gradcheck(lambda x: mwer_loss(x, e, m), (s,))
    assert torch.autograd.gradcheck(lambda x: mwed_loss(x, e, m, temperature=0.8), (s,))
    # with "mad" the temperature is a constant of the step: check against that constant
    T = mwed_temperature(s, e, m)

    def mwed_at_t(x):
        rows = [mwed_loss(x[u : u + 1], e[u : u + 1], m[u : u + 1], temperature=T[u].item())
                for u in range(3)]
        return sum(rows) / 3

    assert mwed_loss(s, e, m).item() == pytest.approx(mwed_at_t(s).item(), abs=1e-12)
    g_mad = torch.autograd.grad(mwed_loss(s, e, m), s)[0]
    g_fix = torch.autograd.grad(mwed_at_t(s), s)[0]
    assert torch.allclose(g_mad, g_fix, atol=1e-12)


# --------------------------------------------------------------------------------------------
# MD
# --------------------------------------------------------------------------------------------


def test_md_loss():
    pred = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    target = torch.tensor([1.0, 0.0, 5.0])
    # ((1-1)^2 + (2-0)^2 + (3-5)^2) / 3 = (0 + 4 + 4) / 3 = 8/3
    loss = md_loss(pred, target)
    assert loss.item() == pytest.approx(8 / 3)
    loss.backward()
    # d/dpred = 2 (pred - target) / B = [0, 4/3, -4/3]
    assert pred.grad.tolist() == pytest.approx([0.0, 4 / 3, -4 / 3])
    with pytest.raises(ValueError, match="shape|\\(B,\\)"):
        md_loss(pred[:, None], target)
    assert md_loss(torch.zeros(0), torch.zeros(0)).item() == 0.0


# --------------------------------------------------------------------------------------------
# pad_nbest
# --------------------------------------------------------------------------------------------

OFFSETS = np.array([0, 3, 4, 8])  # utterances of 3, 1 and 4 hypotheses
FIRST_PASS = np.array([-5.0, -1.0, -3.0, 7.0, -2.0, -2.0, np.nan, -1.0])


def test_pad_nbest_without_cap():
    values = torch.arange(8, dtype=torch.float64)
    padded, mask = pad_nbest(OFFSETS, values, pad_value=-1.0)
    assert padded.tolist() == [[0, 1, 2, -1], [3, -1, -1, -1], [4, 5, 6, 7]]
    assert mask.tolist() == [[True] * 3 + [False], [True] + [False] * 3, [True] * 4]
    index, m = nbest_index(OFFSETS)
    assert index.tolist() == [[0, 1, 2, -1], [3, -1, -1, -1], [4, 5, 6, 7]]
    assert np.array_equal(m, mask.numpy())
    # numpy input keeps its dtype; integer streams (errors) pad with an integer
    errors, _ = pad_nbest(OFFSETS, np.arange(8), pad_value=0)
    assert errors.dtype == torch.int64 and errors[1].tolist() == [3, 0, 0, 0]


def test_pad_nbest_keeps_the_best_by_first_pass():
    values = torch.arange(8, dtype=torch.float64, requires_grad=True)
    padded, mask = pad_nbest(OFFSETS, values, pad_value=0.0, nbest_max=2, key=FIRST_PASS)
    # utt 0: first pass [-5, -1, -3] -> keeps hyps 1 (-1) and 2 (-3), in stored order
    # utt 1: one hypothesis -> kept, one padding column
    # utt 2: [-2, -2, nan, -1] -> keeps 7 (-1) and 4 (-2, the earlier of the tie); NaN ranks last
    assert padded.tolist() == [[1, 2], [3, 0], [4, 7]]
    assert mask.tolist() == [[True, True], [True, False], [True, True]]
    assert nbest_index(OFFSETS, nbest_max=2, key=FIRST_PASS)[0].tolist() == [[1, 2], [3, -1], [4, 7]]
    # gradients reach the kept hypotheses only
    (padded * mask).sum().backward()
    assert values.grad.tolist() == [0, 1, 1, 1, 1, 0, 0, 1]
    # the same index lines up every stream of the batch
    errs, _ = pad_nbest(OFFSETS, np.array([9, 8, 7, 6, 5, 4, 3, 2]), nbest_max=2, key=FIRST_PASS)
    assert errs.tolist() == [[8, 7], [6, 0], [5, 2]]
    # NaN ranks below every number: with a cap of 3, utt 2 keeps -2, -2 and -1 and drops the NaN
    index, _ = nbest_index(OFFSETS, nbest_max=3, key=FIRST_PASS)
    assert index.tolist() == [[0, 1, 2], [3, -1, -1], [4, 5, 7]]


def test_pad_nbest_cap_without_key_keeps_the_first():
    padded, mask = pad_nbest(OFFSETS, torch.arange(8.0), nbest_max=2)
    assert padded.tolist() == [[0, 1], [3, 0], [4, 5]]
    assert mask.tolist() == [[True, True], [True, False], [True, True]]
    # a cap above the longest list changes nothing
    assert pad_nbest(OFFSETS, torch.arange(8.0), nbest_max=10)[0].shape == (3, 4)


def test_pad_nbest_feeds_the_losses():
    scores, mask = pad_nbest([0, 3, 4], torch.tensor([0.0, -1.0, -2.0, 5.0], dtype=torch.float64))
    errors, _ = pad_nbest([0, 3, 4], np.array([0, 1, 2, 3]))
    assert mwer_loss(scores, errors, mask).item() == pytest.approx((E(-2) - 1) / Z3 / 2, abs=1e-12)


def test_pad_nbest_checks():
    with pytest.raises(ValueError, match="offsets"):
        pad_nbest([1, 3], torch.zeros(3))
    with pytest.raises(ValueError, match="offsets"):
        pad_nbest([0, 3, 2], torch.zeros(3))
    with pytest.raises(ValueError, match="values has"):
        pad_nbest([0, 3], torch.zeros(4))
    with pytest.raises(ValueError, match="nbest_max"):
        pad_nbest([0, 3], torch.zeros(3), nbest_max=0)
    with pytest.raises(ValueError, match="key"):
        pad_nbest([0, 3], torch.zeros(3), nbest_max=1, key=np.zeros(2))
    padded, mask = pad_nbest([0], torch.zeros(0))
    assert padded.shape == (0, 0) and mask.shape == (0, 0)
