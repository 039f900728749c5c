import math

import pytest

from rescore.data.archive import format_float, iter_lines, parse_float, read_float_archive, read_text_dict, write_lines
from rescore.exceptions import InputError
from tests.conftest import write


@pytest.mark.parametrize("text,value", [
    ("2500.123", 2500.123), ("1234567", 1234567.0), ("1e+07", 1e7), ("-3.5", -3.5),
    ("Infinity", math.inf), ("-Infinity", -math.inf), ("inf", math.inf),
])
def test_parse_float_kaldi_spellings(text, value):
    assert parse_float(text) == value
    assert parse_float(text.encode()) == value


def test_parse_float_badnumber_is_nan():
    assert math.isnan(parse_float("BadNumber"))
    with pytest.raises(ValueError):
        parse_float("abc")
    with pytest.raises(ValueError):
        parse_float("1_000")


@pytest.mark.parametrize("x", [0.1, -447.95196, 1e-300, 1234567.0, 2.5e22, -0.0, 1 / 3])
def test_format_float_round_trips(x):
    assert parse_float(format_float(x)) == x


def test_format_float_non_finite_uses_kaldi_spellings():
    assert format_float(math.inf) == "Infinity"
    assert format_float(-math.inf) == "-Infinity"
    assert format_float(math.nan) == "BadNumber"


def test_float_archive_trailing_space_and_formats(tmp_path):
    p = write(tmp_path / "a", "u-1 35.71286 \nu-2 1234567\nu-3 1e+07 \nu-4 -Infinity\n")
    got = [(k, v) for _, k, v in read_float_archive(p)]
    assert got == [("u-1", 35.71286), ("u-2", 1234567.0), ("u-3", 1e7), ("u-4", -math.inf)]


def test_crlf_and_empty_lines_are_errors_with_line(tmp_path):
    p = write(tmp_path / "crlf", b"u-1 1\r\nu-2 2\r\n", "wb")
    with pytest.raises(InputError, match=r"crlf:1: CRLF"):
        list(iter_lines(p))
    p = write(tmp_path / "empty", "u-1 1\n\nu-2 2\n")
    with pytest.raises(InputError, match=r"empty:2: empty line"):
        list(iter_lines(p))


def test_non_numeric_value_names_line(tmp_path):
    p = write(tmp_path / "s", "u-1 1\nu-2 abc\n")
    with pytest.raises(InputError, match=r"s:2: non-numeric value 'abc'"):
        list(read_float_archive(p))


def test_text_dict_splits_on_ascii_whitespace_only(tmp_path):
    p = write(tmp_path / "text", "u1 a\u3000b  c\t d\nu2\n")
    assert read_text_dict(p) == {"u1": "a\u3000b c d", "u2": ""}


def test_text_dict_invalid_utf8_and_duplicates(tmp_path):
    p = write(tmp_path / "bad", b"u1 ok\nu2 \xff\xfe\n", "wb")
    with pytest.raises(InputError, match=r"bad:2: invalid UTF-8"):
        read_text_dict(p)
    p = write(tmp_path / "dup", "u1 a\nu1 b\n")
    with pytest.raises(InputError, match=r"dup:2: duplicate key 'u1'"):
        read_text_dict(p)


def test_write_lines_is_atomic(tmp_path):
    target = tmp_path / "out"
    write_lines(target, ["a", "b"])

    def boom():
        yield "c"
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_lines(target, boom())
    assert target.read_text() == "a\nb\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
