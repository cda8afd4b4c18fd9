"""The golden engine under both Darknet forks against a real AlexeyAB Darknet build, layer by layer.

Not a test (it needs a Darknet build the project does not ship): a measurement tool.

Build AlexeyAB/darknet for the CPU as a library (``Makefile``: ``LIBSO=1``, ``GPU=0``,
``OPENCV=0``; ``AVX=0`` gives the double-precision leaky of the non-AVX build), then::

    python bench/alexeyab_parity.py --darknet-dir PATH/TO/darknet [--cfg yolov4-tiny]
        [--weights F.weights] [--image photo.png] [--seed 7]

The script compiles a small C harness against ``PATH/include/darknet.h`` and
``libdarknet.so``: it loads the network with ``load_network_custom`` (which fuses batch norm,
as ``detector test`` does), runs ``network_predict_ptr`` on the exact float input the golden
engine uses (so image decoding plays no part), and writes every layer's ``output``.  Printed
per layer: ``max|golden − darknet| / max|darknet|`` for ``--darknet alexeyab`` and
``--darknet pjreddie``.  Without ``--weights``, seeded random weights are written first.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from dla.catalog import DEFAULT_IMAGE, resolve_cfg
from golden.engine import forward
from golden.genweights import random_weights
from golden.image import load_image, prepare_input
from golden.network import parse_network
from golden.weights import read_weights, write_weights

HARNESS = r"""
#include "darknet.h"
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    network *net = load_network_custom(argv[1], argv[2], 0, 1);  /* fuses batch norm */
    int n = net->w * net->h * net->c;
    float *x = malloc(n * sizeof(float));
    FILE *f = fopen(argv[3], "rb");
    if (fread(x, 4, n, f) != (size_t)n) return 1;
    fclose(f);
    network_predict_ptr(net, x);
    FILE *o = fopen(argv[4], "wb");
    for (int i = 0; i < net->n; i++) {
        int cnt = net->layers[i].outputs;
        fwrite(&cnt, 4, 1, o);
        fwrite(net->layers[i].output, 4, cnt, o);
    }
    fclose(o);
    return 0;
}
"""


def darknet_outputs(darknet_dir: Path, cfg: Path, weights: Path, x: np.ndarray, work: Path) -> list[np.ndarray]:
    exe = work / "dump_layers"
    (work / "dump_layers.c").write_text(HARNESS)
    subprocess.run(["gcc", "-O2", f"-I{darknet_dir / 'include'}", str(work / "dump_layers.c"), "-o", str(exe),
                    f"-L{darknet_dir}", "-l:libdarknet.so", "-lm", "-lpthread"], check=True)
    x.astype(np.float32).tofile(work / "in.bin")
    env = {**os.environ, "LD_LIBRARY_PATH": str(darknet_dir)}
    subprocess.run([str(exe), str(cfg), str(weights), str(work / "in.bin"), str(work / "out.bin")],
                   check=True, env=env, capture_output=True)
    raw = np.fromfile(work / "out.bin", dtype=np.uint8)
    outs, off = [], 0
    while off < raw.size:
        n = int(raw[off:off + 4].view(np.int32)[0])
        outs.append(raw[off + 4:off + 4 + 4 * n].view(np.float32).copy())
        off += 4 + 4 * n
    return outs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--darknet-dir", required=True, type=Path, help="a built AlexeyAB/darknet tree (LIBSO=1)")
    ap.add_argument("--cfg", default="yolov4-tiny")
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    lib = args.darknet_dir / "libdarknet.so"
    if not lib.is_file():
        print(f"Error: {lib} not found (build AlexeyAB/darknet with LIBSO=1)", file=sys.stderr)
        return 2
    cfg = resolve_cfg(args.cfg)
    net = parse_network(cfg, "alexeyab")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        weights = args.weights
        if weights is None:
            weights = work / "seeded.weights"
            write_weights(random_weights(net, args.seed), weights)
        else:
            read_weights(net, weights)
        x = prepare_input(load_image(args.image), net.input_shape, letterbox=net.letter_box)
        theirs = darknet_outputs(args.darknet_dir, cfg, weights, x, work)
    pj = parse_network(cfg, "pjreddie")
    pj.params = net.params
    ours = {"alexeyab": forward(net, x), "pjreddie": forward(pj, x)}
    worst = {k: 0.0 for k in ours}
    print(f"{net.name} {net.input_shape}: max|golden − AlexeyAB Darknet| / max|darknet| per layer")
    for spec in net.layers:
        ref = theirs[spec.index].astype(np.float64)
        row = []
        for fork, out in ours.items():
            e = float(np.abs(out[spec.index].ravel() - ref).max() / max(np.abs(ref).max(), 1e-30))
            worst[fork] = max(worst[fork], e)
            row.append(f"{fork} {e:.2e}")
        print(f"{spec.index:3d} {spec.kind.value:15s} " + "  ".join(row))
    print("worst: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
