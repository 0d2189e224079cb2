"""The training-step mistakes of D2L's preliminaries, caught at the user's own line.

    with sg.pitfalls.watch([w, b]) as watcher:      # a TorchFunctionMode plus snapshots of .grad
        train_one_step()
    watcher.findings                                # a tuple of Finding records

    sg.pitfalls.check_step(step, [w, b])            # runs step() twice; returns the findings

The public path of the watcher; it is built in `symgrad.tools.pitfalls`, whose docstring lists
the kinds of finding and how each is found.
"""

from __future__ import annotations

from .tools.pitfalls import Bin as Bin
from .tools.pitfalls import Calibration as Calibration
from .tools.pitfalls import Finding as Finding
from .tools.pitfalls import Kind as Kind
from .tools.pitfalls import Watcher as Watcher
from .tools.pitfalls import calibration as calibration
from .tools.pitfalls import check_step as check_step
from .tools.pitfalls import watch as watch

__all__ = ["Bin", "Calibration", "Finding", "Kind", "Watcher", "calibration", "check_step", "watch"]
