"""Text normalisation, applied at scoring time and (separately) to what a language model reads.

Import never changes a hypothesis: normalisation is a recorded option (``meta.yaml``), given as
a comma-separated list of flags, applied in this order:

``csj``      CSJ conventions (docs/formats.md §6.5): keep the part of each token before the first
             ``+`` (drops ``+POS`` tags), drop ``<sp>``;
``bracket``  drop non-lexical tokens: ``<...>``, ``[...]``, ``!SIL`` (``<unk>``, ``[noise]``,
             ``<sp>``, ``<SPOKEN_NOISE>``, ...);
``fillers``  drop filler words (English hesitations and CSJ interjection fillers);
``nfkc``     Unicode NFKC (only if references and training data were normalised alike);
``lower``    case folding;
``punct``    remove punctuation characters (apostrophes inside words are kept).

CER (``metric='cer'``) is computed over characters with every whitespace removed, as Kaldi's
``score_kaldi_cer.sh`` and ESPnet's CSJ scoring do; a token that survives the filters and
contains ``[...]``, ``<...>`` or ``!SIL`` counts as one unit, as ``score_kaldi_cer.sh`` keeps it
whole (``[laughter]-yes``, ``a[b]c``). One difference from that script: a Unicode space inside a
token (U+3000) is not counted here, as in ESPnet's Japanese scoring; the script counts it as a
character.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

FLAGS = ("csj", "bracket", "fillers", "nfkc", "lower", "punct")

EN_FILLERS = frozenset({"uh", "um", "er", "ah", "eh", "hmm", "mm", "uhm", "erm", "hm", "mhm", "uh-huh"})
JA_FILLERS = frozenset({"えー", "えーと", "えっと", "あー", "あの", "あのー", "うーん", "うん", "まー", "そのー", "んー", "ええ"})

_BRACKETED = re.compile(r"^(<[^<>]*>|\[[^\[\]]*\]|!SIL)$")


#: Tokens that Kaldi's ``score_kaldi_cer.sh`` keeps whole when it splits words into characters:
#: any token containing ``[...]``, ``<...>`` or ``!SIL`` (``[laughter]-yes``, ``a[b]c``, ``<s>x</s>``)
_CER_WHOLE = re.compile(r"\[.*\]|<.*>|!SIL")


def is_bracketed(token: str) -> bool:
    """True for non-lexical tokens such as ``<unk>``, ``[noise]`` or ``!SIL``."""
    return _BRACKETED.match(token) is not None


@lru_cache(maxsize=1 << 16)
def _strip_punct(token: str) -> str:
    chars = []
    n = len(token)
    for i, c in enumerate(token):
        if unicodedata.category(c).startswith("P"):
            inner = 0 < i < n - 1 and token[i - 1].isalnum() and token[i + 1].isalnum()
            if c in "'’" and inner:
                chars.append(c)
            continue
        chars.append(c)
    return "".join(chars)


@dataclass(frozen=True)
class Normalizer:
    """A normalisation recipe; ``Normalizer.parse('lower,punct')``; ``str()`` gives the spec back."""

    flags: tuple[str, ...] = ()

    @classmethod
    def parse(cls, spec: str | None) -> Normalizer:
        if spec is None or spec.strip() in ("", "none"):
            return cls(())
        flags = tuple(f.strip() for f in spec.split(",") if f.strip())
        for f in flags:
            if f not in FLAGS:
                raise ValueError(f"unknown normalisation flag {f!r}; known: {', '.join(FLAGS)} (or 'none')")
        # canonical order, so equal recipes fingerprint equally
        return cls(tuple(f for f in FLAGS if f in flags))

    def __str__(self) -> str:
        return ",".join(self.flags) if self.flags else "none"

    def tokens(self, text: str | list[str]) -> list[str]:
        """Normalised word tokens of a text (for WER, and for the text an LM reads)."""
        toks = text.split(" ") if isinstance(text, str) else list(text)
        toks = [t for t in toks if t]
        if not self.flags:
            return toks
        flags = self.flags
        out = []
        for t in toks:
            if "csj" in flags:
                if t == "<sp>":
                    continue
                t = t.split("+", 1)[0]
            if "bracket" in flags and is_bracketed(t):
                continue
            if "fillers" in flags and (t.lower() in EN_FILLERS or t in JA_FILLERS):
                continue
            if "nfkc" in flags:
                t = unicodedata.normalize("NFKC", t)
            if "lower" in flags:
                t = t.lower()
            if "punct" in flags and not is_bracketed(t):
                t = _strip_punct(t)
            if t:
                out.append(t)
        return out

    def text(self, text: str) -> str:
        """Normalised text, tokens joined by single spaces."""
        return " ".join(self.tokens(text))

    def units(self, text: str | list[str], metric: str) -> list[str]:
        """The units errors are counted over: words for ``wer``, characters for ``cer``."""
        toks = self.tokens(text)
        if metric == "wer":
            return toks
        if metric != "cer":
            raise ValueError(f"unknown metric {metric!r} (wer or cer)")
        out: list[str] = []
        for t in toks:
            if _CER_WHOLE.search(t):
                out.append(t)
            else:
                out.extend(c for c in t if not c.isspace())
        return out


def default_norm(language: str) -> str:
    """The scoring normalisation a toolkit user expects for a language."""
    return "csj,bracket" if language == "ja" else "none"


def default_metric(language: str) -> str:
    """CER for Japanese and Chinese, WER otherwise."""
    return "cer" if language in ("ja", "zh") else "wer"
