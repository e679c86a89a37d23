"""Analysis of finished runs: verdicts between runs, change points across runs, agreement
of two runs. Reads records only: no torch, no models (a lint contract)."""
