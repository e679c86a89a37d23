"""Records: the versioned formats on disk (results CSV, samples, run JSON) and merging them.

The only code that writes or reads a results file; torch-free.
"""
