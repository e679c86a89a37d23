"""``python -m bench``: the command line (its shape is in docs/architecture.md).

Exit codes: 0 success; 1 a regression found, or some cases failed; 2 bad input
(one line naming the argument and the bad value, no traceback); 130 interrupted.
Each subcommand is a module of ``bench.commands`` with ``add_parser(sub)`` and
``run(args) -> int``; this module only builds the parser from them and dispatches.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import signal
import sys
from collections.abc import Sequence
from types import ModuleType

from bench.core.errors import UsageError

EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130
# Name -> module, in --help's order. A command's module imports torch only when it runs.
COMMANDS = {
    "run": "bench.commands.run",
    "report": "bench.commands.report",
    "merge": "bench.commands.merge",
    "compare": "bench.commands.compare",
    "profile": "bench.commands.profile",
    "history": "bench.commands.history",
    "env": "bench.commands.env",
    "validate": "bench.commands.validate",
    "ci": "bench.commands.ci",
}


class Parser(argparse.ArgumentParser):
    """argparse, but bad input is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def version() -> str:
    try:
        return importlib.metadata.version("rnnbench")
    except importlib.metadata.PackageNotFoundError:  # a plain checkout, not installed
        return "unknown (not installed)"


def command(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name])


def build_parser(prog: str = "python -m bench") -> Parser:
    parser = Parser(prog=prog, description="Benchmark PyTorch LSTM and GRU models.")
    parser.add_argument("--version", action="version", version=f"rnnbench {version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in COMMANDS:
        command(name).add_parser(sub)
    return parser


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None, prog: str = "python -m bench") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        # args.argv: the command line as given, for a resume hint that repeats it.
        args = build_parser(prog).parse_args(argv, namespace=argparse.Namespace(argv=argv))
        if getattr(args, "model_path", None):
            from bench.measure.usermodels import add_model_paths

            add_model_paths(args.model_path)
        signal.signal(signal.SIGTERM, _raise_interrupt)  # a job's cancellation ends like Ctrl-C
        return command(args.command).run(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def console_main() -> int:
    """The ``rnnbench`` console script."""
    return main(prog="rnnbench")


if __name__ == "__main__":
    sys.exit(main())
