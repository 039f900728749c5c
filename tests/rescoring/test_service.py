"""The scoring service (rescore/rescoring/service.py): answers, batching, every error path, and a
short bounded load test (bench/bench_serve.py) with a real bundle; no timing assertion."""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from rescore.rescoring.bundle import Rescored
from rescore.rescoring.service import Limits, make_server

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from bench_serve import load_test  # noqa: E402


class FakeRescorer:
    """Orders by first-pass score; records the batches it is given; optionally slow or failing."""

    label, backend_name = "fake", "fake"

    def __init__(self, delay: float = 0.0, fail: bool = False, acwt=None):
        self.delay, self.fail, self.batches = delay, fail, []
        self.weights = SimpleNamespace(acwt=acwt)
        self.gate = threading.Event()
        self.gate.set()

    def rescore_many(self, lists):
        self.gate.wait()
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("the student is broken")
        self.batches.append(len(lists))
        out = []
        for hyps, fp, *_ in lists:
            fp = np.asarray(fp, dtype=float)
            order = np.argsort(-np.where(np.isfinite(fp), fp, -np.inf), kind="stable")
            out.append(Rescored(order, [hyps[i] for i in order], fp[order], np.zeros(len(hyps)), fp[order]))
        return out


@pytest.fixture
def serve():
    servers = []

    def start(rescorer, **limits):
        server = make_server(rescorer, "127.0.0.1", 0, Limits(**limits))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()
        s.batcher.close()


