"""Serve a rescorer bundle over HTTP: JSON n-best lists in, new order and scores out.

    python -m rescore.bin.serve --bundle BUNDLE [--host 127.0.0.1] [--port 8080]
        [--backend torch|onnx] [--quantize none|int8] [--num_threads N] [--max_batch_lists 64]
        [--max_wait_ms 5] [--max_request_bytes 1000000] [--max_lists 256] [--max_hyps 1000]
        [--max_queue 256]

``GET /health`` says the service is up; ``POST /rescore`` takes one n-best list
``{"hyps": ["w1 w2", ...], "scores": [-12.5, ...]}`` or several ``{"nbest": [{...}, ...]}`` and
answers with each list's ``order`` (input positions, best first), ``hyps``, ``totals``,
``student`` and ``first_pass`` scores, the decisions of ``rescore.Rescorer`` (the ``rescore``
step's with the bundle's weights). Concurrent requests are scored together (dynamic batching:
up to ``--max_batch_lists`` lists, waiting at most ``--max_wait_ms`` for more). Oversized requests
get 413, a full queue 503, malformed input 400 with the problem named (see
:mod:`rescore.rescoring.service`). Example::

    curl -s localhost:8080/rescore -d '{"hyps": ["turn the light on", "turn the lights on"], "scores": [-20.1, -20.4]}'
"""

from __future__ import annotations

from rescore.bin.common import log, nonneg_float, nonneg_int, parser, port_number, positive_int, run
from rescore.exceptions import InputError

MODULE = "rescore.bin.serve"


def get_parser():
    p = parser(__doc__)
    p.add_argument("--bundle", required=True, help="rescorer bundle (export_rescorer's --out)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=port_number, default=8080, help="port (default 8080; 0: any free port)")
    p.add_argument("--backend", choices=["torch", "onnx"], default="torch", help="student backend (default torch)")
    p.add_argument("--quantize", choices=["none", "int8"], default="none", help="int8 ONNX graph (--backend onnx)")
    p.add_argument("--num_threads", type=nonneg_int, default=0, help="CPU threads for the student (default: all)")
    p.add_argument("--max_batch_lists", type=positive_int, default=64, help="n-best lists scored together")
    p.add_argument("--max_wait_ms", type=nonneg_float, default=5.0, help="wait for more requests to batch (ms)")
    p.add_argument("--max_request_bytes", type=positive_int, default=1_000_000, help="larger bodies get 413")
    p.add_argument("--max_lists", type=positive_int, default=256, help="n-best lists per request (more: 413)")
    p.add_argument("--max_hyps", type=positive_int, default=1000, help="hypotheses per list (more: 413)")
    p.add_argument("--max_queue", type=positive_int, default=256, help="requests waiting (more: 503)")
    return p


def body(args) -> int:
    import rescore
    from rescore.rescoring.service import Limits, make_server

    if not 0 <= args.port <= 65535:
        raise InputError(None, None, f"--port must be in 0..65535, got {args.port}")
    if args.max_wait_ms < 0 or args.num_threads < 0:
        raise InputError(None, None, "--max_wait_ms and --num_threads must be >= 0")
    try:
        r = rescore.Rescorer.from_pretrained(args.bundle, backend=args.backend, quantize=args.quantize,
                                             num_threads=args.num_threads)
    except ImportError as e:
        raise InputError(None, None, str(e)) from None
    limits = Limits(max_request_bytes=args.max_request_bytes, max_lists=args.max_lists, max_hyps=args.max_hyps,
                    max_queue=args.max_queue, max_batch_lists=args.max_batch_lists, max_wait_ms=args.max_wait_ms)
    try:
        server = make_server(r, args.host, args.port, limits)
    except OSError as e:
        raise InputError(None, None, f"cannot listen on {args.host}:{args.port}: {e}") from None
    host, port = server.server_address[:2]
    log.info(f"serving {args.bundle} ({r.describe()}) on http://{host}:{port} (POST /rescore, GET /health)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("stopped")
    finally:
        server.server_close()
        server.batcher.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(body, get_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
