"""Layer 5, verdict: the three sides compared, every disagreement given a cause.

Its modules, bottom up (each imports only those above it in this list):

- `records.py`: the `Comparison` and `Entry` records `compare` returns (they render through
  `symgrad.base.rendering`), and the backward pass they compute on request.
- `point.py`: reading the point `at`, and the exact sides (path, executed and symbolic
  derivatives in ball arithmetic, at a precision raised until certain).
- `findings.py`: what the two halves of the classifier share: the `Context` of one comparison
  and seed, the `Finding` each returns, how a number is written.
- `structural.py`: structural causes (domain, graph break, detach, control flow, jump, kink),
  read from the executed path: where the symbolic side and the executed side differ.
- `floating.py`: floating-point causes (NaN trap, overflow, rounding), read from the backward
  pass: where the executed side and autograd differ.
- `hints.py`: the hints that depend on where a finding sits, not only on its node's rule row
  (the double where for a branch `torch.where` does not keep, `1 - sigmoid(u)`, `u*log(u)` at 0).
- `table.py`: a comparison's entries held as arrays (`EntryTable`): cause codes, float values,
  the records of the entries that do not plainly agree; `Comparison.entries` built from it on
  first read, the reports reading it without building every entry.
- `grouping.py`: the entries ordered and grouped for the reports (counts, findings, input tensors).
- `compare.py`: the entry points (`compare`, `compare_reading`, `compare_function`,
  `rounding_only`), the assembly of each entry from both halves' findings, the Hessian.

May import every layer below it (front ends, sides, program, base); records render through
`symgrad.base.rendering`, never by importing the show layer.
"""
