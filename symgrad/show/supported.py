"""`docs/supported.md`, generated from the rule table (`symgrad.program.rules`), the op table
(`symgrad.program.ops`) and the torch spellings (`symgrad.frontends.torch_names`); `symgrad
supported` prints it, and a test fails when the page and the tables drift apart."""

from __future__ import annotations

import sympy as sp

from ..frontends.modules import READ_AS
from ..frontends.torch_inits import DRAWN_INITS, FIXED_INITS
from ..frontends.torch_names import DRAWING, REFUSED, SPELLINGS, UNFILLED, spellings_of
from ..program.ops import OPS
from ..program.rules import RULES

RULES_CONSTRUCTED = sp.ImmutableDenseMatrix  # the row of the constructors (`torch.zeros`, `torch.empty`)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "-"


def supported_markdown() -> str:
    """`docs/supported.md`, generated from `RULES` and `OPS` (a test fails when they drift)."""
    out = [
        "# Supported SymPy nodes",
        "",
        "Generated from `symgrad/program/rules.py` and `symgrad/program/ops.py` by",
        "`symgrad supported > docs/supported.md`; do not edit by hand (`tests/program/test_rules.py` fails",
        "when this page and the tables drift apart).",
        "",
        "## SymPy nodes",
        "",
        "| SymPy | lowers to | when | domain | kinks, jumps and torch's convention | hazards | causes | your torch spelling |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rule in RULES.values():
        ops = ", ".join(f"`{o}`" for o in rule.ops) or "-"
        causes = ", ".join(f"[{c.id}](causes.md#{c.id})" for c in rule.hazard_causes) or "-"
        names = [*spellings_of(rule.cls), *(UNFILLED if rule.cls is RULES_CONSTRUCTED else ())]
        spelled = ", ".join(f"`{_cell(n)}`" for n in names) or "-"
        out.append(f"| `{rule.cls.__name__}` | {ops} | {_cell(rule.when)} | {_cell(rule.domain)} | "
                   f"{_cell(rule.nonsmooth)} | {_cell(rule.hazards)} | {causes} | {spelled} |")
    out += [
        "",
        "## Your torch spellings",
        "",
        "What `symgrad.trace` (and `symgrad check file.py:fn`) reads in a torch function, from",
        "`symgrad/frontends/torch_names.py`: each spelling becomes a node of the row named beside it.",
        "",
        "| torch spelling | kind | becomes | note |",
        "|---|---|---|---|",
    ]
    for sp_ in SPELLINGS.values():
        out.append(f"| `{_cell(sp_.name)}` | {sp_.kind} | `{sp_.rule.__name__}` | {_cell(sp_.note)} |")
    for name in UNFILLED:  # constructors without values: the tensor a draw or an initialiser fills
        out.append(f"| `{name}` | function | `{RULES_CONSTRUCTED.__name__}` | a tensor whose values torch does not set: read "
                   "only as the tensor a draw (`.uniform_`, `.normal_`) or an `nn.init` initialiser then fills |")
    if REFUSED:
        out += ["", "Refused with a sentence (fused ops without a rule row): " + ", ".join(f"`{n}`" for n in REFUSED) + "."]
    out += [
        "",
        "Random draws are data of your own call (`frontends/source_random.py`): "
        + ", ".join(f"`{n}`" for n in DRAWING if not n.startswith("Tensor."))
        + ", and `nn.Dropout` in training mode (`Tensor.uniform_` and `Tensor.normal_` change a tensor in place: a "
        "sentence). symgrad takes torch's CPU random state at the call, runs your "
        "function from it every time it runs it, reads each draw as the constant tensor of its values (dropout: "
        "`x * mask / (1 - p)` with torch's own mask), and leaves the global random state as it was; a draw with "
        "its own `generator=` or on a CUDA device is a sentence, and so is a sweep of a function that draws.",
        "",
        "Constructors without values: " + ", ".join(f"`{n}`" for n in UNFILLED) + " make a tensor read only as the "
        "tensor a draw or an initialiser then fills (its values read before that: a sentence). `nn.init`'s "
        "initialisers on a tensor the function made (`frontends/source_inits.py`): "
        + ", ".join(f"`{n}`" for n in DRAWN_INITS) + ", each the next draw of your call with its bound or std "
        "computed from fan_in/fan_out, gain, mode, nonlinearity and a as torch computes it (checked bit for bit "
        "against a draw from the same random state); " + ", ".join(f"`{n}`" for n in FIXED_INITS)
        + ", the values torch writes. On an input of the function, a sentence (torch overwrites it behind "
        "autograd's back).",
    ]
    out += [
        "",
        "## Tensors",
        "",
        "- **Elementwise.** Every scalar spelling above applies to a tensor element by element, as torch applies it",
        "  (`torch.relu(X @ W)`, `torch.where(A > 0, A, 0.0)`, `torch.maximum(A, b)`, `x ** y` with a tensor `y`,",
        "  `x.detach()`), with torch's broadcasting (a dimension of 1 repeats; a rank-1 tensor beside a matrix is a",
        "  row). In SymPy: `M.applyfunc(f)`, and `symgrad.elementwise(f, A, B, ...)` for a function of several",
        "  matrices. A comparison of tensors is a condition per element: `torch.where` reads it, and so does",
        "  arithmetic (`x * (x > 0)`, a tensor of 0s and 1s); an `if` on it is a sentence.",
        "- **Verdicts per element.** A tie, a trap or a domain edge in one element is a finding on exactly the",
        "  entries that element decides, naming the element (`element [1, 0] of its argument`).",
        "- **Shapes and data.** `x.shape`, `x.shape[0]`, `x.size(d)`, `len(x)`, `x.numel()`, `x.dim()` are Python",
        "  ints. Integer and boolean tensors are data (labels): never made floats, never differentiated; so",
        "  are Python int arguments (`n` in `range(n)`; pass 2.0 to differentiate one) and a floating tensor of",
        "  rank 3 or 4 without requires_grad (an image batch), read once reshaped to rank <= 2 (`X.reshape(-1, 784)`,",
        "  `X.view(X.shape[0], -1)`, `torch.flatten(X, 1)`, `nn.Flatten()`), given to a function, a module or a",
        "  function that takes a model, and passed on into your helpers and methods as data. Reshaped to a matrix",
        "  and used, it is a data input of the program (`X_flat`, named in the generated program): bound to your",
        "  call's values, never differentiated, never in `wrt`; so is a floating global tensor of rank 2 with more",
        "  than 64 elements, named after the global (a smaller one is the constant of its values). Data alone is",
        "  computed as torch computes it (`mask.sum()`, `y - 1`, `X / 255`, `m.float()`: still data), and in",
        "  arithmetic with a differentiated tensor (`x * mask`, `x - y`) an integer or boolean tensor is promoted",
        "  to its floating dtype, as torch does (not in `@`, where torch raises: `y.double()` first).",
        "- **Indexing.** `x[i]`, `x[-1]`, `x[1:]`, `X[i, j]`, `X[i]`, `X[:, j]`, slices with constant bounds,",
        "  and a gather by labels, `X[range(n), y]`: the elements picked, each with its own derivative; `x[mask]`",
        "  with a boolean data mask (`x[m]`, `x[y > 0]`) as a rank-1 tensor, as torch (`x[x > 0]`: a sentence).",
        "- **Control flow.** A function of tensors with `if`, `while` or `for` is read as a `Program` whose",
        "  variables may be matrices (a loop's tensor keeps its shape); `if`/`while` test numbers computed from",
        "  tensors (`b.norm() < 1000`, `b.sum() > 0`, `.item()`). In SymPy: `Program` inputs and variables may",
        "  be `MatrixSymbol`s.",
        "- **Modules.** A `torch.nn.Module` is the function of its parameters its `forward` computes:",
        "  `symgrad.trace(model, X)`, `symgrad.compare(model, at={\"input\": X})` (data named after `forward`'s",
        "  parameters), and a function that takes one, `symgrad.compare(loss, at={\"model\": model, ...},",
        "  wrt=[\"model\"])` (a module's name in `wrt` means its parameters). Each parameter that requires grad is",
        "  an input named by its path (`fc1.weight`, `0.bias`; `model.fc1.weight` under an argument), compared by",
        "  default; frozen parameters and buffers are constants; tied parameters are one input. A leaf tensor",
        "  with requires_grad kept as a plain attribute (D2L's `self.w = torch.zeros(2, 1, requires_grad=True)`)",
        "  is an input like a parameter, named by its attribute path (`w`, `net.w`). A submodule whose",
        "  `forward` is your own is read from its own source (its lines cited); torch's own modules read as their",
        f"  functional forms: {READ_AS}. Any other module is a sentence naming its class. The model is left as",
        "  it was (values, requires_grad, `.grad`, buffers, training mode, the random state).",
        "",
        "## Your own torch.autograd.Function",
        "",
        "`MyFn.apply(x, ...)` is read from the class's source: the mathematics is `forward`'s (old style",
        "`forward(ctx, ...)`, or `forward(...)` with `setup_context(ctx, inputs, output)`); the executed side is your",
        "`backward`, read as one formula per input of `grad_output` and what forward handed it",
        "(`ctx.save_for_backward`, `ctx.saved_tensors`, `ctx.k = k`, `ctx.needs_input_grad`, `if",
        "ctx.needs_input_grad[k]:`, `None` for a number; `(x > 0)` used as a number is its 0 or 1), evaluated",
        "exactly; autograd runs your class. A returned gradient that is not the derivative of forward is",
        "[custom-backward](causes.md#custom-backward), citing its line. Numbers (tensors of rank 0) and tensors",
        "element by element; any other `if` or loop in `backward` is a sentence, and so are second derivatives.",
        "The fidelity check runs backward as symgrad read it, beside yours, bit for bit.",
    ]
    out += [
        "",
        "## torch ops",
        "",
        "The executed side uses each op's backward formula in exact arithmetic, with torch's",
        "convention where the op has a kink or a jump. Exact values come from python-flint: rationals",
        "as `fmpq`, every function of this table as an Arb ball (`arb.exp`, `arb.erf`, `arb.atan2`, ...);",
        "no row needs mpmath. SymPy's own `N` is used only for a constant outside the table (such as",
        "`EulerGamma`), as a ball whose radius covers its error.",
        "",
        "An op marked *shortcut* is smooth in the mathematics, but torch's kernel takes a special case",
        "the mathematics does not have; the symbolic side follows the mathematics there, and",
        "`compare` names the difference (a control-flow finding at the op's line).",
        "",
        "| op | torch spelling | non-smooth | torch's convention there |",
        "|---|---|---|---|",
    ]
    for op in OPS.values():
        kind = op.nonsmooth or ("shortcut" if op.departs is not None else "-")
        out.append(f"| `{op.name}` | `{_cell(op.torch)}` | {kind} | {_cell(op.convention or op.shortcut)} |")
    return "\n".join(out) + "\n"
