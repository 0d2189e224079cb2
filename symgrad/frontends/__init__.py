"""Layer 4, front ends: what the user wrote, turned into a `Program`.

Holds the safe string parser of the command line (`parse`), the table of torch spellings
(`torch_names`), the reader of a torch function's source (`source`: the entry point and the
statements; `source_expressions`: operators, comparisons and conditions; `source_calls`: names,
attributes and calls through the spelling table; `source_state`: what the three share while
reading), the recorder of a real run (`recorder`), and the fidelity check and path mode that
decide which reading is trusted (`trace`). They sit above the sides because the fidelity check
lowers and runs the translation.
May import `symgrad.sides`, `symgrad.program` and `symgrad.base`.
"""
