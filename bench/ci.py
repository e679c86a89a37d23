"""``python -m bench.ci``: the same as ``python -m bench ci`` (kept for existing workflows)."""

import sys

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main(["ci", *sys.argv[1:]]))
