"""ESPnet2 n-best decode output (``asr_inference.py --nbest N``), docs/formats.md §4.1 and §4.2.

Layout read and written::

    <decode dir>/text, score                        merged 1-best (written; ignored on read)
    <decode dir>/logdir/output.<J>/<n>best_recog/   J = job 1..nj, n = 1..N
        text    "<utt> <detokenized text>"          (absent for models without a tokenizer)
        token   "<utt> <tok1> <tok2> ..."
        score   "<utt> <score>"

The score is ESPnet's single weighted total log-probability (higher is better), written as
``-12.3`` (transducer search, a Python float), ``tensor(-12.3457)`` (CPU) or
``tensor(-12.3457, device='cuda:0'[, dtype=torch.float16])`` (GPU); a tensor repr keeps only 4
decimals. The rank ``k`` of a hypothesis is the ``n`` of its ``<n>best_recog`` directory.

``read(src, refs=None, field="text")``
    ``src``: a decode dir (containing ``logdir/output.*/``), a ``logdir`` or one ``output.J``
    dir. ``field``: the file holding the hypothesis text, ``"text"`` or ``"token"`` (models
    without a tokenizer write no ``text``). ``refs``: references (the data dir's ``text``, read
    by the caller). Utterances come in job order, then in order of first appearance in
    ``1best_recog`` (ESPnet does not sort inside a job). The too-short-utterance line
    (text ``" "``, score ``0.0``) becomes an empty hypothesis. A malformed line raises
    :class:`InputError` at once; inconsistencies between files (a key in ``text`` but not in
    ``score`` or vice versa, a rank gap, a duplicated key, the same utterance in two jobs) are
    collected and raised together as :class:`InvalidSetError`.

``write(nbs, out, score_style="tensor", stream="score", order="score")``
    Writes ``out/logdir/output.1/<n>best_recog/{text,score}`` for n = 1..max N and the merged
    1-best. ``order="score"``: the ``n``-th directory holds each utterance's ``n``-th best
    hypothesis by ``stream``, as ESPnet orders its own n-best, so that ESPnet's scoring (which
    reads ``1best_recog`` and the merged ``text``) scores the best by that stream: for a rescored
    set, the rescored 1-best; ``order="rank"``: the hypothesis with key ``<utt>-<k>`` goes into
    directory ``k`` (keys survive a round trip). An empty hypothesis is the line ``"<utt> "``. The
    merged 1-best is ``out/text`` and ``out/score`` sorted by utterance
    id (``LC_ALL=C sort``, as asr.sh merges). ``score_style``: ``"tensor"`` writes
    ``tensor(-3.1416)`` (4 decimals, like ESPnet's CPU decoding, so values round-trip to 4
    decimals only; non-finite values as torch prints them, ``tensor(-inf)``/``tensor(nan)``);
    ``"float"`` writes Python's ``repr`` (exact; ``-inf``/``nan`` for non-finite values, as
    ESPnet's transducer output would). ``stream``: the stream written as ``score``. Other
    ``output.*`` directories under ``out/logdir`` are an error (they would be merged on
    reading); stale ``<n>best_recog`` directories above the new max N are removed.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from rescore.data.archive import decode, iter_lines, join_tokens, split_key, write_lines
from rescore.data.nbest import NbestBuilder, NbestSet, describe, missing_ranks
from rescore.exceptions import InputError, InvalidSetError
from rescore.log import get_logger

log = get_logger(__name__)

NAME = "espnet"
SCORE_DESCRIPTION = "ESPnet weighted total log-prob (4 decimals when written as tensor repr)"

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf|infinity)"
#: a plain float, or a 0-dim torch tensor repr with optional ``device=...``/``dtype=...``
_SCORE_RE = re.compile(
    rf"^(?:tensor\(\s*(?P<t>{_NUM})\s*(?:,[^()]*)?\)|(?P<f>{_NUM}))$", re.IGNORECASE
)
_JOB_RE = re.compile(r"^output\.(\d+)$")
_NBEST_RE = re.compile(r"^([1-9]\d*)best_recog$")
_ASCII_WS = " \t\n\r\x0b\x0c"


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def parse_score(value: str) -> tuple[float, bool]:
    """``(score, is_tensor_repr)`` of one score value; ``ValueError`` if it is neither form."""
    m = _SCORE_RE.match(value.strip(_ASCII_WS))
    if m is None:
        raise ValueError(value)
    num = m.group("t") if m.group("t") is not None else m.group("f")
    return float(num), m.group("t") is not None


def _numbered(parent: Path, pattern: re.Pattern) -> list[tuple[int, Path]]:
    """Sub-directories of ``parent`` whose name matches ``pattern``, sorted by the number."""
    out = []
    for p in parent.iterdir():
        m = pattern.match(p.name)
        if m and p.is_dir():
            out.append((int(m.group(1)), p))
    return sorted(out)


def find_jobs(src: Path) -> list[tuple[int, Path]]:
    """The ``output.J`` directories of a decode dir, a logdir or a single job dir."""
    src = Path(src)
    if not src.is_dir():
        raise InputError(src, None, "not a directory (expected an ESPnet decode dir, logdir or output.J)")
    for logdir in (src / "logdir", src):
        jobs = _numbered(logdir, _JOB_RE) if logdir.is_dir() else []
        if jobs:
            return jobs
    if _numbered(src, _NBEST_RE):
        m = _JOB_RE.match(src.name)
        return [(int(m.group(1)) if m else 1, src)]
    raise InputError(src, None, "no ESPnet output found: expected logdir/output.*/, output.*/ or <n>best_recog/")


def _read_text(path: Path) -> dict[str, tuple[str, int]]:
    """``{utt: (text, line)}`` of one ``text``/``token`` file; duplicate keys raise."""
    out: dict[str, tuple[str, int]] = {}
    for lineno, line in iter_lines(path):
        key, rest = split_key(line)
        utt = decode(key, path, lineno)
        if utt in out:
            raise InputError(path, lineno, f"duplicate key {utt} (also at line {out[utt][1]})")
        out[utt] = (decode(join_tokens(rest), path, lineno), lineno)
    return out


def _read_score(path: Path, forms: dict[str, int]) -> dict[str, tuple[float, int]]:
    """``{utt: (score, line)}`` of one ``score`` file; any unparsable value raises."""
    out: dict[str, tuple[float, int]] = {}
    for lineno, line in iter_lines(path):
        key, rest = split_key(line)
        utt = decode(key, path, lineno)
        value = decode(rest, path, lineno)
        try:
            score, tensor = parse_score(value)
        except ValueError:
            raise InputError(
                path, lineno, f"unparsable score {value!r} (expected -12.3, tensor(-12.3457) or "
                "tensor(-12.3457, device='cuda:0'))"
            ) from None
        if utt in out:
            raise InputError(path, lineno, f"duplicate key {utt} (also at line {out[utt][1]})")
        forms["tensor" if tensor else "float"] += 1
        out[utt] = (score, lineno)
    return out


def _field_path(ndir: Path, field: str) -> Path:
    path = ndir / field
    if path.is_file():
        return path
    hint = ""
    if field == "text" and (ndir / "token").is_file():
        hint = "; this model has no tokenizer, read the tokens with field='token' (--field token)"
    raise InputError(path, None, f"missing{hint}")


def _read_job(job: Path, field: str, forms: dict[str, int], problems: list[InputError]):
    """``(utt order, {utt: {n: (text, score, (path, line))}}, n_lines)`` of one job."""
    ndirs = _numbered(job, _NBEST_RE)
    if not ndirs:
        raise InputError(job, None, "no <n>best_recog directories (job failed or not run?)")
    hyps: dict[str, dict[int, tuple[str, float, tuple[str, int]]]] = {}
    order: list[str] = []
    n_lines = 0
    for n, ndir in ndirs:
        tpath = _field_path(ndir, field)
        spath = ndir / "score"
        if not spath.is_file():
            raise InputError(spath, None, "missing")
        texts = _read_text(tpath)
        scores = _read_score(spath, forms)
        n_lines += len(texts)
        for utt, (_, line) in scores.items():
            if utt not in texts:
                problems.append(InputError(spath, line, f"key {utt} is not in {tpath}"))
        for utt, (text, line) in texts.items():
            if utt not in scores:
                problems.append(InputError(tpath, line, f"key {utt} is not in {spath}"))
                continue
            if utt not in hyps:
                hyps[utt] = {}
                order.append(utt)
            hyps[utt][n] = (text, scores[utt][0], (str(tpath), line))
    _check_ranks(job, field, hyps, problems)
    return order, hyps, n_lines


def _check_ranks(job: Path, field: str, hyps: dict, problems: list[InputError]) -> None:
    """Every utterance must have ranks 1..N: a key in ``3best`` but not ``2best`` is an error."""
    for utt, by_n in hyps.items():
        ns = sorted(by_n)
        if ns == list(range(1, len(ns) + 1)):
            continue
        missing = missing_ranks(ns)
        above = min(n for n in ns if n > missing[0])
        path, line = by_n[above][2]
        problems.append(InputError(
            path, line, f"utterance {utt} has hypothesis {above} but none in "
            f"{job / f'{missing[0]}best_recog' / field} (missing ranks {missing[:10]})"
        ))


def read(src: Path, refs: dict[str, str] | None = None, field: str = "text") -> NbestSet:
    """Read an ESPnet2 n-best decode output into an :class:`NbestSet` (see the module doc)."""
    src = Path(src)
    if field not in ("text", "token"):
        raise ValueError(f"field must be 'text' or 'token', not {field!r}")
    jobs = find_jobs(src)
    problems: list[InputError] = []
    forms = {"tensor": 0, "float": 0}
    first_seen: dict[str, tuple[str, tuple[str, int]]] = {}
    builder = NbestBuilder(["score"], regroup=True)
    n_lines = 0
    for _, job in jobs:
        order, hyps, n = _read_job(job, field, forms, problems)
        n_lines += n
        for utt in order:
            by_n = hyps[utt]
            where = next(iter(by_n.values()))[2]
            if utt in first_seen:
                other_job, w0 = first_seen[utt]
                problems.append(InputError(
                    where[0], where[1], f"utterance {utt} also in job {other_job} ({w0[0]}:{w0[1]})"
                ))
                continue
            first_seen[utt] = (job.name, where)
            for k in sorted(by_n):
                text, score, w = by_n[k]
                builder.add(utt, k, text, {"score": score}, where=w)
    if problems:
        raise InvalidSetError(problems, what=str(src))
    meta = {
        "source": {
            "format": NAME,
            "path": str(src),
            "options": {"field": field},
            "jobs": len(jobs),
            "score_forms": dict(forms),
        },
        "streams": {"score": {"better": "higher", "description": SCORE_DESCRIPTION}},
    }
    nbs = builder.build(refs=refs, meta=meta)
    if nbs.num_hyps != n_lines:
        raise RuntimeError(f"read {n_lines} hypotheses but built {nbs.num_hyps}")
    log.info("read %s from %s (%d job(s), field %s, %d tensor / %d float scores)",
             describe(nbs), src, len(jobs), field, forms["tensor"], forms["float"])
    if refs is not None:
        log.info("%d references given", len(refs))
    return nbs


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def format_score(x: float, score_style: str = "tensor") -> str:
    """A score as ESPnet writes it: ``tensor(-3.1416)`` (4 decimals) or a plain Python repr."""
    x = float(x)
    if score_style == "float":
        return repr(x)
    if score_style != "tensor":
        raise ValueError(f"score_style must be 'tensor' or 'float', not {score_style!r}")
    if math.isnan(x):
        return "tensor(nan)"
    if math.isinf(x):
        return "tensor(inf)" if x > 0 else "tensor(-inf)"
    return f"tensor({x:.4f})"


def _hyp_line(utt: str, text: str) -> str:
    return f"{utt} {text}"  # an empty hypothesis keeps the space, as DatadirWriter writes it


def _prepare_logdir(logdir: Path, max_n: int) -> None:
    """Refuse foreign jobs in ``out/logdir``; remove stale ``<n>best_recog`` dirs above ``max_n``."""
    if not logdir.is_dir():
        return
    other = [p for j, p in _numbered(logdir, _JOB_RE) if j != 1]
    if other:
        raise ValueError(f"{other[0]} exists (an older export?); it would be merged on reading: "
                         "remove it or write to an empty directory")
    job = logdir / "output.1"
    if not job.is_dir():
        return
    for n, ndir in _numbered(job, _NBEST_RE):
        if n > max_n:
            for name in ("text", "score"):
                (ndir / name).unlink(missing_ok=True)
            try:
                ndir.rmdir()
            except OSError:
                raise ValueError(f"{ndir} is stale (N is now {max_n}) and holds other files: remove it") from None
            log.warning("removed stale %s", ndir)


ORDERS = ("score", "rank")


def write(nbs: NbestSet, out: Path, score_style: str = "tensor", stream: str = "score",
          order: str = "score") -> list[Path]:
    """Write ``nbs`` as an ESPnet2 decode dir under ``out`` (see the module doc)."""
    out = Path(out)
    format_score(0.0, score_style)  # validate the option before writing anything
    if stream not in nbs.streams:
        raise ValueError(f"the set has no stream {stream!r} (has: {', '.join(nbs.streams) or 'none'})")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
    values = nbs.streams[stream].tolist()
    if order == "rank":
        ranks = nbs.ranks.tolist()
    else:  # n = place by the written stream, best first (ties and NaN as order_within puts them)
        ranks = [0] * nbs.num_hyps
        idx = nbs.order_within(nbs.streams[stream]).tolist()
        offsets0 = nbs.offsets.tolist()
        for u in range(nbs.num_utts):
            for n, i in enumerate(idx[offsets0[u]:offsets0[u + 1]], 1):
                ranks[i] = n
    offsets = nbs.offsets.tolist()
    max_n = max(ranks) if ranks else 0
    by_n: list[list[tuple[str, str]]] = [[] for _ in range(max_n + 1)]  # n -> [(text line, score line)]
    ones: list[tuple[str, str, str]] = []
    for u, utt in enumerate(nbs.utt_ids):
        for i in range(offsets[u], offsets[u + 1]):
            text_line = _hyp_line(utt, nbs.texts[i])
            score_line = f"{utt} {format_score(values[i], score_style)}"
            by_n[ranks[i]].append((text_line, score_line))
            if ranks[i] == 1:
                ones.append((utt, text_line, score_line))
    logdir = out / "logdir"
    _prepare_logdir(logdir, max_n)
    written: list[Path] = []
    for n in range(1, max_n + 1):
        ndir = logdir / "output.1" / f"{n}best_recog"
        write_lines(ndir / "text", (t for t, _ in by_n[n]))
        write_lines(ndir / "score", (s for _, s in by_n[n]))
        written += [ndir / "text", ndir / "score"]
    ones.sort(key=lambda x: x[0].encode("utf-8"))
    write_lines(out / "text", (t for _, t, _ in ones))
    write_lines(out / "score", (s for _, _, s in ones))
    written += [out / "text", out / "score"]
    n_written = sum(len(x) for x in by_n)
    if n_written != nbs.num_hyps or len(ones) != nbs.num_utts:
        raise RuntimeError(f"wrote {n_written} hypotheses of {nbs.num_hyps}")
    log.info("wrote %s to %s (%s scores from stream %s)", describe(nbs), out, score_style, stream)
    return written
