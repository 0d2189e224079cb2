"""Layer 7, show: what a person reads.

Holds the text, markdown and HTML reports and the plots (`report`), the JSON-safe dicts and data
frames (`data`), and the command line (`cli`, which nothing imports). `report` and `data`
register their renderers with `symgrad.base.rendering` when they are imported, which
`import symgrad` does: that is the seam through which the records of the lower layers render
themselves. May import every layer below it.
"""
