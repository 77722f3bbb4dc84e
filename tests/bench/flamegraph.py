#!/usr/bin/env python3
"""A flame graph from `perf script` output: stacks folded, one SVG written.

    perf script -i perf.data | tests/bench/flamegraph.py --title T -o out.svg

Debian 12 packages no FlameGraph, so `make flamegraph` (run.py --flame)
uses this. Every sample's call chain (leaf first in perf script's text) is
folded into a tree from the process down, weighted by the sample's period
(cpu-clock: nanoseconds of CPU). A frame is a rectangle as wide as its
share, its callees stacked above it; its colour says whose code it is
(certregd, libcrypto, libssl, libevent, jansson, the C library and
allocator, the kernel); hovering shows its name, library and share (an SVG <title>, no
script). Frames under --min-share of all samples are left out, which keeps
the file small. Also prints where the time goes: the share of every
library (self time) and the functions with the largest inclusive shares.
"""
import argparse
import collections
import os
import re
import sys
from pathlib import Path

WIDTH, FRAME_H, TOP, BOTTOM, SIDE, CHAR_W = 1200, 16, 44, 28, 10, 6.6

# (test on the library's file name, label, fill colour)
KINDS = [
    (lambda d: d.startswith("[kernel") or d.startswith("[vdso"), "kernel", "#f0a050"),
    (lambda d: "libcrypto" in d, "libcrypto", "#e8624f"),
    (lambda d: "libssl" in d, "libssl", "#f2d14a"),
    (lambda d: "libevent" in d, "libevent", "#5fb8d9"),
    (lambda d: d.startswith(("libc.", "libc-", "ld-linux", "libjemalloc", "libm.")),
     "libc, ld.so, jemalloc", "#b7a4d6"),
    (lambda d: d.startswith(("certregd", "certreg")), "certregd", "#72c472"),
    (lambda d: d.startswith("libpq"), "libpq", "#9ad0c2"),
    (lambda d: d.startswith("libjansson"), "jansson (JSON)", "#d9a3c4"),
]
OTHER = ("other", "#c8c8c8")

HEADER = re.compile(r"^\S.*?\s(\d+)\s+[\w:-]+:\s*$")  # "... 1234.5:   2004008 cpu-clock:"
FRAME = re.compile(r"^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")


def kind(dso):
    base = os.path.basename(dso)
    for test, label, colour in KINDS:
        if test(base):
            return label, colour
    return OTHER


def parse(text):
    """perf script's text: [(weight, [(function, library)...])], each stack
    from the command (the root) to the sampled function."""
    samples, weight, comm, frames = [], None, None, []
    for line in text.splitlines() + [""]:
        if not line.strip():
            if weight is not None and frames:
                # An inlined function is in the library of the function it
                # was inlined into, the next frame out.
                for i in range(len(frames) - 2, -1, -1):
                    if frames[i][1] == "inlined":
                        frames[i] = (frames[i][0], frames[i + 1][1])
                samples.append((weight, [(comm, "")] + frames[::-1]))
            weight, frames = None, []
        elif not line[0].isspace():
            m = HEADER.match(line)
            weight, comm = (int(m.group(1)) if m else 1), line.split()[0]
        elif weight is not None and (m := FRAME.match(line)):
            sym, dso = m.groups()
            sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
            if sym == "[unknown]" and not dso.startswith("["):
                sym = f"[{os.path.basename(dso)}]"  # a function without a symbol
            frames.append((sym, dso))  # perf script lists the leaf first
    return samples


class Node:
    __slots__ = ("name", "dso", "value", "children")

    def __init__(self, name, dso):
        self.name, self.dso, self.value, self.children = name, dso, 0, {}


