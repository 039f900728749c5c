"""A scoring service for a rescorer bundle: JSON over HTTP, with dynamic batching across requests.

Endpoints (standard library ``http.server``, one thread per connection):

* ``GET /health``: ``{"status": "ok", "stream": ..., "backend": ..., "queued": N, "in_flight": M,
  ...}`` (requests waiting, requests being scored, counts so far);
* ``POST /rescore``: one n-best list ``{"hyps": [...], "scores": [...]}`` (``scores``: first-pass
  log scores, higher is better; with an acoustic scale in the bundle's weights, ``ac_cost`` and
  ``graph_cost`` instead), or several, ``{"nbest": [{"hyps": ..., "scores": ...}, ...]}``. The
  answer: per list ``{"order", "hyps", "totals", "student", "first_pass"}`` (``order[j]`` is the
  input position of the j-th best; non-finite totals are ``null``), as the object itself for one
  list and as ``{"results": [...]}`` for several.

Batching: every request's lists go into one queue; a worker takes the first waiting request and
adds the next ones until ``max_batch_lists`` lists or ``max_wait_ms`` have passed, scores all
their hypotheses with the student in one call and answers each request. Limits, each answered
with a status and a one-line JSON ``{"error": ...}`` instead of a crash: a body over
``max_request_bytes`` or more than ``max_lists`` lists or ``max_hyps`` hypotheses in a list: 413;
a full queue (``max_queue`` requests waiting): 503; malformed JSON or a malformed list (the
problem named, e.g. ``nbest[2]: 3 scores for 4 hypotheses``): 400; an unknown path: 404; a failure
of the scorer itself: 500 (logged with its traceback).
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
import traceback
from concurrent.futures import Future
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rescore.log import get_logger

log = get_logger(__name__)


@dataclass
class Limits:
    max_request_bytes: int = 1_000_000
    max_lists: int = 256  # n-best lists in one request
    max_hyps: int = 1000  # hypotheses in one list
    max_queue: int = 256  # requests waiting for the worker
    max_batch_lists: int = 64  # lists scored together
    max_wait_ms: float = 5.0  # how long the worker waits for more requests to batch
    timeout_s: float = 60.0  # how long a request waits for its answer


class RequestError(Exception):
    """A request the service answers with ``status`` and ``message``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _numbers(value, where: str, n: int) -> list[float]:
    if not isinstance(value, list):
        raise RequestError(400, f"{where}: must be a list of numbers")
    if len(value) != n:
        raise RequestError(400, f"{where}: {len(value)} values for {n} hypotheses")
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            if v is None:  # JSON has no NaN: null is a missing (non-finite) score, ranked last
                out.append(math.nan)
                continue
            raise RequestError(400, f"{where}[{i}]: not a number ({json.dumps(v)[:40]})")
        out.append(float(v))
    return out


