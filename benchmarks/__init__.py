"""painterly's benchmarks: speed and quality side by side with the baselines (``python -m benchmarks``).

Separate from the tests on purpose: speed is measured here, never in timed unit tests. See
``benchmarks/RESULTS.md`` for the figures and how each was taken.
"""
