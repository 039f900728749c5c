"""Import NeMo beam-search n-best TSV files (``eval_beamsearch_ngram[_ctc].py``), docs/formats.md §5.4.

NeMo writes ``preds_out_size<B>_alpha<α>_beta<β>.tsv``: no header, one ``<hypothesis text>\\t<score>``
line per hypothesis, exactly ``B`` lines per utterance, utterances in the order of the eval
manifest, and no utterance ids. ``eval_neural_rescorer.py --scores_output_file`` writes the
same layout (in the original order, with pandas' ``nan`` for empty hypotheses).

Import only (there is no ``write``)::

    read(src, refs=None, manifest=None, beam_size=None, score_sign="auto",
         nan_is_empty=False, utt_id_field=None) -> NbestSet

``manifest`` (required)
    the eval manifest, JSON lines ``{"audio_filepath": ..., "duration": ..., "text": ...}``;
    entry ``i`` owns TSV lines ``i*B+1 .. i*B+B``. Blank lines are skipped.
``refs``
    ``{utt: reference}``; default: the manifest's ``text`` (``None`` if no entry has one).
``beam_size``
    ``B``; default: the beam width in NeMo's file name (``preds_out_width<B>_...``; also
    ``size<B>``). Either way the TSV must have exactly ``B`` × entries lines, which proves the
    grouping (NeMo writes at most ``B`` per utterance); otherwise the error names the file and
    its last line. ``B`` is never inferred from the counts: with no utterance ids, a file whose
    utterances have 4, 4 and 1 beams would be regrouped as 3, 3, 3 without a trace.
``score_sign``
    ``"logprob"``: the column is a log score, kept; ``"cost"``: it is a cost, negated;
    ``"auto"`` (default): decided from the order within each utterance: every group
    non-increasing -> log score; every group non-decreasing (and not all constant) -> cost
    (negated, with a warning); anything else -> error asking for ``score_sign``. NaN
    neighbours are ignored by the check. The decision is recorded in ``meta['source']`` and in
    ``meta['streams']['score']['description']``. Rescorer output (``--scores_output_file``) is
    not sorted, so pass ``score_sign="logprob"`` for it.
``nan_is_empty``
    take the literal hypothesis text ``nan`` as an empty hypothesis (how pandas round-trips
    an empty text through ``eval_neural_rescorer.py``); the count is logged.
``utt_id_field``
    the manifest field holding utterance ids. Default: the ``audio_filepath`` basename without
    its extension when these are all unique; otherwise the path relative to the common
    directory of all audio files, extension removed, ``/`` replaced by ``_``
    (``/data/a/x.wav``, ``/data/b/x.wav`` -> ``a_x``, ``b_x``). Ids that still collide, or
    that contain whitespace, are an error (pass ``utt_id_field``).

Each line is split at its LAST tab (texts may contain tabs and quotes; pandas is not used).
A line without a tab, or whose score is not a number, is an :class:`InputError` naming the
file and line; ``nan``/``inf`` scores are kept. Hypothesis ``k`` of an utterance is its
``k``-th line (1-based); duplicate texts within an utterance stay separate entries (counted
in the log). Stream: ``score`` (higher is better after the sign decision).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from rescore.data.archive import (
    GZIP_ERRORS,
    decode,
    gzip_error,
    iter_lines,
    join_tokens,
    loads_json,
    open_binary,
    parse_float,
)
from rescore.data.nbest import NbestBuilder, NbestSet, describe
from rescore.exceptions import InputError
from rescore.log import get_logger

log = get_logger(__name__)

FORMAT = "nemo"
SCORE_SIGNS = ("auto", "logprob", "cost")
MAX_LISTED = 20
_ASCII_WS = " \t\n\r\x0b\x0c"


def read(
    src: str | Path,
    refs: dict[str, str] | None = None,
    manifest: str | Path | None = None,
    beam_size: int | None = None,
    score_sign: str = "auto",
    nan_is_empty: bool = False,
    utt_id_field: str | None = None,
) -> NbestSet:
    """Read a NeMo beams TSV, grouped by the eval manifest, into an :class:`NbestSet`."""
    src = Path(src)
    if manifest is None:
        raise InputError(src, None, "a NeMo beams file has no utterance ids: pass manifest=<eval manifest>")
    if score_sign not in SCORE_SIGNS:
        raise ValueError(f"score_sign must be one of {', '.join(SCORE_SIGNS)}, not {score_sign!r}")
    manifest = Path(manifest)
    entries = read_manifest(manifest)
    utt_ids, id_source = utterance_ids(entries, manifest, utt_id_field)
    texts, scores, nan_texts = read_beams(src, nan_is_empty)
    b, inferred = _beam_size(src, manifest, len(texts), len(entries), beam_size)
    groups = scores.reshape(len(entries), b)
    sign = decide_sign(groups, score_sign, src, utt_ids, b)
    if sign == "cost":
        scores = -scores
    if refs is None:
        refs = _manifest_refs(entries, manifest, utt_ids)
    meta = _meta(src, manifest, b, inferred, score_sign, sign, nan_is_empty, utt_id_field, id_source)
    builder = NbestBuilder(["score"])
    dup = 0
    for u, utt in enumerate(utt_ids):
        seen: set[bytes] = set()
        for k in range(1, b + 1):
            i = u * b + k - 1
            t = join_tokens(texts[i])
            dup += t in seen
            seen.add(t)
            builder.add(utt, k, decode(t, src, i + 1), {"score": scores[i]}, (str(src), i + 1))
    nbs = builder.build(refs=refs, meta=meta)
    if nbs.num_hyps != len(texts) or nbs.num_utts != len(entries):
        raise RuntimeError(f"read {len(texts)} lines of {len(entries)} utterances but kept "
                           f"{nbs.num_hyps} hypotheses of {nbs.num_utts}")
    if nan_texts:
        log.info("%d hypothesis text(s) 'nan' taken as empty hypotheses (nan_is_empty)", nan_texts)
    if dup:
        log.info("%d duplicate hypothesis text(s) within an utterance kept as separate entries", dup)
    log.info("read %s from %s (beam size %d%s, score read as %s)",
             describe(nbs), src, b, ", inferred" if inferred else "", sign)
    return nbs


# --------------------------------------------------------------------------------------------
# Manifest and utterance ids
# --------------------------------------------------------------------------------------------


def read_manifest(path: Path) -> list[tuple[int, dict]]:
    """``(line, entry)`` for every JSON object of a NeMo manifest (blank lines skipped)."""
    if not path.is_file():
        raise InputError(path, None, "manifest not found")
    out: list[tuple[int, dict]] = []
    try:
        with open_binary(path) as f:
            for lineno, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                try:
                    obj = loads_json(decode(raw, path, lineno), path, lineno)
                except json.JSONDecodeError as e:
                    raise InputError(path, lineno, f"invalid JSON ({e.msg} at column {e.colno})") from None
                if not isinstance(obj, dict):
                    raise InputError(path, lineno, f"manifest entry is {type(obj).__name__}, not an object")
                out.append((lineno, obj))
    except GZIP_ERRORS as e:  # a damaged manifest.json.gz
        raise gzip_error(path, e) from None
    if not out:
        raise InputError(path, None, "empty manifest")
    return out


def utterance_ids(entries: list[tuple[int, dict]], manifest: Path,
                  utt_id_field: str | None = None) -> tuple[list[str], str]:
    """Utterance ids of the manifest entries and how they were made (for meta)."""
    if utt_id_field is not None:
        ids = []
        for lineno, e in entries:
            v = e.get(utt_id_field)
            if isinstance(v, int) and not isinstance(v, bool):
                v = str(v)
            if not isinstance(v, str) or not v:
                raise InputError(manifest, lineno, f"no string field {utt_id_field!r} (utt_id_field)")
            ids.append(v)
        how = f"field {utt_id_field}"
    else:
        paths = []
        for lineno, e in entries:
            p = e.get("audio_filepath")
            if not isinstance(p, str) or not p:
                raise InputError(manifest, lineno, "no string field 'audio_filepath'; pass utt_id_field")
            paths.append(p)
        ids = [os.path.splitext(os.path.basename(p))[0] for p in paths]
        how = "audio_filepath basename"
        if len(set(ids)) != len(ids):
            ids = _relative_ids(paths)
            how = "audio_filepath relative to the common directory"
    _check_ids(ids, entries, manifest, how)
    return ids, how


def _relative_ids(paths: list[str]) -> list[str]:
    """Paths relative to their common directory, extension removed, ``/`` -> ``_``."""
    try:
        common = os.path.commonpath([os.path.dirname(p) for p in paths])
    except ValueError:  # absolute and relative paths mixed
        common = ""
    out = []
    for p in paths:
        rel = os.path.relpath(p, common) if common else p
        out.append(os.path.splitext(rel)[0].strip("/").replace("/", "_"))
    return out


def _check_ids(ids: list[str], entries: list[tuple[int, dict]], manifest: Path, how: str) -> None:
    for u, (lineno, _) in zip(ids, entries, strict=True):
        if any(c in u for c in _ASCII_WS):
            raise InputError(manifest, lineno, f"utterance id {u!r} (from {how}) contains whitespace; "
                                               "pass utt_id_field")
    lines: dict[str, list[int]] = {}
    for u, (lineno, _) in zip(ids, entries, strict=True):
        lines.setdefault(u, []).append(lineno)
    dups = {u: ln for u, ln in lines.items() if len(ln) > 1}
    if dups:
        shown = list(dups.items())[:MAX_LISTED]
        listed = "; ".join(f"{u} (lines {', '.join(map(str, ln))})" for u, ln in shown)
        raise InputError(manifest, None, f"{len(dups)} duplicate utterance id(s) from {how}: {listed}; "
                                         "pass utt_id_field naming a unique manifest field")


def _manifest_refs(entries: list[tuple[int, dict]], manifest: Path,
                   utt_ids: list[str]) -> dict[str, str] | None:
    """References from the manifest's ``text``: all entries or none must have it."""
    have = [isinstance(e.get("text"), str) for _, e in entries]
    if not any(have):
        log.info("%s: no 'text' field; the set has no references", manifest)
        return None
    if not all(have):
        lineno = entries[have.index(False)][0]
        raise InputError(manifest, lineno, "no string 'text' field (other entries have one); pass refs")
    return {u: join_tokens(e["text"].encode("utf-8")).decode("utf-8")
            for u, (_, e) in zip(utt_ids, entries, strict=True)}


