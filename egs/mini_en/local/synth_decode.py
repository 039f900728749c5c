#!/usr/bin/env python3
"""Speak sentences with flite, perturb them with sox, recognise them with pocketsphinx: n-best sets.

    python egs/mini_en/local/synth_decode.py [--name dev] [--seed 7] [--nj 2] [--nbest 20]
        [--lat_dir DIR] [--lat_prune 0.01] [--snr_min 25] [--snr_max 45] SENTENCES OUT_SETDIR

``SENTENCES`` holds one sentence per line (from ``generate_text.py``); sentence ``i`` (1-based)
becomes utterance ``<voice>_<name>_<iiii>``. Each utterance draws, from a generator seeded by
``(seed, name, i)`` alone (so the result does not depend on ``--nj`` or the order of work):
a flite voice (``slt rms awb kal16``), a sox tempo factor in [0.9, 1.15], a noise colour (pink or
white) and an SNR in [``--snr_min``, ``--snr_max``] dB. The pipeline is

1. ``flite -voice V -t TEXT -o speech.wav``;
2. ``sox -R speech.wav -t raw -r 16000 -c 1 -b 16 -e signed-integer - tempo T pad 0.3 0.3``;
3. ``sox -R -n ... synth Ns pinknoise|whitenoise`` (``-R``: repeatable), a random stretch of it
   scaled to the SNR (measured against the whole padded utterance) and added;
4. pocketsphinx's bundled en-us model, ``Decoder(samprate=16000, logfn="/dev/null")``,
   ``reinit_feat()`` (otherwise the cepstral mean carries over from the previous utterance of
   the process, and results depend on which process decoded what before), then
   ``process_raw(..., full_utt=True)``; ``decoder.nbest()`` gives hypotheses best-first; fillers
   (``<s> </s> <sil> [NOISE] [SPEECH]``, ``++x++``) are dropped, the first ``--nbest`` distinct
   word strings are kept, each with the best score of its copies, and they are ranked by that
   score (pocketsphinx's A* order is not monotonic in its own scores: about 15% of the lists had
   a better-scored hypothesis below the first). The score is the path score in natural log at
   the language-model weight 1, ``ln_path / bestpathlw``, the convention of Kaldi n-best scores
   (``-(graph_cost + acwt * ac_cost)``: the LM at weight 1, the acoustics scaled down):
   ``ln_path = logmath.log_to_ln(logmath.log(h.score)) * 2 ** SENSCR_SHIFT``. pocketsphinx keeps
   path scores right-shifted by ``SENSCR_SHIFT = 10`` bits (its own lattice writer shifts them
   back), and the n-best A* search weights the LM by ``bestpathlw`` (9.5 for en-us). Without the
   shift the scores were 1024 times too small, and MWER/MWED, whose softmax reads the first-pass
   scores as they are, saw nearly uniform posteriors. An utterance without any hypothesis gets
   one empty hypothesis scored 0.0 (logged).
5. with ``--lat_dir``, ``decoder.get_lattice().write_htk()``, pruned to the links with posterior
   ``p >= --lat_prune`` on a complete path (:func:`prune_slf`; pocketsphinx keeps every explored
   link, tens of kB per utterance), gzipped (mtime 0) as ``DIR/<utt>.lat.gz``.

``OUT_SETDIR`` is a canonical dataset directory (``rescore.data.nbest.save_set``: keys ``<utt>-<k>``
best-first, ``score`` stream, references in ``OUT_SETDIR/text``) plus ``utt2spk`` (the voice is
the speaker) and ``synth_params`` (``<utt> voice tempo noise snr_db seconds``). The same inputs
and the same tool versions give the same files.
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from rescore.data.archive import write_lines  # noqa: E402
from rescore.data.nbest import NbestBuilder, describe, save_set  # noqa: E402

VOICES = ("slt", "rms", "awb", "kal16")
NOISES = ("pinknoise", "whitenoise")
SNR = (25.0, 45.0)
RATE = 16000
RAW = ["-t", "raw", "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer"]
FILLER = re.compile(r"^(<.*>|\[.*\]|\+\+.*\+\+)$")


@dataclass(frozen=True)
class Job:
    """One utterance to synthesise and decode, with its perturbation."""

    utt: str
    text: str
    voice: str
    tempo: float
    noise: str
    snr_db: float
    noise_offset: int


@dataclass
class Result:
    """What decoding one utterance gave."""

    utt: str
    hyps: list[tuple[str, float]]
    seconds: float
    decode_seconds: float
    lattice: bytes | None


def make_jobs(sentences: list[str], name: str, seed: int, snr: tuple[float, float]) -> list[Job]:
    """The perturbation of every sentence, each drawn from its own seeded generator."""
    jobs = []
    for i, text in enumerate(sentences, 1):
        r = random.Random(f"{seed}:{name}:{i}")
        voice = r.choice(VOICES)
        jobs.append(Job(utt=f"{voice}_{name}_{i:04d}", text=text, voice=voice,
                        tempo=round(r.uniform(0.9, 1.15), 3), noise=r.choice(NOISES),
                        snr_db=round(r.uniform(*snr), 1), noise_offset=r.randrange(RATE * 5)))
    return jobs


def run(cmd: list[str]) -> bytes:
    """Run a tool; its stdout, or an error naming the command and its stderr."""
    p = subprocess.run(cmd, capture_output=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.decode(errors='replace')}")
    return p.stdout


def synthesise(job: Job, tmp: Path) -> np.ndarray:
    """16 kHz int16 samples of the perturbed utterance."""
    wav = tmp / "speech.wav"
    run(["flite", "-voice", job.voice, "-t", job.text, "-o", str(wav)])
    speech = np.frombuffer(run(["sox", "-R", str(wav), *RAW, "-", "tempo", str(job.tempo), "pad", "0.3", "0.3"]),
                           dtype="<i2").astype(np.float64)
    n = len(speech)
    noise = np.frombuffer(run(["sox", "-R", "-r", str(RATE), "-c", "1", "-n", *RAW, "-", "synth", f"{n + job.noise_offset}s", job.noise]),
                          dtype="<i2").astype(np.float64)[job.noise_offset:job.noise_offset + n]
    p_speech, p_noise = np.mean(speech ** 2), np.mean(noise ** 2)
    if p_noise > 0:
        speech = speech + noise * np.sqrt(p_speech / (p_noise * 10 ** (job.snr_db / 10)))
    return np.clip(np.rint(speech), -32768, 32767).astype("<i2")


_decoder = None
_tmp: Path | None = None
_nbest = 20
_lat_prune: float | None = None  # None: no lattices
_lm_weight = 1.0  # the decoder's bestpathlw: the LM weight of its n-best scores
SENSCR_SHIFT = 10  # pocketsphinx's right shift of acoustic and path scores (hmm.h)


def _init(nbest: int, lat_prune: float | None) -> None:
    """Worker start: one decoder and one scratch directory per process."""
    global _decoder, _tmp, _nbest, _lat_prune, _lm_weight
    from pocketsphinx import Decoder

    _decoder = Decoder(samprate=RATE, logfn="/dev/null")
    _lm_weight = float(_decoder.config["bestpathlw"])
    _tmp = Path(tempfile.mkdtemp(prefix="synth_decode."))
    _nbest, _lat_prune = nbest, lat_prune


def _fields(line: str) -> dict[str, str]:
    return dict(f.split("=", 1) for f in line.split())


def _escape(field: str) -> str:
    """HTK-escape a word value: pocketsphinx writes ``W='em`` bare, which HTK reads as a quote."""
    name, _, value = field.partition("=")
    if name != "W" or not value:
        return field
    value = value.replace("\\", "\\\\")
    return f"{name}=\\{value}" if value[0] in "'\"" else f"{name}={value}"


