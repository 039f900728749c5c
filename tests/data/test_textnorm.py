import pytest

from rescore.data.textnorm import Normalizer, default_metric, default_norm


def test_parse_is_canonical_and_rejects_unknown_flags():
    assert str(Normalizer.parse("punct, lower")) == "lower,punct"
    assert str(Normalizer.parse(None)) == "none" == str(Normalizer.parse("none"))
    with pytest.raises(ValueError, match="unknown normalisation flag 'upper'"):
        Normalizer.parse("upper")


def test_identity_keeps_text_verbatim():
    n = Normalizer()
    assert n.tokens("Hello, <unk> World\u3000x") == ["Hello,", "<unk>", "World\u3000x"]


def test_english_flags():
    n = Normalizer.parse("bracket,fillers,lower,punct")
    assert n.tokens("Uh I DON'T know, [noise] <unk> what's !SIL up?") == ["i", "don't", "know", "what's", "up"]
    assert Normalizer.parse("punct").tokens("'quoted' -- rock'n'roll") == ["quoted", "rock'n'roll"]


def test_csj_tokens_and_cer_units():
    n = Normalizer.parse(default_norm("ja"))
    line = "えー+感動詞 それ+代名詞 <sp> 始め+動詞/マ行下一段/連用形 <unk>"
    assert n.tokens(line) == ["えー", "それ", "始め"]
    assert n.units("今日\u3000は 晴れ", "cer") == ["今", "日", "は", "晴", "れ"]
    assert default_metric("ja") == "cer" and default_metric("en") == "wer"


def test_cer_keeps_bracketed_tokens_whole():
    assert Normalizer().units("ab [noise] c", "cer") == ["a", "b", "[noise]", "c"]
    with pytest.raises(ValueError):
        Normalizer().units("a", "ter")


def test_nfkc_only_when_asked():
    assert Normalizer().tokens("ＡＢＣ１") == ["ＡＢＣ１"]
    assert Normalizer.parse("nfkc").tokens("ＡＢＣ１") == ["ABC1"]
