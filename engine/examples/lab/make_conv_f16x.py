#!/usr/bin/env python3
"""Writes the kernel-lab variant of docs/experiments.md, "Packed f16 loads on lavapipe": the
row-blocked 16-channel subgroup conv forward (its kernel snapshot) with x read as f16 pairs, each
kernel row's 10 values of a channel from 6 32-bit loads (unpack2x16float) instead of 10, shifted
by one element when the row starts at an odd index. Run it with conv_lab and LAB_X=f16.

    python3 engine/examples/lab/make_conv_f16x.py > /tmp/conv_f16x.wgsl
"""
import pathlib
import re

SNAPSHOT = (pathlib.Path(__file__).resolve().parents[2] / "tests/snapshots/kernels"
            / "conv2d_subgroup.Forward.bias1.silu0.tn16.vw1.row1.wgsl")

src = SNAPSHOT.read_text().replace(
    "var<storage, read> src: array<f32>;", "var<storage, read> src: array<u32>; // f16 pairs")
out, lines, i = [], src.split("\n"), 0
while i < len(lines):
    m = re.match(r"(\s*)let x0_(\d+) = src\[o0 \+ so(\d+)\] \* m0(.*);", lines[i])
    if not m:
        out.append(lines[i])
        i += 1
        continue
    ind, t, ok = m.group(1), m.group(2), m.group(4)
    out.append(f"{ind}let e_{t} = i32(ro + so{t}) + col;")
    out.append(f"{ind}let od_{t} = (e_{t} & 1) != 0;")
    out.append(f"{ind}let fw_{t} = (e_{t} - select(0, 1, od_{t})) / 2;")
    for k in range(6):
        out.append(f"{ind}let w{k}_{t} = unpack2x16float(src[u32(max(fw_{t} + {k}, 0))]);")
    vals = [f"w{k}_{t}.{c}" for k in range(6) for c in "xy"]
    for j in range(10):
        out.append(f"{ind}let x{j}_{t} = select({vals[j]}, {vals[j + 1]}, od_{t}) * m{j}{ok};")
    i += 10  # the ten scalar loads replaced
print("\n".join(out), end="")
