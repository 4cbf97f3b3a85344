#!/usr/bin/env python3
"""Renders a run's curves from its TensorBoard event file to an SVG a person can open in any
browser, with no plotting library: training and evaluation loss, learning rate, gradient norm and
tokens/s, one panel each, with axis ticks at round values, a grid, and numbers written as people
read them (12.2k, 3e-4).

usage: tools/plot_run.py RUN_DIR [OUT.svg]   (default: RUN_DIR/curves.svg)
"""
import glob
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tensorboard_events import scalars  # noqa: E402

W, H = 760, 220          # one panel
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 34, 34
FONT = 'font-family="sans-serif"'


def readable(v):
    """12200 -> 12.2k, 0.0003 -> 3e-4, 2.5 -> 2.5: short labels for ticks."""
    a = abs(v)
    if a == 0:
        return "0"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= scale:
            return f"{v / scale:.3g}{suffix}"
    if a < 1e-2:
        mantissa, exponent = f"{v:.2e}".split("e")
        return f"{float(mantissa):g}e{int(exponent)}"
    return f"{v:.3g}"


def ticks(lo, hi, n=5):
    """Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten."""
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / n
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    out, t = [], first
    while t <= hi + step * 1e-9:
        out.append(round(t, 12))
        t += step
    return out


def panel(series, title, y0, colors):
    """One panel: its title, a frame, grid lines at the ticks, labelled axes, the curves and a
    legend. `series` is [(name, [(step, value), ...]), ...]."""
    pts = [p for _, s in series for p in s]
    if not pts:
        return "", 0
    xt = ticks(min(p[0] for p in pts), max(p[0] for p in pts))
    yt = ticks(min(p[1] for p in pts), max(p[1] for p in pts))
    x_lo, x_hi, y_lo, y_hi = xt[0], xt[-1], yt[0], yt[-1]
    if x_hi == x_lo:
        x_hi = x_lo + 1
    if y_hi == y_lo:
        y_hi = y_lo + 1
    w, h = W - LEFT - RIGHT, H - TOP - BOTTOM
    sx = lambda x: LEFT + (x - x_lo) / (x_hi - x_lo) * w
    sy = lambda y: y0 + TOP + h - (y - y_lo) / (y_hi - y_lo) * h
    out = [f'<text x="{LEFT}" y="{y0 + 20}" font-size="14" {FONT}>{title}</text>']
    for t in xt:
        out.append(f'<line x1="{sx(t):.1f}" y1="{y0 + TOP}" x2="{sx(t):.1f}" y2="{y0 + TOP + h}" '
                   f'stroke="#e5e5e5"/>')
        out.append(f'<text x="{sx(t):.1f}" y="{y0 + TOP + h + 15}" font-size="11" {FONT} '
                   f'text-anchor="middle">{readable(t)}</text>')
    for t in yt:
        out.append(f'<line x1="{LEFT}" y1="{sy(t):.1f}" x2="{LEFT + w}" y2="{sy(t):.1f}" '
                   f'stroke="#e5e5e5"/>')
        out.append(f'<text x="{LEFT - 6}" y="{sy(t) + 4:.1f}" font-size="11" {FONT} '
                   f'text-anchor="end">{readable(t)}</text>')
    out.append(f'<rect x="{LEFT}" y="{y0 + TOP}" width="{w}" height="{h}" fill="none" '
               f'stroke="#888"/>')
    out.append(f'<text x="{LEFT + w}" y="{y0 + TOP + h + 30}" font-size="11" {FONT} '
               f'text-anchor="end">step</text>')
    for k, (name, s) in enumerate(series):
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(s))
        out.append(f'<polyline points="{path}" fill="none" stroke="{colors[k]}" '
                   f'stroke-width="1.8"/>')
        out.append(f'<text x="{LEFT + w - 8}" y="{y0 + TOP + 16 + 14 * k}" font-size="12" {FONT} '
                   f'text-anchor="end" fill="{colors[k]}">{name}</text>')
    return "\n".join(out), H


def main():
    if len(sys.argv) not in (2, 3) or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        sys.exit(0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2)
    run = sys.argv[1]
    files = sorted(glob.glob(os.path.join(run, "events.out.tfevents.*")))
    if not files:
        sys.exit(f"{run}: no events.out.tfevents.* file. HINT: logging.tensorboard must be true.")
    data = {}
    for f in files:
        for step, tag, value in scalars(f):
            data.setdefault(tag, []).append((step, value))
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(run, "curves.svg")
    name = os.path.basename(os.path.abspath(run))
    panels = [
        ([("train", data.get("train/loss", [])), ("valid", data.get("eval/loss", []))],
         f"loss ({name})", ["#1f77b4", "#d62728"]),
        ([("lr", data.get("train/lr", []))], "learning rate", ["#9467bd"]),
        ([("grad norm", data.get("train/grad_norm", []))], "gradient norm (before clipping)",
         ["#ff7f0e"]),
        ([("tokens/s", data.get("train/tokens_per_s", []))], "tokens/s", ["#2ca02c"]),
    ]
    body, y = [], 0
    for series, title, colors in panels:
        series = [(n, s) for n, s in series if s]
        svg, height = panel(series, title, y, colors)
        if height:
            body.append(svg)
            y += height + 10
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{max(y, 1)}">',
           '<rect width="100%" height="100%" fill="white"/>', *body, "</svg>"]
    with open(out, "w") as f:
        f.write("\n".join(svg) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
