"""Behaviour fingerprint: the bytes a user gets from the shipped scenarios and from
`dla compare --json` on yolov3-tiny, reduced to one sha256 each.

Why: a refactor that moves code ("behaviour does not change") must leave every number a user
sees untouched.  Run this before and after; the two JSON files must be equal.

    python3 bench/fingerprint.py -o before.json            # on the old tree
    python3 bench/fingerprint.py --check before.json       # on the new tree: exit 1 on any change

Everything runs through the installed `dla` command, as a user would.  summary.json is
byte-stable by contract (no wall times, one BLAS thread for float work; see
tests/dla/scenario/test_determinism.py); the compare JSON is hashed without its wall times.  The compare runs use the real yolov3-tiny COCO weights and
a real photo when `../shared` is present (the development and CI checkout) and otherwise the
shipped cfg with seeded weights on a generated image, so the script also works elsewhere.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SINGLE = ["demo", "granularity", "algorithms", "log2-hw", "acc16-overflow", "rtl-regression", "precision", "tune"]
MATRIX = {"hw-sweep": ["hw-sweep-default", "hw-sweep-small8"]}
COMPARE_VARIANTS: dict[str, list[str]] = {
    "default": [],
    "per-channel": ["--granularity", "per-channel"],
    "isolated": ["--isolated"],
    "acc16-hw": ["--hw", str(ROOT / "scenarios" / "hw" / "acc16.yaml")],
}


def _dla(*args: str) -> None:
    exe = shutil.which("dla") or str(Path(sys.executable).with_name("dla"))
    res = subprocess.run([exe, *args], capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"dla {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sha_of_summary(path: Path) -> str:
    """summary.json names its inputs by absolute path: the checkout's root is written as
    ``<checkout>`` so that two clones of one commit hash alike; every other byte is as written."""
    return hashlib.sha256(path.read_text().replace(str(ROOT), "<checkout>").encode()).hexdigest()


def _sha_without_wall_times(path: Path) -> str:
    """The compare JSON holds each mode's wall time (``seconds``), which no two runs share; every
    other byte is hashed as written (the file is re-serialized only without that one key)."""
    data = json.loads(path.read_text())
    data.pop("seconds", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _compare_inputs(tmp: Path) -> tuple[str, str, str, str]:
    """(cfg, weights, image, origin) for the yolov3-tiny compare runs."""
    real = SHARED / "models" / "yolov3-tiny.weights"
    if real.is_file():
        return "yolov3-tiny", str(real), str(SHARED / "images" / "dog.jpg"), "real weights, dog.jpg"
    weights, image = tmp / "seeded.weights", tmp / "image.png"
    _dla("gen-weights", "yolov3-tiny", "--seed", "0", "-o", str(weights), "-q")
    from PIL import Image
    import numpy as np
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (416, 416, 3), dtype=np.uint8)).save(image)
    return "yolov3-tiny", str(weights), str(image), "seeded weights, generated image"


def fingerprint(only: list[str] | None = None) -> dict[str, str]:
    out: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="dla-fingerprint-") as t:
        tmp = Path(t)
        for name in SINGLE:
            if only and name not in only:
                continue
            print(f"scenario {name} ...", file=sys.stderr, flush=True)
            _dla("run", name, "-o", str(tmp / name), "-q")
            out[f"scenario/{name}/summary.json"] = _sha_of_summary(tmp / name / "summary.json")
            out[f"scenario/{name}/layers.csv"] = _sha(tmp / name / "layers.csv")
        for name, runs in MATRIX.items():
            if only and name not in only:
                continue
            print(f"regress {name} ...", file=sys.stderr, flush=True)
            _dla("regress", name, "-j", "1", "-o", str(tmp / name), "-q")
            for run in runs:
                out[f"scenario/{run}/summary.json"] = _sha_of_summary(tmp / name / run / "summary.json")
        if not only or "compare" in only:
            cfg, weights, image, origin = _compare_inputs(tmp)
            out["compare/inputs"] = origin
            for variant, extra in COMPARE_VARIANTS.items():
                print(f"compare {variant} ...", file=sys.stderr, flush=True)
                js = tmp / f"compare-{variant}.json"
                _dla("compare", cfg, weights, image, "--json", str(js), "-q", *extra)
                out[f"compare/{variant}.json"] = _sha_without_wall_times(js)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", type=Path, help="Write the fingerprint JSON here.")
    ap.add_argument("--check", type=Path, help="Compare against this fingerprint; exit 1 on any difference.")
    ap.add_argument("--only", nargs="*", help="Scenario names and/or 'compare' (default: everything).")
    args = ap.parse_args()
    fp = fingerprint(args.only)
    text = json.dumps(fp, indent=2, sort_keys=True) + "\n"
    if args.output:
        args.output.write_text(text)
    print(text, end="")
    if args.check:
        ref = json.loads(args.check.read_text())
        diff = sorted(k for k in fp if ref.get(k) != fp[k])
        missing = sorted(set(ref) - set(fp)) if not args.only else []
        for k in diff:
            print(f"CHANGED  {k}", file=sys.stderr)
        for k in missing:
            print(f"MISSING  {k}", file=sys.stderr)
        if diff or missing:
            return 1
        print(f"identical: {len(fp)} outputs", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
