"""Measuring one case in this process: build it, check it, time it, and the peaks it is set against."""