def _reach(origin: int, links: list[tuple], a: int, b: int) -> set[int]:
    """Nodes reachable from ``origin`` following links from field ``a`` to field ``b``."""
    nxt: dict[int, list[int]] = {}
    for lk in links:
        nxt.setdefault(lk[a], []).append(lk[b])
    seen, todo = {origin}, [origin]
    while todo:
        for m in nxt.get(todo.pop(), ()):
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return seen


def prune_slf(text: str, min_posterior: float) -> str:
    """Keep the links of a pocketsphinx SLF lattice whose posterior ``p=`` is at least
    ``min_posterior`` and that lie on a start-to-end path; renumber nodes and links.

    Pocketsphinx writes every link it explored (most with posteriors below 1e-4); pruning keeps
    the committed lattices small. A word starting with a quote (``'em``, written bare by
    pocketsphinx) is escaped as HTK requires (``\\'em``). The threshold is divided by 10 until the end node stays
    reachable (``min_posterior <= 0`` keeps everything on a complete path).
    """
    lines = text.splitlines()
    head = [ln for ln in lines if not ln.startswith(("I=", "J="))]
    nodes = {int(f["I"]): ln for ln in lines if ln.startswith("I=") for f in [_fields(ln)]}
    links = [(int(f["S"]), int(f["E"]), float(f.get("p", "1")), ln)
             for ln in lines if ln.startswith("J=") for f in [_fields(ln)]]
    info = _fields(" ".join(ln for ln in head if ln.startswith(("start=", "end="))))
    start, end = int(info["start"]), int(info["end"])
    while True:
        kept = [lk for lk in links if lk[2] >= min_posterior]
        fwd, bwd = _reach(start, kept, 0, 1), _reach(end, kept, 1, 0)
        live = fwd & bwd
        if end in fwd or min_posterior <= 0:
            break
        min_posterior = min_posterior / 10 if min_posterior > 1e-12 else 0.0
    kept = [lk for lk in kept if lk[0] in live and lk[1] in live]
    new_id = {old: i for i, old in enumerate(sorted(live))}
    node_lines = ["\t".join([f"I={new_id[old]}"] + [_escape(f) for f in nodes[old].split()[1:]])
                  for old in sorted(live)]
    link_lines = ["\t".join([f"J={j}", f"S={new_id[s]}", f"E={new_id[e]}"]
                            + [_escape(f) for f in ln.split() if not f.startswith(("J=", "S=", "E="))])
                  for j, (s, e, _, ln) in enumerate(kept)]
    out: list[str] = []
    section = None
    for ln in head:  # the header and comments as written, each block after its "# ... definitions" + "#"
        if ln.startswith("start="):
            ln = f"start={new_id[start]}"
        elif ln.startswith("end="):
            ln = f"end={new_id[end]}"
        elif ln.startswith("N="):
            ln = f"N={len(live)}\tL={len(kept)}"
        out.append(ln)
        if ln == "#" and section is not None:
            out += section
            section = None
        elif ln.startswith("# Node definitions"):
            section = node_lines
        elif ln.startswith("# Link definitions"):
            section = link_lines
    return "\n".join(out) + "\n"


