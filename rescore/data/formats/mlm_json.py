"""awslabs/mlm-scoring n-best JSON (``*.am.json`` inputs, ``*.lm.json`` score outputs), docs/formats.md §5.2.

One JSON object keyed by utterance id::

    {"1272-128104-0000": {"ref": "mister quilter ...",
                          "hyp_1": {"score": -1.234, "text": " mister quilter ..."},
                          "hyp_2": {"score": -3.017, "text": " mister quillter ..."}}}

The rank ``k`` of a hypothesis is the ``n`` of its ``hyp_<n>`` key (1-based, no gaps). Texts may
carry a leading space (ESPnet's detokenised BPE), which mlm-scoring's loader strips; tokens are
split on ASCII whitespace only, so U+3000 or NBSP stay inside a token.

``read(src, refs=None, missing_score="error", stream="score")``
    ``src``: the JSON file. ``refs``: references; when given they replace the file's ``ref``
    fields (logged), otherwise the ``ref`` fields are the references (``None`` if the file has
    none). ``missing_score``: what a ``hyp_<n>`` without ``score`` means: ``"error"`` (default)
    or ``"zero"`` (score 0.0, counted in the log; mlm-scoring treats ``score`` as optional in
    its inputs). ``stream``: the name of the stream the ``score`` fields go to (e.g. ``mlm``
    for an ``*.lm.json``). NaN/Infinity tokens (which Python's json accepts) are kept. An
    utterance holding only ``ref`` becomes a reference without hypotheses. Invalid JSON raises
    :class:`InputError` with the line; structural problems (``hyp_0``, ``hyp_x``, rank gaps, a
    missing or non-numeric score or text, duplicate keys) are collected and raised together as
    :class:`InvalidSetError`, each naming the utterance, the key and (best effort) the line of
    the utterance in the file.

``write(nbs, out, include_ref=True, stream="score")``
    ``out``: the JSON file. Same shape, written with ``json.dump(sort_keys=True, indent=2)``
    like mlm-scoring (plus a final newline): ``hyp_<k>`` with the set's ``k``, texts without a
    leading space, ``ref`` when known and ``include_ref`` (references without hypotheses are
    written as ``{"ref": ...}``). Non-finite scores are written as the ``NaN``/``Infinity``/
    ``-Infinity`` tokens of Python's json (``allow_nan``), which Python reads back but strict
    JSON parsers reject. ``stream``: the stream written as ``score``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from rescore.data.archive import join_tokens, loads_json
from rescore.data.nbest import MAX_RANK, NbestBuilder, NbestSet, describe, missing_ranks, stream_convention
from rescore.exceptions import InputError, InvalidSetError, require_file
from rescore.log import get_logger
from rescore.stage import atomic_open

log = get_logger(__name__)

NAME = "mlm-json"
_HYP_RE = re.compile(r"^hyp_([1-9][0-9]*)$")
MISSING_SCORE = ("error", "zero")


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    """``object_pairs_hook`` refusing duplicate keys (json would silently keep the last)."""
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _load(src: Path) -> tuple[dict, str]:
    data = src.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InputError(src, line, f"invalid UTF-8 ({e.reason})") from None
    try:
        obj = loads_json(text, src, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        raise InputError(src, e.lineno, f"invalid JSON: {e.msg} (column {e.colno})") from None
    except _DuplicateKey as e:
        raise InputError(src, None, f"duplicate key {str(e)!r} in a JSON object") from None
    if not isinstance(obj, dict):
        raise InputError(src, 1, f"expected a JSON object keyed by utterance id, got {type(obj).__name__}")
    return obj, text


def _line_of(text: str, key: str, start: int = 0) -> tuple[int | None, int]:
    """``(line, end)`` of the first ``"key":`` at or after ``start`` (best effort, for messages).

    Returns ``(None, start)`` when the key is spelled with other escapes than json.dumps uses.
    """
    for spelled in dict.fromkeys((json.dumps(key), json.dumps(key, ensure_ascii=False))):
        m = re.compile(re.escape(spelled) + r"\s*:").search(text, start)
        if m:
            return text.count("\n", 0, m.start()) + 1, m.end()
    return None, start


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _hyp(entry: object, missing_score: str, where, label: str,
         builder: NbestBuilder) -> tuple[str, float | None] | None:
    """``(text, score)`` of one ``hyp_<n>`` entry, or None after recording the problem."""
    if not isinstance(entry, dict):
        builder.problem(where, f"{label}: expected an object with 'text' and 'score'")
        return None
    text = entry.get("text")
    if not isinstance(text, str):
        builder.problem(where, f"{label}: 'text' is {'missing' if text is None else 'not a string'}")
        return None
    if "score" not in entry:
        if missing_score == "error":
            builder.problem(where, f"{label}: no 'score' (use missing_score='zero' to read it as 0.0)")
            return None
        return text, None
    score = entry["score"]
    if not _is_number(score):
        builder.problem(where, f"{label}: score {score!r} is not a number")
        return None
    try:
        return text, float(score)
    except OverflowError:  # an integer literal too large for a float
        builder.problem(where, f"{label}: score {score} does not fit a float")
        return None


def read(src: Path, refs: dict[str, str] | None = None, missing_score: str = "error",
         stream: str = "score") -> NbestSet:
    """Read an mlm-scoring n-best JSON file into an :class:`NbestSet` (see the module doc)."""
    src = require_file(src, "mlm-scoring JSON file")
    if missing_score not in MISSING_SCORE:
        raise ValueError(f"missing_score must be one of {MISSING_SCORE}, not {missing_score!r}")
    obj, text = _load(src)
    builder = NbestBuilder([stream])
    file_refs: dict[str, str] = {}
    n_entries = n_missing = n_ignored = n_empty = 0
    pos = 0
    for utt, entries in obj.items():
        line, pos = _line_of(text, utt, pos)
        where = (str(src), line)
        if not isinstance(entries, dict):
            builder.problem(where, f"utterance {utt}: expected an object, got {type(entries).__name__}")
            continue
        hyps: dict[int, tuple[str, float | None]] = {}
        for key, entry in entries.items():
            if key == "ref":
                if not isinstance(entry, str):
                    builder.problem(where, f"utterance {utt}: 'ref' is not a string")
                else:
                    file_refs[utt] = join_tokens(entry.encode("utf-8")).decode("utf-8")
                continue
            if not key.startswith("hyp_"):
                n_ignored += 1
                continue
            n_entries += 1
            m = _HYP_RE.match(key)
            if m is None:
                builder.problem(where, f"utterance {utt}: key {key!r} is not hyp_<n> with a 1-based n")
                continue
            if len(m.group(1)) > len(str(MAX_RANK)) or int(m.group(1)) > MAX_RANK:
                builder.problem(where, f"utterance {utt}: key {key[:40]!r}: rank out of range (at most {MAX_RANK})")
                continue
            got = _hyp(entry, missing_score, where, f"utterance {utt} key {key}", builder)
            if got is not None:
                hyps[int(m.group(1))] = got
        ranks = sorted(hyps)
        if not ranks and "ref" not in entries:
            n_empty += 1
        if ranks and ranks != list(range(1, len(ranks) + 1)):
            missing = missing_ranks(ranks)
            builder.problem(where, f"utterance {utt}: hyp_{ranks[-1]} present but "
                            f"{', '.join(f'hyp_{n}' for n in missing[:10])} missing")
            continue
        for k in ranks:
            hyp_text, score = hyps[k]
            if score is None:
                n_missing += 1
                score = 0.0
            builder.add(utt, k, hyp_text, {stream: score}, where=where)
    refs_out = _choose_refs(src, refs, file_refs)
    meta = {
        "source": {"format": NAME, "path": str(src),
                   "options": {"missing_score": missing_score, "stream": stream}},
        "streams": {stream: {"better": "higher", "description":
                             "mlm-scoring JSON score (ESPnet total log-prob in *.am.json, "
                             "PLL or LM log-prob in *.lm.json)"}},
    }
    try:
        nbs = builder.build(refs=refs_out, meta=meta)
    except InvalidSetError as e:
        raise InvalidSetError(e.problems, what=str(src)) from None
    if nbs.num_hyps != n_entries:
        raise RuntimeError(f"{src}: {n_entries} hyp_* entries but {nbs.num_hyps} hypotheses built")
    log.info("read %s from %s", describe(nbs), src)
    if n_missing:
        log.warning("%s: %d hypotheses without 'score' read as 0.0 (missing_score='zero')", src, n_missing)
    if n_ignored:
        log.warning("%s: ignored %d keys that are neither 'ref' nor 'hyp_<n>'", src, n_ignored)
    if n_empty:
        log.warning("%s: %d utterance(s) with neither hypotheses nor ref", src, n_empty)
    have = set(nbs.utt_ids)
    no_hyp = [u for u in file_refs if u not in have]
    if no_hyp:
        log.info("%s: %d utterance(s) with a ref but no hypotheses", src, len(no_hyp))
    return nbs


def _choose_refs(src: Path, refs: dict[str, str] | None, file_refs: dict[str, str]) -> dict[str, str] | None:
    if refs is not None:
        if file_refs:
            log.info("%s: using the %d references given, not the file's %d 'ref' fields",
                     src, len(refs), len(file_refs))
        return refs
    return file_refs or None


def write(nbs: NbestSet, out: Path, include_ref: bool = True, stream: str = "score") -> list[Path]:
    """Write ``nbs`` as an mlm-scoring n-best JSON file ``out`` (see the module doc)."""
    out = Path(out)
    if stream not in nbs.streams:
        raise ValueError(f"the set has no stream {stream!r} (has: {', '.join(nbs.streams) or 'none'})")
    if stream_convention(stream) != "higher":
        log.warning("stream %s is lower-is-better; mlm-scoring expects higher-is-better scores", stream)
    values = nbs.streams[stream].tolist()
    ranks = nbs.ranks.tolist()
    offsets = nbs.offsets.tolist()
    obj: dict[str, dict] = {}
    refs = nbs.refs if include_ref and nbs.refs is not None else {}
    for u, utt in enumerate(nbs.utt_ids):
        entry: dict = {}
        if utt in refs:
            entry["ref"] = refs[utt]
        for i in range(offsets[u], offsets[u + 1]):
            entry[f"hyp_{ranks[i]}"] = {"score": values[i], "text": nbs.texts[i]}
        obj[utt] = entry
    for utt, ref in refs.items():
        if utt not in obj:
            obj[utt] = {"ref": ref}
    with atomic_open(out) as f:
        json.dump(obj, f, sort_keys=True, indent=2)
        f.write("\n")
    log.info("wrote %s to %s", describe(nbs), out)
    return [out]
