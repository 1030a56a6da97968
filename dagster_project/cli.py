"""`b24wh`: the project's command line."""

from __future__ import annotations

import argparse
import subprocess
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="b24wh", description="Bitrix24 sales-analytics warehouse")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("simulator", help="run a local Bitrix24 portal (see `b24wh simulator --help`)",
                        add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "simulator":
        # The simulator is its own program: the pipeline side never imports it.
        return subprocess.call([sys.executable, "-m", "simulator", *rest])
    parser.error(f"unknown command {args.command}")
    return 2