def fold(samples):
    root = Node("all", "")
    for w, stack in samples:
        root.value += w
        node = root
        for sym, dso in stack:
            node = node.children.setdefault((sym, dso), Node(sym, dso))
            node.value += w
    return root


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def svg(root, title, min_share):
    """The SVG text: root at the bottom, callees above their callers."""
    total = root.value or 1
    scale = (WIDTH - 2 * SIDE) / total
    boxes, depth = [], 0

    def walk(node, x, level):
        nonlocal depth
        if node.value / total < min_share:
            return
        boxes.append((node, x, level))
        depth = max(depth, level)
        for child in sorted(node.children.values(), key=lambda n: n.name):
            walk(child, x, level + 1)
            x += child.value

    walk(root, 0, 0)
    height = TOP + (depth + 1) * FRAME_H + BOTTOM
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" font-family="monospace" font-size="11">',
           '<rect width="100%" height="100%" fill="#fdfdf6"/>',
           f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="15">{esc(title)}'
           "</text>",
           f'<text x="{SIDE}" y="36" fill="#555">{total_text(root)}; frames under '
           f"{min_share:.1%} left out; hover a frame for its share</text>"]
    for node, x, level in boxes:
        w = node.value * scale
        y = TOP + (depth - level) * FRAME_H
        label, colour = kind(node.dso) if node.dso else ("", "#dddddd")
        share = 100 * node.value / total
        tip = f"{node.name} ({label or 'process'}): {share:.1f} %"
        chars = int((w - 4) / CHAR_W)
        text = node.name if len(node.name) <= chars else node.name[:chars - 2] + ".."
        out.append(f'<g><title>{esc(tip)}</title><rect x="{SIDE + x * scale:.1f}" y="{y}" '
                   f'width="{w:.1f}" height="{FRAME_H - 1}" fill="{colour}" rx="2"/>'
                   + (f'<text x="{SIDE + x * scale + 3:.1f}" y="{y + 11}">{esc(text)}</text>'
                      if chars >= 3 else "") + "</g>")
    x = SIDE
    for _, label, colour in KINDS + [(None,) + OTHER]:
        out.append(f'<rect x="{x}" y="{height - 18}" width="12" height="12" fill="{colour}"/>'
                   f'<text x="{x + 16}" y="{height - 8}">{esc(label)}</text>')
        x += 30 + CHAR_W * len(label)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def total_text(root):
    return f"{root.value / 1e9:.2f} s of CPU sampled" if root.value > 1e6 else \
        f"{root.value} samples"


def summary(samples, top=25):
    """Where the time goes: self time per kind of code, and the functions
    with the largest inclusive share (each counted once per sample)."""
    total = sum(w for w, _ in samples) or 1
    by_kind, incl, self_ = collections.Counter(), collections.Counter(), collections.Counter()
    for w, stack in samples:
        leaf = stack[-1]
        by_kind[kind(leaf[1])[0] if leaf[1] else "process"] += w
        self_[leaf[0]] += w
        for sym in {s for s, _ in stack[1:]}:
            incl[sym] += w
    lines = [f"samples: {len(samples)}; {total_text(fold(samples))}", "", "self time by code:"]
    lines += [f"  {100 * v / total:5.1f} %  {k}" for k, v in by_kind.most_common()]
    lines += ["", "inclusive (the function and what it calls):"]
    lines += [f"  {100 * v / total:5.1f} %  {k}" for k, v in incl.most_common(top)]
    lines += ["", "self:"]
    lines += [f"  {100 * v / total:5.1f} %  {k}" for k, v in self_.most_common(top)]
    return "\n".join(lines) + "\n"


def write(script_text, path, title, min_share=0.005):
    """Folds SCRIPT_TEXT (perf script's output), writes the SVG to PATH and
    returns the summary text."""
    samples = parse(script_text)
    if not samples:
        raise ValueError("no samples with call chains in the perf script output")
    Path(path).write_text(svg(fold(samples), title, min_share))
    return summary(samples)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-i", "--input", help="perf script output (default: stdin)")
    ap.add_argument("-o", "--output", required=True, help="the SVG to write")
    ap.add_argument("--title", default="flame graph")
    ap.add_argument("--min-share", type=float, default=0.005,
                    help="leave out frames under this share of all samples (default 0.005)")
    a = ap.parse_args()
    text = open(a.input).read() if a.input else sys.stdin.read()
    sys.stdout.write(write(text, a.output, a.title, a.min_share))


if __name__ == "__main__":
    main()
