from rescore.stage import clear_done, fingerprint, is_done, mark_done, run_record
from tests.conftest import write


def test_fingerprint_changes_with_content_and_config(tmp_path):
    d = tmp_path / "in"
    write(d / "a", "1\n")
    write(d / "sub" / "b", "2\n")
    fp = fingerprint([d], {"x": 1})
    assert fp == fingerprint([d], {"x": 1})
    assert fp != fingerprint([d], {"x": 2})
    write(d / "sub" / "b", "3\n")
    assert fp != fingerprint([d], {"x": 1})
    assert fingerprint([tmp_path / "missing"], {}) != fingerprint([d], {})


def test_done_marker(tmp_path):
    assert not is_done(tmp_path, "abc")
    mark_done(tmp_path, "abc")
    assert is_done(tmp_path, "abc") and not is_done(tmp_path, "abd")
    clear_done(tmp_path)
    assert not is_done(tmp_path, "abc")


def test_run_record_has_replay_command_and_versions():
    rec = run_record(["--x", "a b"], "rescore.bin.validate")
    assert rec["command"] == "python -m rescore.bin.validate --x 'a b'"
    assert "numpy" in rec["versions"] and "python" in rec["versions"]
