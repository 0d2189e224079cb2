"""Layer 1, base: what every other layer speaks in.

Holds the errors and their message texts (`errors`), the causes with their titles, explanation
and hint templates (`causes`), and the one seam through which a record renders itself in the
show layer (`rendering`). May import nothing of symgrad's; every layer above may import it.
"""
