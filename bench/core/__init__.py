"""The core: the case table and spec files, the measuring loop, statistics, errors.

Imports no torch and nothing else of the suite (a lint contract), so every
layer above, and the reports, can rely on it anywhere.
"""
