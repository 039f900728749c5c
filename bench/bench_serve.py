"""Load test of the scoring service (rescore.bin.serve) on localhost, bounded.

    python bench/bench_serve.py --bundle BUNDLE [--set egs/mini_en/data/test] [--concurrency 1,8,32]
        [--requests 200] [--backend torch|onnx] [--quantize none|int8] [--threads 2] [--json OUT]

Starts the service in this process on a free port (or uses ``--url`` of a running one), then for
each concurrency level sends ``--requests`` requests, each one n-best list of ``--set`` (one
utterance's hypotheses and first-pass scores), from that many client threads at once, each
waiting for its answer before sending the next. Printed per level: requests/s, latency p50/p99
(ms), errors (any status but 200), lost requests (sent but never answered), the mean batch size
the service formed, and a check that every answer is the one ``rescore.Rescorer`` gives for that
list alone. ``load_test`` is also what the test suite runs, in a short form.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REPO = Path(__file__).resolve().parents[1]


def post(conn: http.client.HTTPConnection, body: dict) -> tuple[int, dict]:
    data = json.dumps(body).encode()
    conn.request("POST", "/rescore", body=data, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read() or b"{}")


def load_test(url: str, bodies: list[dict], concurrency: int, n_requests: int, timeout: float = 120.0) -> dict:
    """Send ``n_requests`` of ``bodies`` (cycled) from ``concurrency`` threads; the figures and answers."""
    u = urlparse(url)
    lock = threading.Lock()
    next_i = [0]
    lat, statuses, answers, failures = [], [], {}, []

    def client():
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        try:
            while True:
                with lock:
                    i = next_i[0]
                    if i >= n_requests:
                        return
                    next_i[0] += 1
                body = bodies[i % len(bodies)]
                t0 = time.perf_counter()
                try:
                    status, out = post(conn, body)
                except (OSError, http.client.HTTPException) as e:
                    with lock:
                        failures.append(f"request {i}: {type(e).__name__}: {e}")
                    conn.close()
                    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
                    continue
                dt = time.perf_counter() - t0
                with lock:
                    lat.append(dt)
                    statuses.append(status)
                    answers[i] = out
        finally:
            conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ms = np.array(lat) * 1000 if lat else np.zeros(1)
    return {"concurrency": concurrency, "requests": n_requests, "answered": len(statuses),
            "lost": n_requests - len(statuses), "errors": sum(s != 200 for s in statuses) + len(failures),
            "failures": failures[:5], "requests_per_s": len(statuses) / wall if wall > 0 else 0.0,
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "answers": answers}


def bodies_of(setdir: str) -> list[dict]:
    from rescore.data.nbest import load_set

    nbs = load_set(setdir)
    return [{"hyps": nbs.hyps(u), "scores": nbs.streams["score"][nbs.offsets[u]:nbs.offsets[u + 1]].tolist()}
            for u in range(nbs.num_utts)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", required=True)
    p.add_argument("--set", default=str(REPO / "egs" / "mini_en" / "data" / "test"),
                   help="n-best lists (default: the mini_en test set, made by its run.sh --stop_stage 0)")
    p.add_argument("--concurrency", default="1,8,32")
    p.add_argument("--requests", type=int, default=200, help="requests per concurrency level")
    p.add_argument("--backend", default="torch")
    p.add_argument("--quantize", default="none")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max_wait_ms", type=float, default=5.0)
    p.add_argument("--url", default=None, help="a running service (default: start one here)")
    p.add_argument("--json", default=None)
    args = p.parse_args()

    import rescore
    from rescore.rescoring.service import Limits, make_server

    r = rescore.Rescorer.from_pretrained(args.bundle, backend=args.backend, quantize=args.quantize,
                                         num_threads=args.threads)
    server = None
    url = args.url
    if url is None:
        server = make_server(r, "127.0.0.1", 0, Limits(max_wait_ms=args.max_wait_ms))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
    bodies = bodies_of(args.set)
    expected = [r.rescore(b["hyps"], b["scores"]).as_dict() for b in bodies]  # each list alone
    load = os.getloadavg()[0]
    print(f"service {url}: bundle {args.bundle}, {r.describe()}; {len(bodies)} n-best lists of {args.set}; "
          f"load average {load:.2f}")
    print("| concurrency | requests | requests/s | p50 ms | p99 ms | errors | lost | mean batch (lists) | answers equal |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for c in (int(x) for x in args.concurrency.split(",")):
        before = dict(server.batcher.stats) if server else None
        res = load_test(url, bodies, c, args.requests)
        equal = all(res["answers"][i]["hyps"] == expected[i % len(bodies)]["hyps"] for i in res["answers"])
        batch = ""
        if server:
            s = server.batcher.stats
            nb = s["batches"] - before["batches"]
            batch = f"{(s['lists'] - before['lists']) / nb:.1f}" if nb else "-"
        res.pop("answers")
        res["answers_equal"], res["mean_batch_lists"] = equal, batch
        rows.append(res)
        print(f"| {c} | {res['requests']} | {res['requests_per_s']:.1f} | {res['p50_ms']:.1f} | {res['p99_ms']:.1f} "
              f"| {res['errors']} | {res['lost']} | {batch} | {'yes' if equal else 'NO'} |", flush=True)
    if server:
        server.shutdown()
        server.batcher.close()
    if args.json:
        Path(args.json).write_text(json.dumps({"url": url, "bundle": args.bundle, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
