"""`python -m monitoring [--config FILE] [--host H] [--port P]`: run the monitoring service."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .app import init_app
from .log_escaping import configure as configure_logging
from .serving import run
from .settings import SettingsError, load_settings


def _port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (1-65535)")
    return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monitoring",
        description="Monitoring service: scrapes agents, evaluates alert rules, serves /metrics and /api/v1. "
                    "Every setting can also come from MONITORING_<NAME> environment variables "
                    "(nested with __, e.g. MONITORING_ALERTMANAGER__URL).")
    parser.add_argument("--config", type=Path, help="settings file (YAML or JSON); optional")
    parser.add_argument("--host", help="listen address (default 127.0.0.1, or MONITORING_HOST); beats the file "
                                       "and the environment, before credentials are checked")
    parser.add_argument("--port", type=_port, help="listen port (default 8000, or MONITORING_PORT)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    configure_logging(args.log_level)  # every record escaped: request data can't forge log lines
    try:
        settings = load_settings(args.config, host=args.host, port=args.port)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    run(init_app(settings), settings.host, settings.port, settings.idle_timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
