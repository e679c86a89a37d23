"""Execution: which process measures which case, and when.

Sweeps and their rounds of fresh worker processes, ``--isolate`` children,
workers of another tree for ``--against``, callgrind counters and shard
launches; the messages between these processes are in ``messages``.
"""
