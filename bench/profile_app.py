"""cProfile one API process (one uvicorn worker, same app as `stepcoin serve`) until SIGINT.

    DATABASE_URL=... STEPCOIN_JWT_SECRET=... python bench/profile_app.py --port 18800 --out p.prof
    (drive it with bench/load.py, then kill -INT <pid>; print with --print p.prof)

cProfile slows Python down (roughly 1.5-2x), so use the shares, not the absolute times. The
process logs as `stepcoin serve` does (an access line per request: redirect stderr, or set
STEPCOIN_ACCESS_LOG=false to profile without it).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=18800)
    parser.add_argument("--out", default="api.prof")
    parser.add_argument("--print", dest="show", help="print the top of a saved profile")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    if args.show:
        stats = pstats.Stats(args.show)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)
        return
    os.environ["STEPCOIN_RUN_WORKER_IN_SERVE"] = "false"
    import uvicorn

    from stepcoin.config import get_settings

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        uvicorn.run(
            "stepcoin.main:create_served_app",
            factory=True,
            host="127.0.0.1",
            port=args.port,
            workers=1,
            log_config=None,
            access_log=False,
            proxy_headers=True,
            forwarded_allow_ips=get_settings().forwarded_allow_ips,
            server_header=False,
        )
    finally:
        profiler.disable()
        profiler.dump_stats(args.out)


if __name__ == "__main__":
    main()