# --------------------------------------------------------------------------------------------
# The beams file
# --------------------------------------------------------------------------------------------


def read_beams(path: Path, nan_is_empty: bool = False) -> tuple[list[bytes], np.ndarray, int]:
    """Texts (raw UTF-8 bytes), scores and the number of ``nan`` texts taken as empty."""
    if not path.is_file():
        raise InputError(path, None, "beams file not found")
    texts: list[bytes] = []
    scores: list[float] = []
    nan_texts = 0
    for lineno, line in iter_lines(path, allow_empty=True):
        text, tab, score = line.rpartition(b"\t")
        if not tab:
            raise InputError(path, lineno, "no tab: expected '<hypothesis text>\\t<score>'")
        try:
            value = parse_float(score)
        except ValueError:
            shown = score.decode("utf-8", "replace")
            raise InputError(path, lineno, f"non-numeric score {shown!r}") from None
        decode(text, path, lineno)
        if nan_is_empty and text.strip() == b"nan":
            text = b""
            nan_texts += 1
        texts.append(text)
        scores.append(value)
    return texts, np.array(scores, dtype=np.float64), nan_texts


_NAMED_WIDTH = re.compile(r"preds_out_(?:width|size)([1-9][0-9]*)_")


def _beam_size(src: Path, manifest: Path, n_lines: int, n_entries: int,
               beam_size: int | None) -> tuple[int, bool]:
    """``(B, taken from the file name)``. The lines can only be assigned to utterances when B is
    known: NeMo writes at most B beams per utterance and no utterance ids, so ``lines == B x
    entries`` proves that every utterance has exactly B. A B inferred by dividing the counts
    proves nothing (beams 4, 4, 1 would pass as 3, 3, 3), so it is never used."""
    named = None
    m = _NAMED_WIDTH.search(src.name)
    if m is not None:
        named = int(m.group(1))
    if beam_size is not None:
        if beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, not {beam_size}")
        if named is not None and named != beam_size:
            log.warning("%s: beam_size %d given, but the file name says %d", src, beam_size, named)
        b, how = beam_size, "beam_size"
    elif named is not None:
        b, how = named, "the beam width in the file name"
    else:
        raise InputError(src, None, f"{n_lines} lines for {n_entries} manifest entries ({manifest}), and the beam "
                         "size is neither given nor in the file name (NeMo's preds_out_width<B>_...tsv): pass "
                         "beam_size (--beam_size). It is never inferred from the counts: NeMo writes no utterance "
                         "ids, so a wrong grouping would move hypotheses to other utterances")
    if n_lines != b * n_entries:
        short = " (some utterances have fewer beams)" if n_lines < b * n_entries else ""
        raise InputError(src, n_lines, f"the file ends after {n_lines} lines, but beam size {b} (from {how}) x "
                         f"{n_entries} manifest entries ({manifest}) = {b * n_entries}{short}: NeMo writes no "
                         "utterance ids, so the lines cannot be assigned to utterances")
    return b, named is not None and beam_size is None


