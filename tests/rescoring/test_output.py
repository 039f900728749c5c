"""rescore.rescoring.output: the per-utterance lines of Kaldi's wer_per_utt_details.pl."""

from __future__ import annotations

from rescore.rescoring.output import per_utt_lines


def test_per_utt_lines_match_the_kaldi_example():
    # docs/formats.md §1.9.4 (wer_per_utt_details.pl: columns centred, extra space on the left, joined by two
    # spaces, trailing spaces kept as the Perl prints them; #csid = C S I D)
    lines = per_utt_lines("utt1", "THE CAT SAT".split(), "THE BAT A SAT".split())
    assert lines == [
        "utt1 ref  THE  CAT  ***  SAT",
        "utt1 hyp  THE  BAT   A   SAT",
        "utt1 op    C    S    I    C ",
        "utt1 #csid 2 1 1 0",
    ]
    assert per_utt_lines("u", ["a", "b"], ["a"]) == ["u ref  a   b ", "u hyp  a  ***", "u op   C   D ",
                                                        "u #csid 1 0 0 1"]
    assert per_utt_lines("u", [], [])[3] == "u #csid 0 0 0 0"
