"""`make bench`: the benchmark suite (issue 9). Run with ``python -m bench``."""