def decide_sign(groups: np.ndarray, requested: str, src: Path, utt_ids: list[str], b: int) -> str:
    """``'logprob'`` or ``'cost'`` for an (utterances x beam) score matrix (see ``score_sign``)."""
    with np.errstate(invalid="ignore"):  # inf - inf = nan, ignored like a NaN score
        d = np.diff(groups, axis=1)
    nan = np.isnan(d)
    down = np.all((d <= 0) | nan, axis=1)  # non-increasing
    up = np.all((d >= 0) | nan, axis=1)  # non-decreasing
    rising = np.any(d > 0, axis=1)
    if requested != "auto":
        if requested == "logprob" and np.all(up) and np.any(rising):
            log.warning("%s: score_sign=logprob, but every utterance's scores are ascending "
                        "(looks like a cost)", src)
        elif requested == "cost" and np.all(down) and not np.any(rising) and np.any(d < 0):
            log.warning("%s: score_sign=cost, but every utterance's scores are descending "
                        "(looks like a log-prob)", src)
        return requested
    if b == 1:
        log.info("%s: beam size 1, the score order cannot tell its sign; read as a log-prob", src)
    if np.all(down):
        return "logprob"
    if np.all(up) and np.any(rising):
        log.warning("%s: scores ascend within every utterance: read as costs and negated "
                    "(pass score_sign to override)", src)
        return "cost"
    mixed = np.flatnonzero(~down & ~up)
    examples = mixed if len(mixed) else np.flatnonzero(~down)
    listed = ", ".join(f"{utt_ids[u]} (lines {u * b + 1}-{u * b + b})" for u in examples[:5])
    raise InputError(
        src, None,
        f"cannot tell the score sign from the order within utterances: {int(np.sum(down & ~up))} "
        f"descending, {int(np.sum(up & ~down))} ascending, {int(np.sum(up & down))} constant, "
        f"{len(mixed)} unordered (e.g. {listed}); pass score_sign='logprob' (higher is better; "
        "e.g. eval_neural_rescorer output, which is not sorted) or score_sign='cost' (lower is better)",
    )


def _meta(src: Path, manifest: Path, b: int, inferred: bool, requested: str, sign: str,
          nan_is_empty: bool, utt_id_field: str | None, id_source: str) -> dict:
    if sign == "cost":
        desc = "NeMo beam-search score read as a cost and negated (now higher is better)"
    else:
        desc = "NeMo beam-search score, log domain as written (higher is better)"
    how = "from the order within utterances" if requested == "auto" else "as requested"
    return {
        "source": {
            "format": FORMAT,
            "path": str(src),
            "options": {
                "manifest": str(manifest),
                "beam_size": b,
                "beam_size_inferred": inferred,  # true: from the file name
                "score_sign": requested,
                "score_sign_used": sign,
                "nan_is_empty": nan_is_empty,
                "utt_id_field": utt_id_field,
            },
            "utt_ids_from": id_source,
        },
        "streams": {"score": {"better": "higher", "description": f"{desc}; sign decided {how}"}},
    }
