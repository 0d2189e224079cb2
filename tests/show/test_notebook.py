"""The notebook views (`_repr_html_` of `Comparison` and `Sweep`): checked with a parser, and
rendered in a real browser (headless Chromium) where one is installed."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import symgrad as sg

x, y = sp.symbols("x y")
TRAP = sp.Piecewise((sp.sqrt(x), x > 0), (0, True))


class _Page(HTMLParser):
    """Every element: (tag, attributes, its text), and whether tags nest."""

    VOID = {"br", "img", "hr", "meta", "input", "link"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict[str, str | None], list[str]]] = []
        self.elements: list[tuple[str, dict[str, str | None], str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            self.elements.append((tag, dict(attrs), ""))
        else:
            self.stack.append((tag, dict(attrs), []))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1][0] == tag, f"</{tag}> closes {self.stack[-1][0] if self.stack else None}"
        name, attrs, text = self.stack.pop()
        self.elements.append((name, attrs, "".join(text)))
        if self.stack:
            self.stack[-1][2].append("".join(text))

    def handle_data(self, data: str) -> None:
        if self.stack:
            self.stack[-1][2].append(data)

    def having(self, cls: str) -> list[tuple[str, dict[str, str | None], str]]:
        return [e for e in self.elements if cls in (e[1].get("class") or "").split()]


def page(text: str) -> _Page:
    p = _Page()
    p.feed(text)
    p.close()
    assert p.stack == [], [t for t, _, _ in p.stack]
    return p


def test_comparison_view_has_style_values_cause_hint_program_and_folded_path() -> None:
    c = sg.compare(TRAP, at={x: -1.0}, branches="where")
    raw = c._repr_html_()
    p = page(raw)
    assert [t for t, _, _ in p.elements].count("style") == 1
    style = next(text for t, _, text in p.elements if t == "style")
    assert ".symgrad" in style and "rgba(" in style  # translucent colours: light and dark themes
    e = c.entries[0]
    cells = [text for t, _, text in p.elements if t == "td"]
    assert cells == ["x", "0", "0", "nan", "nan-trap"]  # the three values side by side, then the cause
    badge = p.having("symgrad-nan-trap")[0]
    assert "background:" in (badge[1].get("style") or "")
    assert any(e.explanation.replace("`", "") in text for _, _, text in p.having("symgrad-explanation"))
    assert any(e.hint.replace("`", "") in text for _, _, text in p.having("symgrad-hint"))
    assert [text for _, _, text in p.having("symgrad-meaning")] == [f"What nan-trap means. {sg.Cause.NAN_TRAP.meaning}"]
    cited = p.having("symgrad-cited")
    assert [a["data-line"] for _, a, _ in cited] == [str(e.line)]
    details = [(a, text) for t, a, text in p.elements if t == "details"]
    assert [a.get("class") for a, _ in details] == ["symgrad-path", "symgrad-backward"]
    assert details[0][1].startswith("executed path") and "line 10" in details[0][1]
    assert "href=" not in raw


def test_an_agreeing_comparison_says_so() -> None:
    p = page(sg.compare(x**2, at={x: 3.0})._repr_html_())
    assert p.having("symgrad-comparison")[0][1]["data-cause"] == "agree"
    assert p.having("symgrad-explanation")[0][2].startswith("The derivative of the mathematics")
    assert p.having("symgrad-meaning") == [] and p.having("symgrad-cited") == []


def test_sweep_view_embeds_its_picture_and_lists_worst_points_with_point_and_cause() -> None:
    s = sg.sweep(TRAP, over={x: (-2, 2)}, n=401, branches="where")
    p = page(s._repr_html_())
    (img,) = [a for t, a, _ in p.elements if t == "img"]
    src = img["src"] or ""
    assert src.startswith("data:image/png;base64,")
    assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "nan-trap 200" in (img["alt"] or "")
    worst = [text for t, a, text in p.elements if t == "li" and a == {} and text.startswith("at ")]
    assert len(worst) == len(s.worst[:5]) and len(set(worst)) == len(worst)  # each once
    for text, c in zip(worst, s.worst):
        assert text.startswith(f"at x = {float(c.point[x]):.6g}") and c.cause.id in text
    causes_listed = {c.cause.id for c in s.worst}
    assert causes_listed == {"kink", "nan-trap"}
    meanings = [text for _, _, text in p.having("symgrad-meaning")]
    assert [m.split(" means.")[0] for m in meanings] == ["What kink", "What nan-trap"]


def test_sweep_view_of_a_grid_and_of_three_inputs() -> None:
    s = sg.sweep(sp.Max(x, y), over={x: (-1, 1), y: (-1, 1)}, n=21)
    assert [t for t, _, _ in page(s._repr_html_()).elements].count("img") == 1
    z = sp.Symbol("z")
    many = sg.sweep(x * y * z, over={x: (-1, 1), y: (-1, 1), z: (-1, 1)}, n=3)
    p = page(many._repr_html_())
    assert not [t for t, _, _ in p.elements if t == "img"]
    assert "hold some fixed in over to draw it" in " ".join(text for t, _, text in p.elements if t == "p")


# ---------------------------------------------------------------- a real browser

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def _chromium(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    assert BROWSER is not None
    return subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp / 'profile'}",
         *args], capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp)})


@pytest.mark.skipif(BROWSER is None, reason="no headless browser installed (Debian: apt-get install -y chromium)")
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_both_views_render_in_a_real_browser(tmp_path: Path, theme: str) -> None:
    from matplotlib.image import imread

    c = sg.compare(TRAP, at={x: -1.0}, branches="where")
    s = sg.sweep(sp.Max(x, y), over={x: (-1, 1), y: (-1, 1)}, n=21)
    body = "background:#111;color:#ddd" if theme == "dark" else "background:#fff;color:#111"
    doc = tmp_path / "views.html"
    doc.write_text(f'<!doctype html><html><head><meta charset="utf-8"></head><body style="{body}">'
                   f"{c._repr_html_()}{s._repr_html_()}</body></html>")
    shot = tmp_path / "shot.png"
    run = _chromium([f"--screenshot={shot}", "--window-size=1200,900", doc.as_uri()], tmp_path)
    assert shot.exists(), run.stderr[-2000:]
    image = imread(str(shot))[:, :, :3]
    assert image.shape[:2] == (900, 1200)
    # Not blank: many distinct colours (text, badges, the highlighted line, the picture).
    colours = np.unique((image.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert len(colours) > 50
    dom = _chromium(["--dump-dom", doc.as_uri()], tmp_path).stdout
    for text in ("nan-trap", "0 times inf or NaN in the backward pass", "What nan-trap means.", "executed path",
                 "sqrt_x = torch.sqrt(x)", "symgrad sweep", "1,681" if s.points.shape[0] == 1681 else "441 points",
                 "data:image/png;base64,", "worst points"):
        assert text in dom, text
