"""ESPnet2 n-best decode dirs: reading (docs/formats.md §4.1), writing and round trips."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rescore.data.formats import espnet
from rescore.data.nbest import NbestBuilder
from rescore.exceptions import InputError, InvalidSetError
from tests.conftest import make_set, write

UTT = "A01M0110_0000211_0001695"


def job_files(job: Path, files: dict[str, str]) -> Path:
    """Write ``{"1best_recog/text": "...", ...}`` under one ``output.J`` dir."""
    for rel, text in files.items():
        write(job / rel, text)
    return job


@pytest.fixture
def csj_decode(tmp_path: Path) -> Path:
    """The docs/formats.md §4.1 Japanese example (GPU decoding: tensor repr with a device)."""
    d = tmp_path / "decode_asr" / "eval1"
    job_files(d / "logdir" / "output.1", {
        "1best_recog/token": f"{UTT} え ー そ れ で は 始 め ま す\n",
        "1best_recog/token_int": f"{UTT} 41 3 112 58 27 19 402 233 71 36\n",
        "1best_recog/text": f"{UTT} えーそれでは始めます\n",
        "1best_recog/score": f"{UTT} tensor(-4.8123, device='cuda:0')\n",
        "2best_recog/token": f"{UTT} え ー そ れ で は 始 ま り ま す\n",
        "2best_recog/text": f"{UTT} えーそれでは始まります\n",
        "2best_recog/score": f"{UTT} tensor(-6.0321, device='cuda:0')\n",
    })
    return d


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


# ------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------


def test_read_csj_example(csj_decode: Path):
    nbs = espnet.read(csj_decode)
    assert nbs.utt_ids == [UTT]
    assert list(nbs.keys()) == [f"{UTT}-1", f"{UTT}-2"]
    assert list(nbs.texts) == ["えーそれでは始めます", "えーそれでは始まります"]
    assert nbs.streams["score"].tolist() == [-4.8123, -6.0321]
    assert nbs.refs is None
    assert nbs.meta["source"]["format"] == "espnet"
    assert nbs.meta["source"]["path"] == str(csj_decode)
    assert nbs.meta["source"]["options"] == {"field": "text"}
    assert nbs.meta["source"]["score_forms"] == {"tensor": 2, "float": 0}
    assert nbs.meta["streams"]["score"] == {"better": "higher", "description": espnet.SCORE_DESCRIPTION}


def test_read_accepts_logdir_and_one_job(csj_decode: Path):
    for src in (csj_decode / "logdir", csj_decode / "logdir" / "output.1"):
        nbs = espnet.read(src)
        assert list(nbs.keys()) == [f"{UTT}-1", f"{UTT}-2"]


def test_read_tokens(csj_decode: Path):
    nbs = espnet.read(csj_decode, field="token")
    assert list(nbs.texts) == ["え ー そ れ で は 始 め ま す", "え ー そ れ で は 始 ま り ま す"]


def test_missing_text_suggests_token(tmp_path: Path):
    job = job_files(tmp_path / "logdir" / "output.1", {
        "1best_recog/token": "u1 ▁HE LLO ▁WORLD\n",
        "1best_recog/score": "u1 tensor(-1.5000)\n",
    })
    with pytest.raises(InputError, match=r"field='token'") as e:
        espnet.read(tmp_path)
    assert str(job / "1best_recog" / "text") in str(e.value)
    assert list(espnet.read(tmp_path, field="token").texts) == ["▁HE LLO ▁WORLD"]


def test_refs_passed_through(csj_decode: Path):
    refs = {UTT: "えーそれでは始めます", "other": "x"}
    assert espnet.read(csj_decode, refs=refs).refs == refs


@pytest.mark.parametrize("value,expect,tensor", [
    ("-12.3", -12.3, False),
    ("tensor(-12.3457)", -12.3457, True),
    ("tensor(-12.3457, device='cuda:0')", -12.3457, True),
    ("tensor(-3.1406, device='cuda:0', dtype=torch.float16)", -3.1406, True),
    ("tensor(-3.)", -3.0, True),
    ("tensor(-1.2346e+03)", -1234.6, True),
    ("0.0", 0.0, False),
    ("-1e-05", -1e-05, False),
])
def test_parse_score_forms(value: str, expect: float, tensor: bool):
    assert espnet.parse_score(value) == (expect, tensor)


@pytest.mark.parametrize("value", ["-inf", "tensor(-inf)", "tensor(nan, device='cuda:0')", "nan", "inf"])
def test_parse_score_nonfinite(value: str):
    assert not math.isfinite(espnet.parse_score(value)[0])


@pytest.mark.parametrize("value", ["tensor([-1.0, 2.0])", "abc", "-1.0 -2.0", "tensor(-1.0", "-1.0)", ""])
def test_parse_score_rejects(value: str):
    with pytest.raises(ValueError):
        espnet.parse_score(value)


def test_three_score_forms_in_files(tmp_path: Path):
    job_files(tmp_path / "output.1", {
        "1best_recog/text": "a x\nb y\nc z\nd w\n",
        "1best_recog/score": "a -12.3\nb tensor(-12.3457)\nc tensor(-12.3457, device='cuda:0')\nd -inf\n",
    })
    nbs = espnet.read(tmp_path / "output.1")
    assert nbs.streams["score"].tolist()[:3] == [-12.3, -12.3457, -12.3457]
    assert nbs.streams["score"][3] == -math.inf  # kept, never an error
    assert nbs.meta["source"]["score_forms"] == {"tensor": 2, "float": 2}


def test_too_short_utterance_is_empty_hypothesis(tmp_path: Path):
    # DatadirWriter writes key + " " + value, and the value is " " for text
    job_files(tmp_path / "logdir" / "output.1", {
        "1best_recog/text": "short  \nlong hello world\n",
        "1best_recog/score": "short 0.0\nlong tensor(-2.5000)\n",
    })
    nbs = espnet.read(tmp_path)
    assert nbs.utt_ids == ["short", "long"]
    assert list(nbs.texts) == ["", "hello world"]
    assert nbs.streams["score"].tolist() == [0.0, -2.5]


def test_job_and_nbest_order_numeric_and_unsorted(tmp_path: Path):
    log = tmp_path / "logdir"
    # jobs 2 and 10: numeric order, not string order; within a job, 1best order (not sorted)
    job_files(log / "output.10", {
        "1best_recog/text": "z1 a\n",
        "1best_recog/score": "z1 -1.0\n",
    })
    ten = {f"{n}best_recog/text": f"y2 h{n}\ny1 g{n}\n" for n in range(2, 11)}
    ten.update({f"{n}best_recog/score": f"y2 -{n}.5\ny1 -{n}.0\n" for n in range(2, 11)})
    job_files(log / "output.2", {
        "1best_recog/text": "y2 h1\ny1 g1\n",
        "1best_recog/score": "y2 -1.5\ny1 -1.0\n",
        **ten,
    })
    write(log / "asr_inference.2.log", "not a job dir\n")
    nbs = espnet.read(tmp_path)
    assert nbs.utt_ids == ["y2", "y1", "z1"]
    assert nbs.counts().tolist() == [10, 10, 1]
    assert nbs.ranks.tolist()[:10] == list(range(1, 11))
    assert nbs.hyps(1) == [f"g{n}" for n in range(1, 11)]
    assert nbs.streams["score"].tolist()[10:20] == [-float(n) for n in range(1, 11)]
    assert nbs.meta["source"]["jobs"] == 2


def test_fewer_hypotheses_for_some_utterances(tmp_path: Path):
    job_files(tmp_path / "output.1", {
        "1best_recog/text": "u1 a\nu2 b\n",
        "1best_recog/score": "u1 -1\nu2 -2\n",
        "2best_recog/text": "u2 c\n",
        "2best_recog/score": "u2 -3\n",
    })
    nbs = espnet.read(tmp_path / "output.1")
    assert list(nbs.keys()) == ["u1-1", "u2-1", "u2-2"]


# ------------------------------------------------------------------------------------------
# reading errors
# ------------------------------------------------------------------------------------------


def test_bad_score_line(tmp_path: Path):
    job = job_files(tmp_path / "output.1", {
        "1best_recog/text": "u1 a\nu2 b\n",
        "1best_recog/score": "u1 -1.0\nu2 tensor([-1.0])\n",
    })
    with pytest.raises(InputError) as e:
        espnet.read(job)
    assert f"{job / '1best_recog' / 'score'}:2:" in str(e.value)


def test_key_in_text_not_in_score_and_vice_versa(tmp_path: Path):
    job = job_files(tmp_path / "output.1", {
        "1best_recog/text": "u1 a\nu2 b\n",
        "1best_recog/score": "u1 -1.0\nu3 -2.0\n",
    })
    with pytest.raises(InvalidSetError) as e:
        espnet.read(job)
    msg = str(e.value)
    assert f"{job / '1best_recog' / 'text'}:2: key u2" in msg
    assert f"{job / '1best_recog' / 'score'}:2: key u3" in msg


def test_rank_gap_names_both_files(tmp_path: Path):
    job = job_files(tmp_path / "output.1", {
        "1best_recog/text": "u1 a\nu2 b\n",
        "1best_recog/score": "u1 -1\nu2 -2\n",
        "2best_recog/text": "u1 c\n",
        "2best_recog/score": "u1 -3\n",
        "3best_recog/text": "u1 d\nu2 e\n",
        "3best_recog/score": "u1 -4\nu2 -5\n",
    })
    with pytest.raises(InvalidSetError) as e:
        espnet.read(job)
    msg = str(e.value)
    assert f"{job / '3best_recog' / 'text'}:2: utterance u2" in msg
    assert str(job / "2best_recog" / "text") in msg
    assert "1 error(s)" in msg


def test_same_utterance_in_two_jobs(tmp_path: Path):
    for j in (1, 2):
        job_files(tmp_path / "logdir" / f"output.{j}", {
            "1best_recog/text": f"u{j} a\nshared b\n",
            "1best_recog/score": f"u{j} -1\nshared -2\n",
        })
    with pytest.raises(InvalidSetError) as e:
        espnet.read(tmp_path)
    msg = str(e.value)
    assert f"{tmp_path / 'logdir' / 'output.2' / '1best_recog' / 'text'}:2: utterance shared" in msg
    assert f"{tmp_path / 'logdir' / 'output.1' / '1best_recog' / 'text'}:2" in msg


def test_duplicate_key_in_one_file(tmp_path: Path):
    job = job_files(tmp_path / "output.1", {
        "1best_recog/text": "u1 a\nu1 b\n",
        "1best_recog/score": "u1 -1\n",
    })
    with pytest.raises(InputError, match="duplicate key u1") as e:
        espnet.read(job)
    assert f"{job / '1best_recog' / 'text'}:2:" in str(e.value)


def test_missing_score_file_and_no_output(tmp_path: Path):
    job = job_files(tmp_path / "output.1", {"1best_recog/text": "u1 a\n"})
    with pytest.raises(InputError, match="score"):
        espnet.read(job)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no ESPnet output"):
        espnet.read(tmp_path / "empty")
    with pytest.raises(ValueError, match="field"):
        espnet.read(job, field="token_int")


# ------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------


def test_write_line_by_line(tmp_path: Path):
    nbs = make_set({
        "b": [("hello world", -3.14159), ("", -7.0)],
        "a-1": [("日本 語", -1.0)],
        "B": [("x", -math.inf), ("y", -2.25), ("z", 0.00004)],
    })
    out = tmp_path / "exp"
    files = espnet.write(nbs, out, order="rank")
    job = out / "logdir" / "output.1"
    assert files == [
        job / "1best_recog" / "text", job / "1best_recog" / "score",
        job / "2best_recog" / "text", job / "2best_recog" / "score",
        job / "3best_recog" / "text", job / "3best_recog" / "score",
        out / "text", out / "score",
    ]
    assert lines(job / "1best_recog" / "text") == ["b hello world", "a-1 日本 語", "B x"]
    assert lines(job / "1best_recog" / "score") == ["b tensor(-3.1416)", "a-1 tensor(-1.0000)", "B tensor(-inf)"]
    assert lines(job / "2best_recog" / "text") == ["b ", "B y"]
    assert lines(job / "2best_recog" / "score") == ["b tensor(-7.0000)", "B tensor(-2.2500)"]
    assert lines(job / "3best_recog" / "text") == ["B z"]
    assert lines(job / "3best_recog" / "score") == ["B tensor(0.0000)"]
    # merged 1-best, LC_ALL=C order
    assert lines(out / "text") == ["B x", "a-1 日本 語", "b hello world"]
    assert lines(out / "score") == ["B tensor(-inf)", "a-1 tensor(-1.0000)", "b tensor(-3.1416)"]


def test_write_keys_go_to_their_rank_dir(tmp_path: Path):
    b = NbestBuilder(["score"])
    b.add("u", 2, "second", {"score": -1.0})  # stored first, but key u-2
    b.add("u", 1, "first", {"score": -2.0})
    espnet.write(b.build(), tmp_path, score_style="float", order="rank")
    job = tmp_path / "logdir" / "output.1"
    assert lines(job / "1best_recog" / "text") == ["u first"]
    assert lines(job / "2best_recog" / "score") == ["u -1.0"]


def test_write_float_style_and_options(tmp_path: Path):
    nbs = make_set({"u": [("a", -0.1), ("b", math.nan)]})
    espnet.write(nbs, tmp_path, score_style="float", order="rank")
    assert lines(tmp_path / "score") == ["u -0.1"]
    assert lines(tmp_path / "logdir" / "output.1" / "2best_recog" / "score") == ["u nan"]
    with pytest.raises(ValueError, match="score_style"):
        espnet.write(nbs, tmp_path / "x", score_style="int")
    with pytest.raises(ValueError, match="no stream"):
        espnet.write(nbs, tmp_path / "y", stream="pll")


def test_rewrite_with_fewer_hypotheses_removes_stale_dirs(tmp_path: Path):
    espnet.write(make_set({"u": [("a", -1.0), ("b", -2.0), ("c", -3.0)]}), tmp_path)
    espnet.write(make_set({"u": [("a", -1.0)]}), tmp_path)
    assert not (tmp_path / "logdir" / "output.1" / "2best_recog").exists()
    assert espnet.read(tmp_path).num_hyps == 1
    (tmp_path / "logdir" / "output.2").mkdir()
    with pytest.raises(ValueError, match="output.2"):
        espnet.write(make_set({"u": [("a", -1.0)]}), tmp_path)


# ------------------------------------------------------------------------------------------
# round trips
# ------------------------------------------------------------------------------------------

ROUND = {
    "spk1-utt-0001": [("the cat sat", -10.123456789), ("", -11.5), ("a\u3000b c", -12.0)],
    "u2": [("日本語", -0.000049), ("にほんご", -1e-7)],
    "u3": [("x", -math.inf), ("y", math.nan)],
}


def _same_scores(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


def test_round_trip_tensor_style_4_decimals(tmp_path: Path):
    nbs = make_set(ROUND)
    espnet.write(nbs, tmp_path, order="rank")
    back = espnet.read(tmp_path)
    assert back.utt_ids == nbs.utt_ids
    assert list(back.keys()) == list(nbs.keys())
    assert list(back.texts) == list(nbs.texts)
    assert _same_scores(back.streams["score"], np.round(nbs.streams["score"], 4))


def test_round_trip_float_style_exact(tmp_path: Path):
    nbs = make_set(ROUND)
    espnet.write(nbs, tmp_path, score_style="float", order="rank")
    back = espnet.read(tmp_path / "logdir")
    assert list(back.keys()) == list(nbs.keys())
    assert list(back.texts) == list(nbs.texts)
    assert _same_scores(back.streams["score"], nbs.streams["score"])


def test_round_trip_from_example(csj_decode: Path, tmp_path: Path):
    nbs = espnet.read(csj_decode)
    espnet.write(nbs, tmp_path, order="rank")
    assert lines(tmp_path / "logdir" / "output.1" / "1best_recog" / "score") == [f"{UTT} tensor(-4.8123)"]
    back = espnet.read(tmp_path)
    assert list(back.texts) == list(nbs.texts)
    assert back.streams["score"].tolist() == nbs.streams["score"].tolist()


def test_write_orders_by_score_by_default(tmp_path: Path):
    # a rescored set keeps its keys (u-1 is the first-pass best) but its score is the new total:
    # ESPnet's scoring reads 1best_recog and the merged text, which must be the rescored best
    b = NbestBuilder(["score"])
    b.add("u", 1, "first pass best", {"score": -5.0})
    b.add("u", 2, "rescored best", {"score": -1.0})
    b.add("u", 3, "worst", {"score": -math.inf})
    espnet.write(b.build(), tmp_path, score_style="float")
    job = tmp_path / "logdir" / "output.1"
    assert lines(tmp_path / "text") == ["u rescored best"] and lines(tmp_path / "score") == ["u -1.0"]
    assert [lines(job / f"{n}best_recog" / "text")[0] for n in (1, 2, 3)] == [
        "u rescored best", "u first pass best", "u worst"]
    with pytest.raises(ValueError, match="order"):
        espnet.write(b.build(), tmp_path / "x", order="random")
