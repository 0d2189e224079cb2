"""Layer 6, tools: what stands on verdicts.

Holds sweeps over many points (`sweep`), the test helper behind `symgrad.testing` (`testing`),
the training-step watcher behind `symgrad.pitfalls` (`pitfalls`), and `trace` with its `Traced`
record, whose `compare` and `sweep` methods stand on the verdict and on `sweep` (`traced`).
May import every layer below it; never the show layer (records render through
`symgrad.base.rendering`).
"""
