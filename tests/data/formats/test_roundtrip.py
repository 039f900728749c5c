"""import -> export -> import keeps utterances, texts and scores, for every format that carries them."""

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rescore.bin import export_nbest, import_nbest
from rescore.data.nbest import NbestBuilder, load_set, save_set

ASCII_WS = " \t\n\r\x0b\x0c"
token = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=ASCII_WS),
                min_size=1, max_size=6)
utt_id = st.text(st.sampled_from("abcXYZ019-_.日本"), min_size=1, max_size=12).filter(
    lambda u: not u.startswith("-") and not u.endswith("-"))
score = st.floats(allow_nan=False, width=64) | st.sampled_from([math.inf, -math.inf, 0.0, -1234567.0, 1e7])
hyp = st.tuples(st.lists(token, max_size=5), score)


@st.composite
def nbest_sets(draw):
    utts = draw(st.lists(utt_id, min_size=1, max_size=4, unique=True))
    b = NbestBuilder()
    refs = {}
    for u in utts:
        hyps = draw(st.lists(hyp, min_size=1, max_size=4))
        order = draw(st.permutations(range(1, len(hyps) + 1)))
        for k in order:
            words, s = hyps[k - 1]
            b.add(u, k, " ".join(words), {"score": s})
        refs[u] = " ".join(draw(st.lists(token, max_size=4)))
    return b.build(refs=refs)


def by_key(nbs):
    return {k: (nbs.texts[i], nbs.streams["score"][i]) for i, k in enumerate(nbs.keys())}


def same(a, b):
    assert set(a) == set(b)
    for k in a:
        assert a[k][0] == b[k][0], k
        x, y = a[k][1], b[k][1]
        assert x == y or (math.isnan(x) and math.isnan(y)), (k, x, y)


def round_trip(tmp_path, nbs, fmt, export_name, import_extra=(), export_extra=()):
    src = tmp_path / "a"
    save_set(nbs, src)
    b = tmp_path / "b"
    assert import_nbest.main(["--verbose", "0", "--format", "setdir", str(src), str(b)]) == 0
    exported = tmp_path / export_name
    assert export_nbest.main(["--verbose", "0", "--format", fmt, *export_extra, str(b), str(exported)]) == 0
    d = tmp_path / "d"
    assert import_nbest.main(["--verbose", "0", "--format", fmt, *import_extra, str(exported), str(d)]) == 0
    first, back = load_set(b), load_set(d)
    same(by_key(first), by_key(back))
    assert sorted(first.utt_ids) == sorted(back.utt_ids)
    assert back.refs == first.refs
    return back


settings_ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@settings_
@given(nbs=nbest_sets())
def test_setdir_round_trip(tmp_path_factory, nbs):
    round_trip(tmp_path_factory.mktemp("rt"), nbs, "setdir", "c")


@settings_
@given(nbs=nbest_sets())
def test_kaldi_nbest_round_trip(tmp_path_factory, nbs):
    tmp = tmp_path_factory.mktemp("rt")
    refs = tmp / "ref.txt"
    refs.write_text("".join(f"{u} {t}\n" for u, t in nbs.refs.items()), encoding="utf-8")
    round_trip(tmp, nbs, "kaldi-nbest", "decode", ["--text", str(refs)], ["--new_symbol_table", "true"])


@settings_
@given(nbs=nbest_sets())
def test_mlm_json_round_trip(tmp_path_factory, nbs):
    round_trip(tmp_path_factory.mktemp("rt"), nbs, "mlm-json", "set.am.json")
