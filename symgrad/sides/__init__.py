"""Layer 3, sides: the three derivatives of a `Program` at a point.

Holds the lowering to readable torch (`lowering`, which writes the program), its IR records and
`LoweredProgram` (`ir`), which op each SymPy node lowers to (`selection`), how ops, constants,
names and comments are spelled in the generated text (`spelling`), the symbolic side
(`symbolic`), the executed path and its exact derivative (`executed`), the runs of torch's
autograd (`autograd`), the vectorised run of a lowered program over a batch of points (`batch`),
and the backward pass written out step by step (`backward`). May import `symgrad.program` and
`symgrad.base`.
"""