def request(port, method, path, body=None, raw: bytes | None = None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn.request(method, path, body=data, headers=headers or {})
    resp = conn.getresponse()
    out = resp.status, json.loads(resp.read() or b"{}")
    conn.close()
    return out


ONE = {"hyps": ["a b", "a c", "b"], "scores": [-2.0, -1.0, -3.0]}


def test_one_and_many_lists_and_health(serve):
    port = serve(FakeRescorer())
    status, out = request(port, "POST", "/rescore", ONE)
    assert status == 200 and out["order"] == [1, 0, 2] and out["hyps"] == ["a c", "a b", "b"]
    status, out = request(port, "POST", "/rescore", {"nbest": [ONE, {"hyps": ["x"], "scores": [None]}]})
    assert status == 200 and len(out["results"]) == 2 and out["results"][1]["totals"] == [None]
    status, out = request(port, "GET", "/health")
    assert status == 200 and out["status"] == "ok" and out["requests"] == 2 and out["lists"] == 3


def test_concurrent_requests_are_batched(serve):
    fake = FakeRescorer()
    port = serve(fake, max_wait_ms=200, max_batch_lists=64)
    fake.gate.clear()  # the first request waits in the scorer while the others queue up
    res = {}

    def go(i):
        res[i] = request(port, "POST", "/rescore", ONE)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(9)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    fake.gate.set()
    for t in threads:
        t.join()
    assert all(s == 200 for s, _ in res.values()) and len(res) == 9
    assert sum(fake.batches) == 9 and max(fake.batches) > 1, fake.batches


@pytest.mark.parametrize("raw, status, message", [
    (b"{not json", 400, "body is not JSON"),
    (b"\xff\xfe", 400, "body is not UTF-8"),
    (b"[1, 2]", 400, "body must be a JSON object"),
    (b'{"hyps": [], "scores": []}', 400, "request.hyps: must be a non-empty list"),
    (b'{"hyps": ["a", 3], "scores": [1, 2]}', 400, "request.hyps[1]: not a string"),
    (b'{"hyps": ["a", "b"]}', 400, "no 'scores'"),
    (b'{"hyps": ["a", "b"], "scores": [1]}', 400, "request.scores: 1 values for 2 hypotheses"),
    (b'{"hyps": ["a"], "scores": ["x"]}', 400, "request.scores[0]: not a number"),
    (b'{"hyps": ["a"], "scores": [true]}', 400, "request.scores[0]: not a number"),
    (b'{"nbest": []}', 400, "'nbest' must be a non-empty list"),
    (b'{"nbest": [{"hyps": ["a"], "scores": [1]}, 5]}', 400, "nbest[1]: must be an object"),
    (b'{"nbest": [{"hyps": ["a"], "scores": [1]}, {"hyps": ["a", "b"], "scores": [1]}]}', 400,
     "nbest[1].scores: 1 values for 2 hypotheses"),
])
def test_malformed_requests_get_400_naming_the_problem(serve, raw, status, message):
    port = serve(FakeRescorer())
    got, out = request(port, "POST", "/rescore", raw=raw)
    assert got == status and message in out["error"], out
    assert request(port, "POST", "/rescore", ONE)[0] == 200  # the service is still up


def test_limits_get_413(serve):
    port = serve(FakeRescorer(), max_request_bytes=2000, max_lists=2, max_hyps=3)
    status, out = request(port, "POST", "/rescore", raw=b'{"hyps": ["' + b"a" * 3000 + b'"], "scores": [1]}')
    assert status == 413 and "at most 2000" in out["error"]
    status, out = request(port, "POST", "/rescore", {"nbest": [ONE, ONE, ONE]})
    assert status == 413 and "3 n-best lists" in out["error"]
    status, out = request(port, "POST", "/rescore", {"hyps": ["a"] * 4, "scores": [1] * 4})
    assert status == 413 and "4 hypotheses (at most 3)" in out["error"]


def test_full_queue_gets_503(serve):
    fake = FakeRescorer()
    port = serve(fake, max_queue=1, max_wait_ms=0)
    fake.gate.clear()
    results = []

    def go():
        results.append(request(port, "POST", "/rescore", ONE))

    def health_becomes(key, n):
        for _ in range(1000):
            if request(port, "GET", "/health")[1][key] == n:
                return
            time.sleep(0.01)
        raise AssertionError(f"{key} never became {n}")

    threads = [threading.Thread(target=go) for _ in range(4)]
    threads[0].start()
    health_becomes("in_flight", 1)  # taken by the worker, which waits in the scorer
    threads[1].start()
    health_becomes("queued", 1)  # the queue is full now: the next two are refused
    for t in threads[2:]:
        t.start()
        t.join()
    fake.gate.set()
    for t in threads:
        t.join()
    statuses = sorted(s for s, _ in results)
    assert statuses == [200, 200, 503, 503], statuses
    assert any("queue is full" in o.get("error", "") for s, o in results if s == 503)


def test_unknown_path_scorer_failure_and_missing_costs(serve):
    port = serve(FakeRescorer(fail=True))
    assert request(port, "GET", "/nowhere")[0] == 404
    assert request(port, "POST", "/score", ONE)[0] == 404
    status, out = request(port, "POST", "/rescore", ONE)
    assert status == 500 and "the student is broken" in out["error"]
    port = serve(FakeRescorer(acwt=0.1))
    status, out = request(port, "POST", "/rescore", ONE)
    assert status == 400 and "give 'ac_cost'" in out["error"]
    status, out = request(port, "POST", "/rescore", {**ONE, "ac_cost": [1, 2, 3], "graph_cost": [1, 2, 3]})
    assert status == 200


def test_bounded_load_test_with_a_real_bundle(serve, tmp_path):
    """bench/bench_serve.py's load test, short: concurrency 1, 8, 32; no errors, nothing lost, and
    every answer the one the Rescorer gives for that list alone."""
    import rescore
    from rescore.models import RescoreBert
    from rescore.rescoring.bundle import export_bundle
    from tests.models.test_pll import bert_tokenizer
    from tests.models.test_student import tiny_encoder, visible

    tok = bert_tokenizer(tmp_path)
    visible(RescoreBert.on_encoder(tiny_encoder("bert", tok), tok, head_hidden=8)).save_pretrained(tmp_path / "s")
    (tmp_path / "w.yaml").write_text(yaml.safe_dump({"streams": {"st": 2.0}, "wip": 0.5, "acwt": None,
                                                     "metric": "wer", "normalization": "none"}))
    export_bundle(tmp_path / "s", tmp_path / "w.yaml", tmp_path / "b")
    r = rescore.Rescorer.from_pretrained(tmp_path / "b", num_threads=1)
    port = serve(r, max_wait_ms=5)
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "mat", "hello", "world"]
    bodies = [{"hyps": [" ".join(rng.choice(words, int(rng.integers(1, 6)))) for _ in range(int(rng.integers(1, 8)))]}
              for _ in range(12)]
    for b in bodies:
        b["scores"] = rng.normal(-10, 2, len(b["hyps"])).tolist()
    expected = [r.rescore(b["hyps"], b["scores"]).hyps for b in bodies]
    for c in (1, 8, 32):
        res = load_test(f"http://127.0.0.1:{port}", bodies, c, 40)
        assert res["errors"] == 0 and res["lost"] == 0 and res["answered"] == 40, res
        assert all(res["answers"][i]["hyps"] == expected[i % len(bodies)] for i in res["answers"])


def raw_http(port, data: bytes) -> tuple[int, dict]:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        head, _, body = buf.partition(b"\r\n\r\n")
        length = int(next(ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")))
        while len(body) < length:
            body += s.recv(65536)
    return int(head.split()[1]), json.loads(body)


def test_missing_or_bad_content_length_and_a_request_that_waits_too_long(serve):
    port = serve(FakeRescorer())
    status, out = raw_http(port, b"POST /rescore HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 411 and "Content-Length" in out["error"]
    status, out = raw_http(port, b"POST /rescore HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\nConnection: close\r\n\r\n")
    assert status == 400 and "bad Content-Length" in out["error"]
    fake = FakeRescorer()
    port = serve(fake, timeout_s=0.3)
    fake.gate.clear()
    status, out = request(port, "POST", "/rescore", ONE)
    fake.gate.set()
    assert status == 503 and "no answer within" in out["error"]