def decode_job(job: Job) -> Result:
    """Synthesise and decode one utterance (runs in a worker)."""
    samples = synthesise(job, _tmp)
    d = _decoder
    t0 = time.perf_counter()
    d.reinit_feat()  # the feature state (CMN) carries over between utterances: reset for repeatability
    d.start_utt()
    d.process_raw(samples.tobytes(), full_utt=True)
    d.end_utt()
    logmath = d.get_logmath()
    best: dict[str, float] = {}  # distinct word strings in order of appearance -> best score
    if d.hyp() is not None:
        for k, h in enumerate(d.nbest()):
            text = " ".join(w for w in h.hypstr.split() if not FILLER.match(w))
            if text not in best and (len(best) >= _nbest or k >= 50 * _nbest):
                break
            # log_to_ln is linear (and takes a 32-bit int): shift after converting
            score = logmath.log_to_ln(logmath.log(h.score)) * (1 << SENSCR_SHIFT) / _lm_weight if h.score > 0 \
                else float("-inf")
            best[text] = max(score, best.get(text, float("-inf")))
    hyps = sorted(best.items(), key=lambda ts: -ts[1])  # stable: ties keep the search order
    lattice = None
    if _lat_prune is not None and d.hyp() is not None:
        path = _tmp / "lat.slf"
        d.get_lattice().write_htk(str(path))
        slf = prune_slf(path.read_text(encoding="utf-8"), _lat_prune)
        lattice = gzip.compress(slf.encode("utf-8"), compresslevel=9, mtime=0)
    return Result(job.utt, hyps, len(samples) / RATE, time.perf_counter() - t0, lattice)


def decode_all(jobs: list[Job], nj: int, nbest: int, lat_prune: float | None) -> list[Result]:
    """Decode every job over ``nj`` processes, in job order (``lat_prune``: None, no lattices)."""
    if nj <= 1:
        _init(nbest, lat_prune)
        return [decode_job(j) for j in jobs]
    with multiprocessing.get_context("fork").Pool(nj, initializer=_init, initargs=(nbest, lat_prune)) as pool:
        return list(pool.imap(decode_job, jobs, chunksize=4))


