#!/usr/bin/python3
"""Coverage over time of the last make fuzz run, as an SVG line per target.

  plot-fuzz-coverage.py OUT.svg BUILD/fuzz/TARGET/MUTATOR/log...

Reads libFuzzer's fork-mode status lines ("#N: cov: C ... time: Ts") and
plots the edges covered (cov) against the seconds run, a line per log,
named TARGET/MUTATOR.
"""
import os
import re
import sys

STATUS = re.compile(r"^#(\d+): cov: (\d+) .* time: (\d+)s")
COLOURS = ["#c0392b", "#2e86c1", "#27ae60", "#8e44ad"]


def points(log):
    with open(log, errors="replace") as f:
        return [(int(m.group(3)), int(m.group(2)))
                for m in map(STATUS.match, f) if m]


def main(out, logs):
    series = [(os.path.relpath(os.path.dirname(log),
                               os.path.dirname(os.path.dirname(os.path.dirname(log)))),
               points(log)) for log in logs]
    series = [(name, pts) for name, pts in series if pts]
    if not series:
        sys.exit("no libFuzzer status lines in " + " ".join(logs))
    t_max = max(t for _, pts in series for t, _ in pts) or 1
    c_max = max(c for _, pts in series for _, c in pts)
    w, left, top, base = 600, 60, 30, 260
    h = base + 30 + 16 * len(series)
    x = lambda t: left + (w - left - 20) * t / t_max        # noqa: E731
    y = lambda c: base - (base - top) * c / c_max           # noqa: E731
    svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="12">' % (w, h),
           '<text x="%d" y="18">Edges covered (libFuzzer cov) against '
           'seconds fuzzed</text>' % left,
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>'
           % (left, base, w - 20, base),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>'
           % (left, top, left, base),
           '<text x="%d" y="%d">0</text>' % (left - 10, base + 15),
           '<text x="%d" y="%d">%d s</text>' % (w - 60, base + 15, t_max),
           '<text x="4" y="%d">%d</text>' % (top + 4, c_max),
           '<text x="4" y="%d">0</text>' % base]
    for i, (name, pts) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        svg.append('<polyline fill="none" stroke="%s" stroke-width="2" '
                   'points="%s"/>' % (colour, " ".join(
                       "%.1f,%.1f" % (x(t), y(c)) for t, c in pts)))
        svg.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>'
                   '<text x="%d" y="%d">%s: %d edges after %d s</text>'
                   % (left + 10, base + 30 + 16 * i - 10, colour, left + 28,
                      base + 30 + 16 * i, name, pts[-1][1], pts[-1][0]))
    svg.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__.strip())
    main(sys.argv[1], sys.argv[2:])
