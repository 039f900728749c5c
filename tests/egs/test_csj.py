"""egs/csj: the Japanese recipe, end to end on a small hand-made CSJ n-best fixture with tiny models.

CSJ itself is licensed and never used here. The fixture is written by the tests: 18 utterances with
CSJ-style ids (``<lecture>_<start ms>_<end ms>``) in train_nodup / train_dev / eval1, 6 hypotheses
each, made by hand with the errors a Japanese recogniser makes: homophones (機会/機械, 講演/公演,
意志/意思/医師, 精度/制度, 以上/異常, ...) and particles (は/が, を/に, で/に), plus filler deletions,
``<sp>`` and ``<unk>``. It is written as Kaldi CSJ n-best archives (``surface+POS`` morpheme tokens,
``archives.J/{words_text,lmwt.withlm,lmwt.nolm,acwt}``, docs/formats.md §1.4 and §6.1) and as ESPnet CSJ
decodes (characters without spaces, ``tensor(...)`` scores, docs/formats.md §4.1 and §6.3).

The teacher is a random 2-layer, 32-wide BertForMaskedLM over a character WordPiece vocabulary of the
fixture text (cased: a lower-casing BERT tokenizer strips dakuten, が -> か, ば -> は); the student is
its first layer (``--student_layers 1``); every training step runs the recipe's ``conf/debug``
configs. The numbers mean nothing; what is checked is that every stage runs on Japanese input,
counts in = counts out, every error rate is a CER, and the models read normalised Japanese text.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rescore.data.nbest import load_set

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs" / "csj"
SETS = ("train_nodup", "train_dev", "eval1")
#: Systems of the end-to-end run: all five take ~110 s on 2 cores (each step starts Python + torch), these
#: ~70 s. MD is still trained (the start of MWER); MWED shares MWER's code path (CER errors per hypothesis).
SYSTEMS = ("clm", "pll", "mwer")

#: POS of every surface morpheme, in Kaldi CSJ's "surface+POS[/sub-fields]" form (docs/formats.md §6.1).
POS = {
    "えー": "感動詞", "あの": "感動詞", "まあ": "副詞",
    "は": "助詞/係助詞", "も": "助詞/係助詞", "が": "助詞/格助詞", "を": "助詞/格助詞", "に": "助詞/格助詞",
    "で": "助詞/格助詞", "の": "助詞/格助詞", "と": "助詞/格助詞", "て": "助詞/接続助詞",
    "ます": "助動詞", "まし": "助動詞/連用形", "た": "助動詞", "です": "助動詞", "ない": "形容詞",
    "たい": "助動詞", "ませ": "助動詞/未然形", "ん": "助動詞",
    "本日": "名詞", "音声": "名詞", "認識": "名詞", "講演": "名詞", "公演": "名詞", "致し": "動詞/サ行五段/連用形",
    "この": "連体詞", "機会": "名詞", "機械": "名詞", "皆様": "名詞", "お": "接頭辞", "話し": "名詞", "し": "動詞/サ行変格/連用形",
    "思い": "動詞/ワ行五段/連用形", "実験": "名詞", "結果": "名詞", "以下": "名詞", "医科": "名詞",
    "示し": "動詞/サ行五段/連用形", "本人": "名詞", "意志": "名詞", "意思": "名詞", "医師": "名詞", "尊重": "名詞",
    "する": "動詞/サ行変格/終止形", "必要": "名詞", "あり": "動詞/ラ行五段/連用形", "学習": "名詞", "データ": "名詞",
    "量": "名詞", "料": "名詞", "足り": "動詞/ラ行上一段/未然形", "音響": "名詞", "モデル": "名詞", "精度": "名詞",
    "制度": "名詞", "向上": "名詞", "工場": "名詞", "先行": "名詞", "潜行": "名詞", "研究": "名詞", "比較": "名詞",
    "性能": "名詞", "高い": "形容詞/終止形", "次": "名詞", "評価": "名詞", "つい": "動詞/カ行五段/連用形/イ音便",
    "述べ": "動詞/バ行下一段/連用形", "延べ": "名詞", "話し言葉": "名詞", "特徴": "名詞", "特長": "名詞",
    "調べ": "動詞/バ行下一段/連用形", "講義": "名詞", "抗議": "名詞", "内容": "名詞", "後": "名詞", "跡": "名詞",
    "配布": "名詞", "誤り": "名詞", "多く": "名詞", "同音": "名詞", "異義": "名詞", "語": "接尾辞",
    "今後": "名詞", "課題": "名詞", "過大": "名詞", "検討": "名詞", "見当": "名詞", "対象": "名詞", "対照": "名詞",
    "なる": "動詞/ラ行五段/連体形", "話者": "名詞", "十": "数詞", "名": "接尾辞", "関心": "名詞", "感心": "名詞",
    "ある": "動詞/ラ行五段/連体形", "方": "名詞", "型": "名詞", "ご": "接頭辞", "連絡": "名詞", "ください": "動詞/命令形",
    "以上": "名詞", "異常": "名詞", "発表": "名詞", "終わり": "動詞/ラ行五段/連用形", "保証": "名詞", "保障": "名詞",
    "補償": "名詞", "でき": "動詞/カ行上一段/未然形", "正確": "形状詞", "性格": "名詞", "書き起こす": "動詞/サ行五段/連体形",
    "難しい": "形容詞/終止形", "辞書": "名詞", "未知": "名詞", "道": "名詞", "扱い": "動詞/ワ行五段/連用形",
}

#: (set, utterance id, reference, hypotheses best-first by the first pass). Surface morphemes separated
#: by spaces; "<sp>" (a short pause inside a merged segment) and "<unk>" as Kaldi CSJ writes them.
UTTS = [
    ("train_nodup", "A01F0055_0012345_0015678", "えー 本日 は 音声 認識 の 講演 を 致し ます", [
        "えー 本日 は 音声 認識 の 公演 を 致し ます",
        "えー 本日 は 音声 認識 の 講演 を 致し ます",
        "本日 は 音声 認識 の 講演 を 致し ます",
        "えー 本日 が 音声 認識 の 公演 を 致し ます",
        "えー 本日 は 音声 認識 の 講演 に 致し ます",
        "えー 本日 は <sp> 音声 認識 の 公演 に 致し ます"]),
    ("train_nodup", "A01F0055_0016012_0019930", "この 機会 に 皆様 に お 話し し たい と 思い ます", [
        "この 機械 に 皆様 に お 話し し たい と 思い ます",
        "この 機会 に 皆様 に お 話し し たい と 思い ます",
        "この 機械 を 皆様 に お 話し し たい と 思い ます",
        "この 機会 を 皆様 に お 話し し たい と 思い ます",
        "この 機械 に 皆様 に 話し し たい と 思い ます",
        "あの 機械 に 皆様 に お 話し し たい と 思い ます"]),
    ("train_nodup", "A01M0097_0102345_0105511", "実験 の 結果 を 以下 に 示し ます", [
        "実験 の 結果 を 以下 に 示し ます",
        "実験 の 結果 を 医科 に 示し ます",
        "実験 の 結果 が 以下 に 示し ます",
        "実験 の 結果 を 以下 で 示し ます",
        "実験 の 結果 <sp> 以下 に 示し ます",
        "実験 の 結果 を 医科 で 示し ます"]),
    ("train_nodup", "A01M0097_0110020_0114480", "本人 の 意志 を 尊重 する 必要 が あり ます", [
        "本人 の 意思 を 尊重 する 必要 が あり ます",
        "本人 の 医師 を 尊重 する 必要 が あり ます",
        "本人 の 意志 を 尊重 する 必要 が あり ます",
        "本人 の 意思 に 尊重 する 必要 が あり ます",
        "本人 の 意思 を 尊重 する 必要 は あり ます",
        "本人 の 意志 を 尊重 する 必要 は あり ます"]),
    ("train_nodup", "A02M0012_0020500_0023390", "学習 データ の 量 が 足り ない", [
        "学習 データ の 料 が 足り ない",
        "学習 データ の 量 が 足り ない",
        "学習 データ の 量 は 足り ない",
        "学習 データ の 料 は 足り ない",
        "学習 データ <unk> 量 が 足り ない",
        "学習 データ の 量 が <sp> 足り ない"]),
    ("train_nodup", "A02M0012_0031010_0035220", "音響 モデル の 精度 が 向上 し まし た", [
        "音響 モデル の 制度 が 向上 し まし た",
        "音響 モデル の 精度 が 工場 し まし た",
        "音響 モデル の 精度 が 向上 し まし た",
        "音響 モデル の 制度 が 工場 し まし た",
        "音響 モデル の 精度 は 向上 し まし た",
        "音響 モデル の 精度 が 向上 まし た"]),
    ("train_nodup", "S00F0019_0004100_0007950", "先行 研究 と 比較 する と 性能 が 高い", [
        "潜行 研究 と 比較 する と 性能 が 高い",
        "先行 研究 と 比較 する と 性能 が 高い",
        "先行 研究 と 比較 する と 性能 は 高い",
        "潜行 研究 と 比較 する と 性能 は 高い",
        "先行 研究 に 比較 する と 性能 が 高い",
        "先行 研究 と 比較 する と <sp> 性能 が 高い"]),
    ("train_nodup", "S00F0019_0010230_0013870", "えー 次 に 評価 実験 に つい て 述べ ます", [
        "えー 次 に 評価 実験 に つい て 延べ ます",
        "えー 次 に 評価 実験 に つい て 述べ ます",
        "次 に 評価 実験 に つい て 述べ ます",
        "えー 次 は 評価 実験 に つい て 述べ ます",
        "えー 次 に 評価 実験 を つい て 延べ ます",
        "えー 次 に 評価 実験 に つい て 述べ ます <sp>"]),
    ("train_nodup", "S01M0182_0050000_0053120", "話し言葉 の 特徴 を 調べ まし た", [
        "話し言葉 の 特長 を 調べ まし た",
        "話し言葉 の 特徴 を 調べ まし た",
        "話し言葉 の 特徴 が 調べ まし た",
        "話し言葉 の 特長 が 調べ まし た",
        "話し言葉 の 特徴 に 調べ まし た",
        "話し言葉 の 特徴 を 調べ た"]),
    ("train_nodup", "S01M0182_0060340_0064410", "講義 の 内容 は 後 で 配布 し ます", [
        "抗議 の 内容 は 後 で 配布 し ます",
        "講義 の 内容 は 後 で 配布 し ます",
        "講義 の 内容 が 後 で 配布 し ます",
        "講義 の 内容 は 跡 で 配布 し ます",
        "抗議 の 内容 は 後 に 配布 し ます",
        "講義 の 内容 は 後 で 配布 ます"]),
    ("train_dev", "A01M0141_0003300_0006010", "認識 誤り の 多く は 同音 異義 語 です", [
        "認識 誤り の 多く が 同音 異義 語 です",
        "認識 誤り の 多く は 同音 異義 語 です",
        "認識 誤り の 多く は 同音 異義 です",
        "認識 誤り の 多く が 同音 異義 です",
        "認識 誤り も 多く は 同音 異義 語 です",
        "認識 誤り の <sp> 多く は 同音 異義 語 です"]),
    ("train_dev", "A01M0141_0007020_0011540", "今後 の 課題 と し て 検討 し たい と 思い ます", [
        "今後 の 過大 と し て 検討 し たい と 思い ます",
        "今後 の 課題 と し て 見当 し たい と 思い ます",
        "今後 の 課題 と し て 検討 し たい と 思い ます",
        "今後 の 過大 と し て 見当 し たい と 思い ます",
        "今後 の 課題 に し て 検討 し たい と 思い ます",
        "まあ 今後 の 課題 と し て 検討 し たい と 思い ます"]),
    ("train_dev", "A03F0072_0120000_0122980", "対象 と なる 話者 は 十 名 です", [
        "対照 と なる 話者 は 十 名 です",
        "対象 と なる 話者 は 十 名 です",
        "対象 と なる 話者 が 十 名 です",
        "対照 と なる 話者 が 十 名 です",
        "対象 に なる 話者 は 十 名 です",
        "対象 と なる 話者 は <unk> 名 です"]),
    ("train_dev", "A03F0072_0130400_0133700", "関心 の ある 方 は ご 連絡 ください", [
        "感心 の ある 方 は ご 連絡 ください",
        "関心 の ある 方 は ご 連絡 ください",
        "関心 の ある 型 は ご 連絡 ください",
        "感心 の ある 方 が ご 連絡 ください",
        "関心 の ある 方 は 連絡 ください",
        "関心 の ある 方 に ご 連絡 ください"]),
    ("eval1", "A01M0110_0000211_0001695", "以上 で 発表 を 終わり ます", [
        "異常 で 発表 を 終わり ます",
        "以上 で 発表 を 終わり ます",
        "以上 に 発表 を 終わり ます",
        "異常 に 発表 を 終わり ます",
        "以上 で 発表 が 終わり ます",
        "えー 以上 で 発表 を 終わり ます"]),
    ("eval1", "A01M0110_0003020_0006475", "保証 は でき ませ ん", [
        "保障 は でき ませ ん",
        "補償 は でき ませ ん",
        "保証 は でき ませ ん",
        "保証 が でき ませ ん",
        "保障 が でき ませ ん",
        "保証 は <sp> でき ませ ん"]),
    ("eval1", "A01M0137_0041500_0045320", "正確 に 書き起こす の は 難しい", [
        "性格 に 書き起こす の は 難しい",
        "正確 に 書き起こす の は 難しい",
        "正確 に 書き起こす の が 難しい",
        "性格 に 書き起こす の が 難しい",
        "正確 を 書き起こす の は 難しい",
        "正確 に <sp> 書き起こす の は 難しい"]),
    ("eval1", "A01M0137_0050110_0054980", "辞書 に ない 単語 は 未知 語 と し て 扱い ます", [
        "辞書 に ない 単語 は 道 語 と し て 扱い ます",
        "辞書 に ない 単語 は 未知 語 と し て 扱い ます",
        "辞書 に ない 単語 が 未知 語 と し て 扱い ます",
        "辞書 に ない 単語 は 未知 語 に し て 扱い ます",
        "辞書 に ない 単語 は <unk> と し て 扱い ます",
        "えー 辞書 に ない 単語 は 未知 語 と し て 扱い ます"]),
]
POS["単語"] = "名詞"
SPECIAL = ("<sp>", "<unk>")


def kaldi_tokens(text: str) -> str:
    """Surface morphemes -> Kaldi CSJ tokens ``surface+POS`` (``<sp>``/``<unk>`` as they are)."""
    return " ".join(t if t in SPECIAL else f"{t}+{POS[t]}" for t in text.split())


def espnet_text(text: str) -> str:
    """Surface morphemes -> ESPnet CSJ text: tags and <sp> removed, no spaces (csj_rm_tag_sp_space.sh)."""
    return "".join(t for t in text.split() if t not in SPECIAL)


def costs(u: int, k: int) -> tuple[float, float, float]:
    """Kaldi (graph cost, LM cost, acoustic cost) of rank k (1-based): -(graph + 0.1 ac) falls with k."""
    lm = 20.0 + 0.75 * k + 0.125 * (u % 3)
    graph = lm + 5.5
    ac = 400.0 + 12.5 * u + 2.5 * k
    return graph, lm, ac


def write_kaldi(root: Path) -> tuple[str, Path]:
    """Kaldi CSJ decode dirs ``root/exp/decode_<set>_rnnlm_nbest`` (train_nodup in 2 jobs) and data dirs
    ``root/data/<set>/text``; returns (--src pattern, --refs dir)."""
    for s in SETS:
        utts = [(u, x) for u, x in enumerate(UTTS) if x[0] == s]
        jobs = [utts[:len(utts) // 2], utts[len(utts) // 2:]] if s == "train_nodup" else [utts]
        dec = root / "exp" / f"decode_{s}_rnnlm_nbest"
        for j, part in enumerate(jobs, 1):
            arch = dec / f"archives.{j}"
            arch.mkdir(parents=True)
            files = {name: [] for name in ("words_text", "lmwt.withlm", "lmwt.nolm", "acwt")}
            for u, (_, utt, _, hyps) in part:
                for k, h in enumerate(hyps, 1):
                    graph, lm, ac = costs(u, k)
                    files["words_text"].append(f"{utt}-{k} {kaldi_tokens(h)}")
                    files["lmwt.withlm"].append(f"{utt}-{k} {graph}")
                    files["lmwt.nolm"].append(f"{utt}-{k} {graph - lm}")
                    files["acwt"].append(f"{utt}-{k} {ac}")
            for name, lines in files.items():
                (arch / name).write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")
        (dec / "num_jobs").write_text(f"{len(jobs)}\n")
        # references as Kaldi CSJ data prep writes them: morpheme tokens, <sp> at a merged pause
        refs = [f"{utt} {kaldi_tokens(ref.replace(' ', ' <sp> ', 1) if i % 2 else ref)}"
                for i, (_, utt, ref, _) in enumerate(x for x in UTTS if x[0] == s)]
        d = root / "data" / s
        d.mkdir(parents=True)
        (d / "text").write_text("".join(ln + "\n" for ln in sorted(refs)), encoding="utf-8")
    return str(root / "exp" / "decode_{set}_rnnlm_nbest"), root / "data"


def write_espnet(root: Path) -> tuple[str, Path]:
    """espnet2 CSJ decode dirs ``root/exp/decode_asr/<set>/logdir/output.1/<n>best_recog/{text,score}`` and
    ``root/dump/raw/<set>/text``; returns (--src dir, --refs dir)."""
    for s in SETS:
        utts = [(u, x) for u, x in enumerate(UTTS) if x[0] == s]
        out = root / "exp" / "decode_asr" / s / "logdir" / "output.1"
        for k in range(1, 7):
            d = out / f"{k}best_recog"
            d.mkdir(parents=True)
            text, score = [], []
            for u, (_, utt, _, hyps) in utts:
                graph, _, ac = costs(u, k)
                text.append(f"{utt} {espnet_text(hyps[k - 1])}")
                score.append(f"{utt} tensor({-(graph + 0.1 * ac):.4f})")
            (d / "text").write_text("".join(ln + "\n" for ln in text), encoding="utf-8")
            (d / "score").write_text("".join(ln + "\n" for ln in score), encoding="utf-8")
        d = root / "dump" / "raw" / s
        d.mkdir(parents=True)
        (d / "text").write_text("".join(f"{utt} {espnet_text(ref)}\n" for _, (_, utt, ref, _) in utts),
                                encoding="utf-8")
    return str(root / "exp" / "decode_asr"), root / "dump" / "raw"


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def expected_cer_errors(s: str) -> dict[str, int]:
    """Character errors of every hypothesis key of set ``s``, counted independently of the package."""
    out = {}
    for _, utt, ref, hyps in (x for x in UTTS if x[0] == s):
        for k, h in enumerate(hyps, 1):
            out[f"{utt}-{k}"] = levenshtein(espnet_text(ref), espnet_text(h))
    return out


def repo_copy(tmp_path: Path) -> Path:
    """What the recipe needs, copied: run.sh, utils/, egs/csj (the package comes from PYTHONPATH)."""
    root = tmp_path / "repo"
    (root / "egs").mkdir(parents=True)
    shutil.copy2(REPO / "run.sh", root / "run.sh")
    shutil.copytree(REPO / "utils", root / "utils")
    shutil.copytree(RECIPE, root / "egs" / "csj", ignore=shutil.ignore_patterns("data", "exp"))
    return root / "egs" / "csj"


def run(args: list, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def keyed(path: Path) -> dict[str, float]:
    return {k: float(v) for k, v in (ln.split() for ln in lines(path))}


# --------------------------------------------------------------------------------------------
# The fixture itself
# --------------------------------------------------------------------------------------------

def test_fixture_is_what_it_claims():
    assert len(UTTS) == 18 and [sum(x[0] == s for x in UTTS) for s in SETS] == [10, 4, 4]
    ids = [x[1] for x in UTTS]
    assert len(set(ids)) == len(ids)
    for _, utt, ref, hyps in UTTS:
        assert re.fullmatch(r"[A-Z]\d\d[FM]\d{4}_\d{7}_\d{7}", utt), utt
        start, end = map(int, utt.split("_")[1:])
        assert start < end
        assert len(hyps) == 6 and len(set(hyps)) == 6, utt
        assert ref in hyps, f"{utt}: the reference is in the n-best (the oracle is 0)"
        assert hyps[0] != ref or utt.startswith("A01M0097_0102"), f"{utt}: the first pass is wrong"
        for h in [ref, *hyps]:
            assert all(t in POS or t in SPECIAL for t in h.split()), h


# --------------------------------------------------------------------------------------------
# local/data.sh: Kaldi and ESPnet imports, CSJ normalisation, CER, clear errors
# --------------------------------------------------------------------------------------------

def test_data_sh_kaldi_and_espnet_give_the_same_cer(tmp_path: Path):
    rec = repo_copy(tmp_path)
    ksrc, krefs = write_kaldi(tmp_path / "kaldi")
    esrc, erefs = write_espnet(tmp_path / "espnet")
    sets = ",".join(SETS)
    r = run(["bash", "local/data.sh", "--source", "kaldi", "--src", ksrc, "--refs", krefs, "--sets", sets,
             "--data", "data_kaldi"], rec)
    assert r.returncode == 0, r.stderr
    assert "%CER" in r.stdout  # nbest_stats reports the recorded metric
    r = run(["bash", "local/data.sh", "--source", "espnet", "--src", esrc, "--refs", erefs, "--sets", sets,
             "--data", "data_espnet"], rec)
    assert r.returncode == 0, r.stderr
    for s in SETS:
        expected = expected_cer_errors(s)
        n_utts = sum(x[0] == s for x in UTTS)
        k, e = load_set(rec / "data_kaldi" / s), load_set(rec / "data_espnet" / s)
        for nbs, fmt in ((k, "kaldi-nbest"), (e, "espnet")):
            assert nbs.meta["source"]["format"] == fmt
            assert nbs.meta["language"] == "ja" and nbs.meta["metric"] == "cer"
            assert nbs.meta["normalization"] == "csj,bracket"
            assert nbs.meta["errors"]["metric"] == "cer"
            assert nbs.num_utts == n_utts and nbs.num_hyps == 6 * n_utts  # counts in = counts out
            errs = dict(zip(nbs.keys(), nbs.streams["errors"].tolist(), strict=True))
            assert errs == expected, f"{fmt} {s}: CER errors"
        # the texts are kept as the recogniser wrote them: Kaldi morphemes with +POS, ESPnet characters
        assert "+" in k.texts[0] and " " in k.texts[0]
        assert "+" not in e.texts[0] and " " not in e.texts[0]
        # the first pass score is the same ranking: -(graph + 0.1 ac), to ESPnet's 4 decimals
        assert [round(x, 3) for x in k.streams["score"]] == [round(x, 3) for x in e.streams["score"]]
    # the in-domain text: the training references, normalised (no +POS, no <sp>), ids removed
    for d, join in (("data_kaldi", " "), ("data_espnet", "")):
        got = lines(rec / d / "local" / "lm_text.txt")
        want = [join.join(ref.split()) for _, _, ref, _ in sorted((x for x in UTTS if x[0] == "train_nodup"),
                                                                  key=lambda x: x[1])]
        assert got == want, d


@pytest.mark.parametrize("args, message", [
    ([], "give --source kaldi or --source espnet"),
    (["--source", "htk"], "--source must be kaldi or espnet"),
    (["--source", "kaldi"], "give --src"),
    (["--source", "kaldi", "--src", "SRC"], "give --refs"),
    (["--source", "kaldi", "--src", "SRC/nope_{set}", "--refs", "REFS"],
     "decode dir SRC/nope_train_nodup not found"),
    (["--source", "espnet", "--src", "SRC/decode_{set}_rnnlm_nbest", "--refs", "REFS"],
     "holds no logdir/output"),
    (["--source", "kaldi", "--src", "SRC/decode_{set}_rnnlm_nbest", "--refs", "REFS/x"],
     "references REFS/x/train_nodup/text not found"),
    (["--source", "kaldi", "--src", "SRC/decode_{set}_rnnlm_nbest", "--refs", "REFS", "--lm_text", "no.txt",
      "--sets", "train_nodup,train_dev,eval1"],
     "--lm_text no.txt not found"),
    (["--source", "kaldi", "--src", "SRC/decode_{set}_rnnlm_nbest", "--refs", "REFS"],
     "set eval2: decode dir"),  # the default sets are CSJ's five
])
def test_data_sh_errors(tmp_path: Path, args, message):
    rec = repo_copy(tmp_path)
    src, refs = write_kaldi(tmp_path / "kaldi")
    base = str(Path(src).parent)
    args = [a.replace("SRC", base).replace("REFS", str(refs)) for a in args]
    message = message.replace("SRC", base).replace("REFS", str(refs))
    r = run(["bash", "local/data.sh", *args], rec)
    assert r.returncode == 1 and message in r.stderr, r.stderr
    assert not (rec / "data").exists()  # nothing imported before the inputs are checked


# --------------------------------------------------------------------------------------------
# run.sh stages 0-7 with tiny models
# --------------------------------------------------------------------------------------------

def tiny_teacher(root: Path) -> Path:
    """A random 2-layer, 32-wide BertForMaskedLM over the fixture's characters (cased WordPiece)."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    chars = sorted({c for _, _, ref, hyps in UTTS for t in [ref, *hyps] for c in espnet_text(t)})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars)]
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=False)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    BertForMaskedLM(cfg).save_pretrained(root)
    tok.save_pretrained(root)
    return root


