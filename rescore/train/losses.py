"""Training objectives of the RescoreBERT student: MD, MWER and MWED, batched with padding masks.

Every n-best loss takes a padded batch of ``U`` utterances by ``N`` hypotheses:

* ``scores`` (U, N) float: log-domain totals, higher is better, built by the caller exactly as
  rescoring combines them (``s = first_pass + beta * student``);
* ``errors`` (U, N): word (or character) errors of each hypothesis against the reference;
* ``mask`` (U, N) bool: True for a real hypothesis, False for padding.

Conventions shared by :func:`mwer_loss` and :func:`mwed_loss`:

* Padding gets no probability and no gradient, whatever value it holds (``-inf``, NaN, anything).
* A real hypothesis whose score is not finite (``-inf``, ``+inf``, NaN: a first-pass score kept as
  ``Infinity``/``BadNumber``) is treated like padding: it can never be ranked by a finite score,
  so it is no competitor, and it gets no gradient. "Valid" below means real and finitely scored.
* An utterance with fewer than two valid hypotheses, or whose valid hypotheses all have the same
  error count, contributes exactly 0 (value and gradient): there is nothing to discriminate, and
  MWED's temperature is undefined there. A fully padded row (no valid entry) contributes 0 too.
* Reduction: the mean over the ``U`` utterances of the batch, the rows contributing 0 included
  (so the loss of a batch does not depend on how it is padded, only on which utterances it holds).
  An empty batch (``U == 0``) gives 0.
* Half-precision scores (fp16/bf16, e.g. under autocast) are computed in fp32.

Softmaxes are computed with the row maximum subtracted and the padded entries replaced by finite
placeholders before any ``exp``/``log``, so no ``inf - inf``, ``0 * inf`` or ``0 / 0`` is ever formed,
in the forward pass or the backward pass.

:func:`pad_nbest` turns flat per-hypothesis arrays (grouped by :class:`rescore.data.nbest.NbestSet`
``offsets``) into these padded matrices, optionally keeping only the top ``nbest_max`` hypotheses of
each utterance by a key such as the first-pass score; :func:`nbest_index` gives the index matrix
behind it (to select the hypotheses to run the student on).
"""

from __future__ import annotations

import math

import numpy as np
import torch

Temperature = str | float

# --------------------------------------------------------------------------------------------
# Padding flat n-best arrays
# --------------------------------------------------------------------------------------------


def _as_numpy(x, dtype=None) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def nbest_index(offsets, nbest_max: int | None = None, key=None) -> tuple[np.ndarray, np.ndarray]:
    """Index matrix ``(U, N)`` int64 into the flat hypotheses, and its mask ``(U, N)`` bool.

    ``offsets`` (U+1,) groups the flat hypotheses: utterance ``u`` owns ``offsets[u]:offsets[u+1]``.
    Row ``u`` lists its hypotheses in their flat (stored) order, then padding (index -1, mask False).
    ``N`` is the largest utterance's count, capped by ``nbest_max``.

    With ``nbest_max``, an utterance with more hypotheses keeps ``nbest_max`` of them: the highest
    ``key`` values (``key`` (H,), e.g. the first-pass score, higher is better; NaN ranks last, ties go
    to the earlier hypothesis), or, without ``key``, the first ``nbest_max`` in stored order (the
    first-pass ranks of a set in normalized order). Kept hypotheses stay in stored order.
    """
    offsets = _as_numpy(offsets, np.int64)
    if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or np.any(np.diff(offsets) < 0):
        raise ValueError("offsets must be a non-decreasing 1-D array starting at 0")
    if nbest_max is not None and (
        isinstance(nbest_max, bool) or nbest_max != int(nbest_max) or nbest_max < 1
    ):
        raise ValueError(f"nbest_max must be a positive integer or None, got {nbest_max!r}")
    nbest_max = None if nbest_max is None else int(nbest_max)
    counts = np.diff(offsets)
    starts = offsets[:-1, None]
    n_full = int(counts.max()) if len(counts) else 0
    pos = np.broadcast_to(np.arange(n_full, dtype=np.int64), (len(counts), n_full))
    valid = pos < counts[:, None]
    if nbest_max is None or nbest_max >= n_full:
        kept = pos
    elif key is None:
        kept, valid = pos[:, :nbest_max], valid[:, :nbest_max]
    else:
        key = _as_numpy(key, np.float64)
        if key.shape != (int(offsets[-1]),):
            raise ValueError(f"key has shape {key.shape}, expected ({int(offsets[-1])},)")
        k = np.where(valid, key[np.where(valid, starts + pos, 0)], 0.0)  # H >= 1 here: some list is capped
        tier = np.where(valid, np.where(np.isnan(k), 1, 0), 2)  # real, real but NaN, padding
        k = np.where(np.isnan(k), 0.0, k)
        order = np.lexsort((pos, -k, tier), axis=-1)[:, :nbest_max]  # last key is the primary one
        valid = np.take_along_axis(valid, order, axis=1)
        kept = np.sort(np.where(valid, order, n_full), axis=1)  # stored order, padding last
        valid = kept < n_full
    index = np.where(valid, starts + kept, -1).astype(np.int64)
    return index, np.ascontiguousarray(valid)


