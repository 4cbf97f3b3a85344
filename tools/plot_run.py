#!/usr/bin/env python3
"""Renders a run's curves -- training loss, eval loss, tokens/s -- from its TensorBoard event
file to an SVG a person can open in any browser. No plotting library needed.

usage: tools/plot_run.py RUN_DIR [OUT.svg]   (default: RUN_DIR/curves.svg)
"""
import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tensorboard_events import scalars  # noqa: E402

W, H, PAD = 760, 230, 48


def panel(series, title, y0, color_of):
    pts = [p for _, s in series for p in s]
    if not pts:
        return ""
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    x_lo, x_hi = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y_lo, y_hi = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
    sx = lambda x: PAD + (x - x_lo) / (x_hi - x_lo) * (W - 2 * PAD)
    sy = lambda y: y0 + H - PAD + (y - y_lo) / (y_hi - y_lo) * -(H - 2 * PAD)
    out = [f'<text x="{PAD}" y="{y0 + 20}" font-size="15" font-family="sans-serif">{title}</text>',
           f'<rect x="{PAD}" y="{y0 + PAD}" width="{W - 2 * PAD}" height="{H - 2 * PAD}" '
           f'fill="none" stroke="#999"/>']
    for label, value in ((f"{y_hi:.4g}", y_hi), (f"{y_lo:.4g}", y_lo)):
        out.append(f'<text x="4" y="{sy(value) + 4:.1f}" font-size="11" font-family="sans-serif">{label}</text>')
    out.append(f'<text x="{PAD}" y="{y0 + H - PAD + 16}" font-size="11" font-family="sans-serif">step {x_lo}</text>')
    out.append(f'<text x="{W - PAD - 60}" y="{y0 + H - PAD + 16}" font-size="11" font-family="sans-serif">step {x_hi}</text>')
    for k, (name, s) in enumerate(series):
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color_of[k]}" stroke-width="1.8"/>')
        out.append(f'<text x="{W - PAD - 150}" y="{y0 + PAD + 16 + 14 * k}" font-size="12" '
                   f'font-family="sans-serif" fill="{color_of[k]}">{name}</text>')
    return "\n".join(out)


def main():
    run = sys.argv[1]
    files = sorted(glob.glob(os.path.join(run, "events.out.tfevents.*")))
    if not files:
        sys.exit(f"{run}: no events.out.tfevents.* file. HINT: logging.tensorboard must be true.")
    data = {}
    for f in files:
        for step, tag, value in scalars(f):
            data.setdefault(tag, []).append((step, value))
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(run, "curves.svg")
    loss = [(t, data[t]) for t in ("train/loss", "eval/loss") if t in data]
    speed = [(t, data[t]) for t in ("train/tokens_per_s",) if t in data]
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{2 * H + 10}">',
           '<rect width="100%" height="100%" fill="white"/>',
           panel(loss, f"loss ({os.path.basename(os.path.abspath(run))})", 0, ["#1f77b4", "#d62728"]),
           panel(speed, "tokens/s", H + 10, ["#2ca02c"]), "</svg>"]
    open(out, "w").write("\n".join(svg) + "\n")
    print(f"wrote {out}")


main()
