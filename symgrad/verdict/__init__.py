"""Layer 5, verdict: the three sides compared, every disagreement given a cause.

Holds `compare` and its `Comparison`/`Entry` records. Structural causes (detach, graph break,
control flow, kink, jump, domain) are read from the executed path; floating-point causes (NaN
trap, overflow, rounding) from the backward pass. May import every layer below it (front ends,
sides, program, base); records render through `symgrad.base.rendering`, never by importing the
show layer.
"""