@pytest.mark.recipe  # a minute or more: the recipe tier (utils/run_tests.sh)
def test_run_sh_end_to_end_on_japanese(tmp_path: Path):
    rec = repo_copy(tmp_path)
    src, refs = write_kaldi(tmp_path / "kaldi")
    teacher = tiny_teacher(tmp_path / "teacher")
    r = run([rec / "run.sh", "--conf_dir", "conf/debug", "--nj", "1", "--teacher", teacher,
             "--student_layers", "1", "--eval_sets", "eval1", "--systems", " ".join(SYSTEMS),
             "--data_opts", f"--source kaldi --src {src} --refs {refs} --sets {','.join(SETS)}"], tmp_path)
    assert r.returncode == 0, r.stderr[-4000:]
    assert {int(m) for m in re.findall(r"INFO: Stage (\d):", r.stderr)} == set(range(8))
    data, exp = rec / "data", rec / "exp"

    # ---- counts in = counts out, every stream keyed like its set ----
    hyp_keys = {s: set(expected_cer_errors(s)) for s in SETS}
    for s in SETS:
        assert set(keyed(data / s / "nbest" / "score")) == hyp_keys[s]
        assert set(keyed(exp / "teacher" / s / "pll")) == hyp_keys[s]
    for s in ("train_dev", "eval1"):
        assert set(keyed(exp / "clm" / s / "clm")) == hyp_keys[s]
        assert set(keyed(exp / "student_mwer" / s / "student")) == hyp_keys[s]
    streams = [*(exp / "teacher").glob("*/pll"), *(exp / "clm").glob("*/clm"),
               *exp.glob("student_*/*/student")]
    assert len(streams) == 3 + 2 + 2
    for path in streams:
        assert all(math.isfinite(v) for v in keyed(path).values()), path

    # ---- the models read normalised Japanese: no +POS, no <sp>, no [UNK] ----
    for s in SETS:
        run_yaml = (exp / "teacher" / s / "split1" / "1" / "run.yaml").read_text(encoding="utf-8")
        assert "csj,bracket" in run_yaml, run_yaml
    lm_text = lines(data / "local" / "lm_text.txt")
    assert len(lm_text) == 10 and not any("+" in t or "<sp>" in t for t in lm_text)
    from rescore.data.textnorm import Normalizer
    from rescore.models.hf import load_tokenizer

    tok = load_tokenizer(str(exp / "student_md" / "model"))
    norm = Normalizer.parse("csj,bracket")
    for s in SETS:
        for text in load_set(data / s).texts:
            ids = tok(norm.text(text), add_special_tokens=False)["input_ids"]
            assert ids and tok.unk_token_id not in ids, text
            # every character read as itself (a lower-casing tokenizer would turn が into か)
            pieces = [t.removeprefix("##") for t in tok.convert_ids_to_tokens(ids)]
            assert "".join(pieces) == espnet_text(" ".join(t.split("+")[0] for t in text.split())), text
    pll = keyed(exp / "teacher" / "eval1" / "pll")
    utt = "A01M0110_0003020_0006475"  # 保障/補償/保証 は/が: different texts, different PLL
    assert len({round(pll[f"{utt}-{k}"], 6) for k in range(1, 6)}) == 5
    clm_cfg = json.loads((exp / "clm" / "model" / "config.json").read_text())
    assert clm_cfg["norm"] == "csj,bracket" and clm_cfg["unit"] == "unigram"
    from rescore.models.lstm import UNK_ID, SpmUnits

    units = SpmUnits.load(exp / "clm" / "model")  # sentencepiece trained on the Japanese text
    encoded = units.encode(lm_text)
    # the held-out share (dev_fraction 0.2: 2 of 10 sentences) may hold characters the units never saw
    kept = [UNK_ID not in ids and units.sp.decode(ids) == t for ids, t in zip(encoded, lm_text, strict=True)]
    assert sum(kept) >= 8
    assert all(ids.count(UNK_ID) < len(ids) / 2 for ids in encoded)

    # ---- CER everywhere: sets, student dev selection, rescoring, the table ----
    for s in SETS:
        meta = load_set(data / s).meta
        assert (meta["language"], meta["metric"], meta["normalization"]) == ("ja", "cer", "csj,bracket")
    for sys_ in ("md", "mwer"):  # MD is trained (stage 4) as the start of MWER, though not scored
        summ = json.loads((exp / f"student_{sys_}" / "summary.json").read_text())
        assert summ["metric"] == "cer" and summ["norm"] == "csj,bracket"
        assert math.isfinite(summ["best_dev_wer"]) and math.isfinite(summ["first_pass_dev_wer"])
        assert summ["dev_ref_units"] == sum(len(espnet_text(x[2])) for x in UTTS if x[0] == "train_dev")
    ref_chars = sum(len(espnet_text(x[2])) for x in UTTS if x[0] == "eval1")
    fp_errors = sum(levenshtein(espnet_text(x[2]), espnet_text(x[3][0])) for x in UTTS if x[0] == "eval1")
    for sys_ in SYSTEMS:
        for s in ("train_dev", "eval1"):
            summ = json.loads((exp / "rescore" / sys_ / s / "scoring" / "summary.json").read_text())
            assert summ["metric"] == "cer" and summ["normalization"] == "csj,bracket", (sys_, s)
            assert summ["utts"] == sum(x[0] == s for x in UTTS) and summ["hyps"] == 6 * summ["utts"]
            for key in ("first_pass_cer", "rescored_cer", "oracle_cer"):
                assert math.isfinite(summ[key]), (sys_, s, key)
            assert summ["oracle_cer"] == 0.0  # every reference is in its n-best
            if s == "eval1":
                assert summ["details"]["rescored"]["ref_units"] == ref_chars  # characters, not morphemes
                # the set's own first pass (rank 1 of each list), counted independently
                assert summ["input_first_pass_cer"] == pytest.approx(100 * fp_errors / ref_chars, abs=1e-3)
    table = [ln for ln in lines(rec / "RESULTS.md") if ln.startswith("| eval1 |")]
    names = [ln.split("|")[2].strip() for ln in table]
    assert names == ["first pass", "oracle", "baseline LM", "teacher PLL", "MWER student"]
    for ln in table:
        cells = [c.strip() for c in ln.split("|")]
        assert cells[3] == "CER" and math.isfinite(float(cells[4])), ln
    results = json.loads((exp / "results.json").read_text())
    assert '"wer"' not in json.dumps(results) and json.dumps(results).count('"cer"') >= len(table)
    assert not (exp / "student_mwed").exists() and not (exp / "student_md" / "eval1").exists()
