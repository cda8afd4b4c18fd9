#!/usr/bin/env python3
"""Train a Darknet cfg on a labelled folder and write Darknet ``.weights`` (same as ``dla train``).

    python3 tools/train.py dla/data/models/shapes-yolo.cfg shapes/ -o shapes-yolo.weights --epochs 12 --seed 0

The recipe and what it reproduces: docs/training.md.  Needs the ``train`` extra (torch).
"""
from __future__ import annotations

import sys

from dla.cli import main

if __name__ == "__main__":
    sys.argv[1:1] = ["train"]
    main()
