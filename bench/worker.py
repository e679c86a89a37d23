"""``python -m bench.worker``: the stable entry point of the ``--against`` worker.

``bench ci --against REF`` starts this module in the other tree, which may be
older or newer than this one; the path stays put while the code lives in
``bench.execution.worker``.
"""

from bench.execution.worker import serve

if __name__ == "__main__":
    serve()