def build_set(jobs: list[Job], results: list[Result], name: str, nbest: int, seed: int):
    """The canonical n-best set (utterances in C order) with references and metadata."""
    b = NbestBuilder(["score"])
    by_utt = {r.utt: r for r in results}
    empty = 0
    for utt in sorted(by_utt, key=lambda u: u.encode("utf-8")):
        hyps = by_utt[utt].hyps
        if not hyps:
            hyps, empty = [("", 0.0)], empty + 1
        for k, (text, score) in enumerate(hyps, 1):
            b.add(utt, k, text, {"score": score})
    if empty:
        print(f"synth_decode: {name}: {empty} utterance(s) without a hypothesis got one empty hypothesis (score 0.0)")
    refs = {j.utt: j.text for j in sorted(jobs, key=lambda j: j.utt.encode("utf-8"))}
    meta = {
        "source": {"format": "pocketsphinx", "path": f"egs/mini_en/local/synth_decode.py ({name})",
                   "options": {"nbest": nbest, "seed": seed, "order": "score", "voices": list(VOICES), "noises": list(NOISES)}},
        "streams": {"score": {"better": "higher", "description": "pocketsphinx n-best path score, natural log, "
                              "divided by its LM weight bestpathlw (the LM at weight 1)"}},
        "language": "en",
    }
    return b.build(refs=refs, meta=meta)


def tool_versions() -> dict[str, str]:
    """Versions of the tools that shape the data (recorded in the set's metadata)."""
    from importlib.metadata import version

    out = {"pocketsphinx": version("pocketsphinx")}
    for tool, args in (("flite", ["--version"]), ("sox", ["--version"])):
        text = subprocess.run([tool, *args], capture_output=True, text=True).stdout
        m = re.search(r"(flite-[^\s]+|v\d[\d.]*)", text)
        out[tool] = m.group(1) if m else text.strip()[:40]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", help="set name used in utterance ids (default: OUT_SETDIR's name)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--nj", type=int, default=2, help="parallel processes (default 2)")
    p.add_argument("--nbest", type=int, default=20, help="distinct hypotheses kept per utterance (default 20)")
    p.add_argument("--snr_min", type=float, default=SNR[0], help=f"lowest SNR in dB (default {SNR[0]})")
    p.add_argument("--snr_max", type=float, default=SNR[1], help=f"highest SNR in dB (default {SNR[1]})")
    p.add_argument("--lat_dir", type=Path, help="write each utterance's SLF lattice as DIR/<utt>.lat.gz")
    p.add_argument("--lat_prune", type=float, default=0.01,
                   help="keep lattice links with posterior >= this (default 0.01; 0 keeps all)")
    p.add_argument("--limit", type=int, help="only the first N sentences (quick checks)")
    p.add_argument("sentences", type=Path)
    p.add_argument("out", type=Path)
    args = p.parse_args(argv)
    name = args.name or args.out.name
    sentences = [s.strip() for s in args.sentences.read_text(encoding="utf-8").splitlines() if s.strip()]
    if args.limit:
        sentences = sentences[:args.limit]
    jobs = make_jobs(sentences, name, args.seed, (args.snr_min, args.snr_max))
    t0 = time.perf_counter()
    results = decode_all(jobs, args.nj, args.nbest, args.lat_prune if args.lat_dir is not None else None)
    wall = time.perf_counter() - t0
    nbs = build_set(jobs, results, name, args.nbest, args.seed)
    nbs.meta["source"]["tools"] = tool_versions()
    save_set(nbs, args.out)
    write_lines(args.out / "utt2spk", (f"{j.utt} {j.voice}" for j in sorted(jobs, key=lambda j: j.utt.encode())))
    secs = {r.utt: r.seconds for r in results}
    write_lines(args.out / "synth_params", (f"{j.utt} {j.voice} {j.tempo} {j.noise} {j.snr_db} {secs[j.utt]:.2f}"
                                            for j in sorted(jobs, key=lambda j: j.utt.encode())))
    if args.lat_dir is not None:
        args.lat_dir.mkdir(parents=True, exist_ok=True)
        for old in args.lat_dir.glob("*.lat.gz"):
            old.unlink()
        for r in results:
            if r.lattice is not None:
                (args.lat_dir / f"{r.utt}.lat.gz").write_bytes(r.lattice)
    audio = sum(r.seconds for r in results)
    dec = sum(r.decode_seconds for r in results)
    print(f"synth_decode: {name}: {describe(nbs)}; {audio:.0f} s of audio, decoding {dec:.0f} s "
          f"({dec / max(audio, 1e-9):.2f} x real time per process), {wall:.0f} s wall with {args.nj} process(es)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
