"""``python -m jupyter_mlops.serving --config .mlops/deployments/<id>/deployment.json``"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from .config_file import read_config
from .follow import follow_alias


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jupyter_mlops.serving")
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--follow-interval", type=float, default=5.0)
    args = parser.parse_args(argv)

    import uvicorn

    from .app import create_app
    from .limits import uvicorn_options

    app = create_app(args.config.resolve())
    stop = threading.Event()
    if read_config(args.config).get("follow"):
        threading.Thread(
            target=follow_alias,
            args=(args.config.resolve(), args.follow_interval, stop),
            name="follow-alias",
            daemon=True,
        ).start()
    try:
        # bounded headers, bodies and connections: a slow or greedy client cannot hold the server
        uvicorn.run(app, host=args.host, port=args.port, **uvicorn_options())
    finally:
        stop.set()


if __name__ == "__main__":
    main()
