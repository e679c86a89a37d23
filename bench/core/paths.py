"""Where the suite's own files are."""

from pathlib import Path

# The checkout this code runs from: the CI suite (benchmarks/), baselines and git live here.
# (In an installed copy it is the folder above the package, which holds none of them.)
REPO_ROOT = Path(__file__).resolve().parents[2]
