"""sclite ``trn`` export of a set's 1-best and references (export only), docs/formats.md §4.3.

One record per line, ``w1 w2 ...<TAB>(<id>)``: the words, a TAB (ESPnet2 pastes with paste's
default separator) and the id in parentheses, ``(spk-utt)`` when a speaker is known (sclite's
``-i rm`` takes the part before the first ``-`` as the speaker), else ``(utt)``.

``write(nbs, out, utt2spk=None, stream="score", norm=None)``
    ``out``: a directory; writes ``out/hyp.trn`` (each utterance's best hypothesis under
    ``stream``, by the stream's convention from ``nbs.meta['streams']`` or the reserved names:
    higher is better for ``score``; ties go to the smaller rank, non-finite values rank last)
    and ``out/ref.trn`` when the set has references. References without hypotheses appear in
    ``ref.trn`` only (sclite scores the ids present in ``hyp.trn``, so they count for nothing
    there). Both files are sorted by utterance id. ``utt2spk``: path of a Kaldi ``utt2spk``
    file (``utt spk`` lines); every written utterance must be in it. ``norm``: a
    :class:`rescore.data.textnorm.Normalizer` applied to both sides, or ``None`` to write the texts
    as stored.
"""

from __future__ import annotations

from pathlib import Path

from rescore.data.archive import read_text_archive, write_lines
from rescore.data.nbest import NbestSet, stream_convention
from rescore.data.textnorm import Normalizer
from rescore.exceptions import InputError
from rescore.log import get_logger

log = get_logger(__name__)

NAME = "trn"


def read_utt2spk(path: Path) -> dict[str, str]:
    """``{utt: spk}`` from a Kaldi ``utt2spk`` file; one speaker per line, no duplicate utts."""
    out: dict[str, str] = {}
    lines: dict[str, int] = {}
    for lineno, utt, rest in read_text_archive(path):
        if len(rest) != 1:
            raise InputError(path, lineno, f"expected 'utt spk', got {len(rest)} fields after the key")
        if utt in out:
            raise InputError(path, lineno, f"duplicate utterance {utt} (also at line {lines[utt]})")
        out[utt] = rest[0]
        lines[utt] = lineno
    return out


def _higher_is_better(nbs: NbestSet, stream: str) -> bool:
    info = (nbs.meta.get("streams") or {}).get(stream) or {}
    return info.get("better", stream_convention(stream)) == "higher"


def trn_line(text: str, utt: str, utt2spk: dict[str, str] | None) -> str:
    """``"w1 w2<TAB>(spk-utt)"`` (or ``(utt)`` without speakers)."""
    ident = f"{utt2spk[utt]}-{utt}" if utt2spk is not None else utt
    return f"{text}\t({ident})"


def write(nbs: NbestSet, out: Path, utt2spk: Path | None = None, stream: str = "score",
          norm: Normalizer | None = None) -> list[Path]:
    """Write ``out/hyp.trn`` (1-best by ``stream``) and ``out/ref.trn`` (see the module doc)."""
    out = Path(out)
    if stream not in nbs.streams:
        raise ValueError(f"the set has no stream {stream!r} (has: {', '.join(nbs.streams) or 'none'})")
    spk = read_utt2spk(Path(utt2spk)) if utt2spk is not None else None
    best = nbs.best(nbs.streams[stream], higher_is_better=_higher_is_better(nbs, stream))
    hyps = {utt: nbs.texts[int(i)] for utt, i in zip(nbs.utt_ids, best.tolist(), strict=True)}
    refs = nbs.refs
    if spk is not None:
        needed = list(hyps) + [u for u in (refs or {}) if u not in hyps]
        missing = [u for u in needed if u not in spk]
        if missing:
            raise InputError(utt2spk, None, f"{len(missing)} utterance(s) missing: {', '.join(missing[:20])}")
        dashed = sorted({spk[u] for u in needed if "-" in spk[u]})
        if dashed:
            log.warning("%d speaker id(s) contain '-' (e.g. %s): sclite -i rm will split the speaker there",
                        len(dashed), dashed[0])

    def fmt(text: str) -> str:
        return norm.text(text) if norm is not None else text

    written = []
    hyp_path = out / "hyp.trn"
    write_lines(hyp_path, (trn_line(fmt(hyps[u]), u, spk) for u in sorted(hyps)))
    written.append(hyp_path)
    if refs is not None:
        ref_path = out / "ref.trn"
        write_lines(ref_path, (trn_line(fmt(refs[u]), u, spk) for u in sorted(refs)))
        written.append(ref_path)
        no_ref = sum(1 for u in hyps if u not in refs)
        if no_ref:
            log.warning("%d utterance(s) in hyp.trn have no reference in ref.trn", no_ref)
        log.info("wrote %d hypotheses and %d references to %s (1-best by %s, norm %s)",
                 len(hyps), len(refs), out, stream, norm)
    else:
        log.info("wrote %d hypotheses to %s (no references; 1-best by %s, norm %s)", len(hyps), out, stream, norm)
    return written
