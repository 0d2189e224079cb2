"""The `torch.nn.init` functions the source reader reads besides `uniform_`/`normal_` (`source_inits`),
by name: the table of torch spellings (`torch_names.objects`) resolves them, so that
`nn.init.xavier_uniform_` and `from torch.nn.init import zeros_` name them."""

from __future__ import annotations

from typing import Final

# Draws: the next values of the user's run, each as torch draws it (bound or std from the fans).
DRAWN_INITS: Final = ("torch.nn.init.xavier_uniform_", "torch.nn.init.xavier_normal_",
                      "torch.nn.init.kaiming_uniform_", "torch.nn.init.kaiming_normal_")
# No draw: the values torch writes.
FIXED_INITS: Final = ("torch.nn.init.zeros_", "torch.nn.init.ones_", "torch.nn.init.constant_", "torch.nn.init.eye_")
INITS: Final = (*DRAWN_INITS, *FIXED_INITS)