def parse_request(body: bytes, limits: Limits, kaldi: bool) -> tuple[list[tuple], bool]:
    """The n-best lists of a request body, and whether it held one list (not ``nbest``)."""
    try:
        obj = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise RequestError(400, f"body is not UTF-8: {e}") from None
    except json.JSONDecodeError as e:
        raise RequestError(400, f"body is not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise RequestError(400, "body must be a JSON object with 'hyps' and 'scores', or 'nbest'")
    single = "nbest" not in obj
    items = [obj] if single else obj["nbest"]
    if not isinstance(items, list) or not items:
        raise RequestError(400, "'nbest' must be a non-empty list of n-best lists")
    if len(items) > limits.max_lists:
        raise RequestError(413, f"{len(items)} n-best lists in one request (at most {limits.max_lists})")
    lists = []
    for u, item in enumerate(items):
        where = "request" if single else f"nbest[{u}]"
        if not isinstance(item, dict):
            raise RequestError(400, f"{where}: must be an object with 'hyps' and 'scores'")
        hyps = item.get("hyps")
        if not isinstance(hyps, list) or not hyps:
            raise RequestError(400, f"{where}.hyps: must be a non-empty list of strings")
        if len(hyps) > limits.max_hyps:
            raise RequestError(413, f"{where}: {len(hyps)} hypotheses (at most {limits.max_hyps})")
        bad = [i for i, h in enumerate(hyps) if not isinstance(h, str)]
        if bad:
            raise RequestError(400, f"{where}.hyps[{bad[0]}]: not a string")
        if kaldi:
            for k in ("ac_cost", "graph_cost"):
                if k not in item:
                    raise RequestError(400, f"{where}: the bundle's weights set an acoustic scale: give '{k}'")
            ac = _numbers(item["ac_cost"], f"{where}.ac_cost", len(hyps))
            graph = _numbers(item["graph_cost"], f"{where}.graph_cost", len(hyps))
            scores = _numbers(item.get("scores", [0.0] * len(hyps)), f"{where}.scores", len(hyps))
            lists.append((hyps, scores, ac, graph))
        else:
            if "scores" not in item:
                raise RequestError(400, f"{where}: no 'scores' (the first-pass scores of the hypotheses)")
            lists.append((hyps, _numbers(item["scores"], f"{where}.scores", len(hyps))))
    return lists, single


class Batcher:
    """Collects requests into batches for ``rescorer.rescore_many`` on one worker thread."""

    def __init__(self, rescorer, limits: Limits):
        self.rescorer, self.limits = rescorer, limits
        self.queue: queue.Queue = queue.Queue(maxsize=limits.max_queue)
        self.stats = {"requests": 0, "lists": 0, "batches": 0, "rejected_full": 0}
        self.in_flight = 0  # requests in the batch being scored
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._work, name="rescore-batcher", daemon=True)
        self.thread.start()

    def submit(self, lists: list[tuple]) -> Future:
        fut: Future = Future()
        try:
            self.queue.put_nowait((lists, fut))
        except queue.Full:
            self.stats["rejected_full"] += 1
            raise RequestError(503, f"the queue is full ({self.limits.max_queue} requests waiting): retry later") \
                from None
        return fut

    def close(self) -> None:
        self._stop.set()
        self.queue.put(None)
        self.thread.join(timeout=10)

    def _work(self) -> None:
        while not self._stop.is_set():
            first = self.queue.get()
            if first is None:
                return
            batch = [first]
            n = len(first[0])
            deadline = time.monotonic() + self.limits.max_wait_ms / 1000.0
            while n < self.limits.max_batch_lists:
                wait = deadline - time.monotonic()
                try:
                    item = self.queue.get(timeout=max(0.0, wait)) if wait > 0 else self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._stop.set()
                    break
                batch.append(item)
                n += len(item[0])
            self._run(batch)

    def _run(self, batch: list) -> None:
        lists = [lst for lists, _ in batch for lst in lists]
        self.in_flight = len(batch)
        try:
            results = self.rescorer.rescore_many(lists)
            if len(results) != len(lists):  # counts in = counts out
                raise AssertionError(f"{len(lists)} lists in, {len(results)} results")
        except Exception as e:  # the scorer failed: every request of the batch gets a 500
            log.error("scoring a batch of %d lists failed:\n%s", len(lists), traceback.format_exc())
            self.in_flight = 0
            for _, fut in batch:
                fut.set_exception(e)
            return
        self.in_flight = 0
        self.stats["batches"] += 1
        at = 0
        for lists_of, fut in batch:
            fut.set_result(results[at:at + len(lists_of)])
            at += len(lists_of)
            self.stats["requests"] += 1
            self.stats["lists"] += len(lists_of)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # the listen backlog: the default 5 resets connections when dozens of clients connect at once
    request_queue_size = 1024


def make_server(rescorer, host: str, port: int, limits: Limits | None = None) -> ThreadingHTTPServer:
    """An HTTP server (not yet serving: call ``serve_forever``) and its batcher (``server.batcher``)."""
    limits = limits or Limits()
    batcher = Batcher(rescorer, limits)
    kaldi = rescorer.weights.acwt is not None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm holds
        # the body until the client's delayed ACK of the headers (~40 ms per request)
        disable_nagle_algorithm = True

        def log_message(self, fmt, *args):  # the access log at debug level, in our format
            log.debug("%s %s", self.address_string(), fmt % args)

        def _send(self, status: int, obj) -> None:
            data = json.dumps(obj, allow_nan=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            self._send(status, {"error": message, "status": status})

        def do_GET(self):
            if self.path.rstrip("/") != "/health":
                return self._error(404, f"unknown path {self.path}: GET /health or POST /rescore")
            self._send(200, {"status": "ok", "stream": rescorer.label, "backend": rescorer.backend_name,
                             "queued": batcher.queue.qsize(), "in_flight": batcher.in_flight, **batcher.stats})

        def do_POST(self):
            if self.path.rstrip("/") != "/rescore":
                self._drain()
                return self._error(404, f"unknown path {self.path}: POST /rescore")
            try:
                length = self.headers.get("Content-Length")
                if length is None:
                    raise RequestError(411, "a Content-Length header is required")
                try:
                    size = int(length)
                except ValueError:
                    raise RequestError(400, f"bad Content-Length {length!r}") from None
                if size > limits.max_request_bytes:
                    self.close_connection = True  # the body is not read
                    raise RequestError(413, f"request of {size} bytes (at most {limits.max_request_bytes})")
                body = self.rfile.read(size)
                lists, single = parse_request(body, limits, kaldi)
                fut = batcher.submit(lists)
                try:
                    results = fut.result(timeout=limits.timeout_s)
                except TimeoutError:
                    raise RequestError(503, f"no answer within {limits.timeout_s:g} s: the service is overloaded") \
                        from None
                except Exception as e:
                    raise RequestError(500, f"scoring failed: {type(e).__name__}: {e}") from None
                out = [r.as_dict() for r in results]
                self._send(200, out[0] if single else {"results": out})
            except RequestError as e:
                self._error(e.status, e.message)

        def _drain(self) -> None:
            try:
                size = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                size = 0
            if 0 < size <= limits.max_request_bytes:
                self.rfile.read(size)

    server = _Server((host, port), Handler)
    server.batcher = batcher
    return server