def pad_nbest(offsets, values, pad_value: float = 0.0, *, nbest_max: int | None = None,
              key=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat per-hypothesis ``values`` (H,) -> padded ``(U, N)`` tensor and its bool mask.

    ``values`` is a torch tensor (gradients flow to the kept entries only) or an array (converted
    with its dtype kept); padded entries hold ``pad_value``. The mask lives on ``values``' device.
    ``offsets``, ``nbest_max`` and ``key`` are as in :func:`nbest_index`: pass the same ones when
    padding several streams of one batch (scores, errors, ...) so that their entries line up.
    """
    values = values if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D (one per hypothesis), got shape {tuple(values.shape)}")
    index, mask = nbest_index(offsets, nbest_max=nbest_max, key=key)
    covered = int(_as_numpy(offsets, np.int64)[-1])
    if covered != values.shape[0]:
        raise ValueError(f"offsets cover {covered} hypotheses, values has {values.shape[0]}")
    idx = torch.from_numpy(np.maximum(index, 0)).to(values.device)
    mask_t = torch.from_numpy(mask).to(values.device)
    gathered = values[idx]
    return torch.where(mask_t, gathered, torch.full_like(gathered, pad_value)), mask_t


# --------------------------------------------------------------------------------------------
# Masked helpers
# --------------------------------------------------------------------------------------------


def _prepare(scores: torch.Tensor, errors: torch.Tensor, mask: torch.Tensor):
    """Checked inputs: (scores with invalid entries zeroed, errors as float, valid mask, active rows)."""
    if scores.ndim != 2 or errors.shape != scores.shape or mask.shape != scores.shape:
        raise ValueError(f"scores, errors and mask must share one (U, N) shape, got {tuple(scores.shape)}, "
                         f"{tuple(errors.shape)}, {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor, got {mask.dtype}")
    if not scores.is_floating_point():
        raise ValueError(f"scores must be a floating-point tensor, got {scores.dtype}")
    if scores.dtype in (torch.float16, torch.bfloat16):
        scores = scores.float()
    errors = errors.detach().to(device=scores.device, dtype=scores.dtype)
    mask = mask.to(scores.device)
    valid = mask & torch.isfinite(scores.detach())
    if not bool(torch.isfinite(errors[valid]).all()):
        raise ValueError("errors must be finite for every real hypothesis")
    s = torch.where(valid, scores, torch.zeros_like(scores))  # no inf/nan on any path to a gradient
    e = torch.where(valid, errors, torch.zeros_like(errors))
    n = valid.sum(dim=1)
    e_max = torch.where(valid, e, torch.full_like(e, -math.inf)).amax(dim=1) if e.shape[1] else n.to(e.dtype)
    e_min = torch.where(valid, e, torch.full_like(e, math.inf)).amin(dim=1) if e.shape[1] else n.to(e.dtype)
    active = (n >= 2) & (e_max > e_min)
    return s, e, valid, active


def _masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-row mean of the valid entries, shape (U, 1); 0 for rows without any."""
    n = valid.sum(dim=1, keepdim=True).clamp(min=1).to(x.dtype)
    return torch.where(valid, x, torch.zeros_like(x)).sum(dim=1, keepdim=True) / n


def _masked_log_softmax(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the valid entries of each row; 0 (not -inf) at the others.

    ``x`` must already be finite everywhere. The row maximum is detached: log-softmax does not
    depend on the shift, so its gradient is exactly that of the undetached form.
    """
    neg = torch.full_like(x, -math.inf)
    if x.shape[1]:
        row_max = torch.where(valid, x, neg).amax(dim=1, keepdim=True).detach()
    else:
        row_max = x.detach().sum(dim=1, keepdim=True)  # (U, 1) zeros
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    shifted = torch.where(valid, x - row_max, torch.zeros_like(x))
    exp = torch.where(valid, shifted.exp(), torch.zeros_like(x))
    total = exp.sum(dim=1, keepdim=True)  # >= 1 when the row has a valid entry (its max gives exp(0))
    total = torch.where(total > 0, total, torch.ones_like(total))
    return torch.where(valid, shifted - total.log(), torch.zeros_like(x))


def _masked_softmax(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Softmax over the valid entries of each row; exactly 0 at the others."""
    return torch.where(valid, _masked_log_softmax(x, valid).exp(), torch.zeros_like(x))


def _reduce(per_utt: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """Mean over the utterances; inactive rows contribute exactly 0."""
    per_utt = torch.where(active, per_utt, torch.zeros_like(per_utt))
    return per_utt.sum() / max(per_utt.shape[0], 1)


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------


def md_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MLM distillation: mean squared error between student scores and teacher PLLs, both (B,).

    Mean over the ``B`` hypotheses; an empty batch gives 0. Shapes must match exactly (no silent
    broadcasting of a (B, 1) against a (B,)).
    """
    if pred.shape != target.shape or pred.ndim != 1:
        raise ValueError(f"pred and target must both be (B,), got {tuple(pred.shape)}, {tuple(target.shape)}")
    if pred.shape[0] == 0:
        return pred.sum() * 0.0
    return torch.nn.functional.mse_loss(pred, target.to(pred.dtype))


def mwer_loss(scores: torch.Tensor, errors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Minimum word error rate loss (Prabhavalkar et al. 2018), mean over the ``U`` utterances.

    Per utterance, over its valid hypotheses: ``P = softmax(s)`` and
    ``L_u = sum_i P_i * (eps_i - mean_j eps_j)``, the expected errors minus the n-best's average
    errors (the baseline lowers the gradient's variance and does not change its direction).
    See the module docstring for padding, non-finite scores and the rows that contribute 0.
    """
    s, e, valid, active = _prepare(scores, errors, mask)
    p = _masked_softmax(s, valid)
    centred = torch.where(valid, e - _masked_mean(e, valid), torch.zeros_like(e))
    return _reduce((p * centred).sum(dim=1), active)


def mwed_temperature(scores: torch.Tensor, errors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-utterance MAD temperature ``T_u = sum_i |s_i - mean s| / sum_i |eps_i - mean eps|``, (U,).

    Computed on detached scores over the valid entries (see the module docstring). Rows where it is
    undefined or degenerate (fewer than two valid hypotheses, all errors or all scores equal, or an
    overflow) get ``T = 1``; those rows either contribute 0 or have a uniform model distribution,
    which any positive ``T`` leaves unchanged.
    """
    s, e, valid, active = _prepare(scores.detach(), errors, mask)
    return _mad_temperature(s, e, valid, active)


def _mad_temperature(s, e, valid, active) -> torch.Tensor:
    s = s.detach()
    num = torch.where(valid, (s - _masked_mean(s, valid)).abs(), torch.zeros_like(s)).sum(dim=1)
    den = torch.where(valid, (e - _masked_mean(e, valid)).abs(), torch.zeros_like(e)).sum(dim=1)
    t = num / torch.where(den > 0, den, torch.ones_like(den))
    ok = active & (den > 0) & (t > 0) & torch.isfinite(t)
    return torch.where(ok, t, torch.ones_like(t))


def mwed_loss(scores: torch.Tensor, errors: torch.Tensor, mask: torch.Tensor,
              temperature: Temperature = "mad") -> torch.Tensor:
    """Matching word error distribution loss (Xu et al. 2022, RescoreBERT), mean over the ``U`` utterances.

    Per utterance, over its valid hypotheses: target ``t = softmax(-eps)``, model
    ``q = softmax(s / T_u)`` and ``L_u = -sum_i t_i log q_i`` (cross-entropy; it equals
    ``KL(t || q)`` plus the target's entropy, a constant). ``temperature="mad"`` (default) uses
    :func:`mwed_temperature`, which puts scores and errors on the same dynamic range and is
    invariant to shifting the scores (the paper's ``sum(cost)/sum(errors)`` assumes positive
    costs); it is computed from detached scores, so it is no path for gradients. A positive float
    is used as a fixed ``T`` for every utterance.
    See the module docstring for padding, non-finite scores and the rows that contribute 0.
    """
    s, e, valid, active = _prepare(scores, errors, mask)
    if isinstance(temperature, str):
        if temperature != "mad":
            raise ValueError(f"temperature must be 'mad' or a positive float, got {temperature!r}")
        t = _mad_temperature(s, e, valid, active)
    else:
        if isinstance(temperature, bool) or not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be 'mad' or a positive float, got {temperature!r}")
        t = torch.full((s.shape[0],), float(temperature), dtype=s.dtype, device=s.device)
    target = _masked_softmax(-e, valid)
    log_q = _masked_log_softmax(s / t[:, None], valid)
    return _reduce(-(target * log_q).sum(dim=1), active)
