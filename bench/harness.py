"""Benchmark bodies (run by the bench/*_bench.py scripts): figures and ratios to a peer measured back to back in the same process.

The machine is shared and noisy, so every figure is a median over interleaved
repetitions (ours, theirs, ours, theirs, ...) with the same thread count for both.
Tests never assert these numbers; they are printed for people and for issue notes.
"""
from __future__ import annotations

import itertools
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from golden.engine import forward
from golden.errors import DlaError
from golden.genweights import random_weights, synthetic_image
from golden.network import Network, load_network, parse_network
from golden.weights import write_weights


@dataclass(frozen=True)
class BenchResult:
    model: str
    threads: int
    ours_ms: float
    peer_ms: float
    peer: str

    @property
    def ratio(self) -> float:
        return self.ours_ms / self.peer_ms

    def line(self) -> str:
        return (f"{self.model:<14} threads={self.threads}  golden {self.ours_ms:8.1f} ms   "
                f"{self.peer} {self.peer_ms:8.1f} ms   ratio {self.ratio:5.2f}x")


def run_main(main: Callable[[], None]) -> None:
    """Run a benchmark script's ``main`` with the ``dla`` command's error boundary: a user mistake
    (``golden.errors.DlaError``, e.g. an unknown ``--model``) is one ``Error: ...`` line on stderr
    and the error's exit code, never a traceback — as when these benchmarks were ``dla bench``
    subcommands, and since ``dla bench NAME`` runs these scripts in a child process."""
    try:
        main()
    except DlaError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def interleaved_medians(fns: list[Callable[[], object]], repeats: int, warmup: int = 1) -> list[float]:
    """Median wall time (ms) of each function, run in turn ``repeats`` times."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[i].append((time.perf_counter() - t0) * 1e3)
    return [statistics.median(t) for t in times]


def bench_float(cfg: str | Path, weights: str | Path | None = None, threads: tuple[int, ...] = (2, 1),
                repeats: int = 7, seed: int = 0, log: Callable[[str], None] = print) -> list[BenchResult]:
    """Golden FLOAT forward vs OpenCV DNN's Darknet importer on the same input and weights."""
    import cv2  # test/bench dependency only

    with tempfile.TemporaryDirectory() as tmp:
        if weights is None:
            net = random_weights(parse_network(cfg), seed)
            weights = Path(tmp) / "random.weights"
            write_weights(net, weights)
        else:
            net = load_network(cfg, weights)
        cvnet = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    x = synthetic_image(net.input_shape, np.random.default_rng(seed))
    out_names = cvnet.getUnconnectedOutLayersNames()

    def run_cv() -> object:
        cvnet.setInput(x[None])
        return cvnet.forward(out_names)

    results = []
    for n in threads:
        cv2.setNumThreads(n)
        with threadpool_limits(limits=n):
            ours, peer = interleaved_medians([lambda: forward(net, x, keep_all=False), run_cv], repeats)
        res = BenchResult(net.name, n, ours, peer, f"opencv-{cv2.__version__}")
        log(res.line())
        results.append(res)
    log(f"peak RSS {peak_rss_mib():.0f} MiB")
    return results


def _ort_qlinearconv_session(spec, w_q: np.ndarray, act_dtype: str, threads: int):
    """A one-node ONNX model: QLinearConv with int8 weights and int8 (s8s8) or uint8 (u8s8) activations."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    elem = TensorProto.INT8 if act_dtype == "int8" else TensorProto.UINT8
    zp = np.int8(0) if act_dtype == "int8" else np.uint8(128)
    c, h, w = spec.in_shape
    n = spec.filters
    inits = [
        numpy_helper.from_array(np.array(0.02, np.float32), "x_scale"),
        numpy_helper.from_array(np.array(zp), "x_zp"),
        numpy_helper.from_array(w_q.astype(np.int8), "w"),
        numpy_helper.from_array(np.full(n, 0.01, np.float32), "w_scale"),
        numpy_helper.from_array(np.zeros(n, np.int8), "w_zp"),
        numpy_helper.from_array(np.array(0.05, np.float32), "y_scale"),
        numpy_helper.from_array(np.array(zp), "y_zp"),
        numpy_helper.from_array(np.zeros(n, np.int32), "b"),
    ]
    node = helper.make_node("QLinearConv", ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp", "b"],
                            ["y"], kernel_shape=[spec.size, spec.size], strides=[spec.stride_y, spec.stride_x],
                            pads=[spec.padding] * 4, group=spec.groups)
    graph = helper.make_graph([node], "conv", [helper.make_tensor_value_info("x", elem, [1, c, h, w])],
                              [helper.make_tensor_value_info("y", elem, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # Interleaved timing: idle onnxruntime threads must not spin on the cores our next call needs.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _int_setup(cfg: str | Path, seed: int) -> tuple:
    """yolov3-tiny-like benchmark setup: random weights, a synthetic input, per-channel int8."""
    from quant import collect_ranges, quantize

    net = random_weights(parse_network(cfg), seed)
    x = synthetic_image(net.input_shape, np.random.default_rng(seed + 1))
    return net, x, quantize(net, collect_ranges(net, [x]), "per_channel")


def int_engine_ratios(cfg: str | Path, threads: int = 2, repeats: int = 7, seed: int = 0,
                      log: Callable[[str], None] | None = None, _setup: tuple | None = None) -> dict[str, float | str]:
    """The issue's two speed ratios, measured back to back in this process at ``threads``:
    INT forward vs golden FLOAT forward (target <= 1.0), and the conv stack — every conv's
    ``conv_int`` (exact sums + requantization to int8) on its real input from an INT run —
    vs onnxruntime's QLinearConv u8s8 (target <= 2.0) and s8s8, each conv timed interleaved
    with its peers and the per-conv medians summed.

    Returns ``backend`` (``dla.int_backend.status().line()``), ``int_ms``, ``float_ms``,
    ``int_vs_float``, ``conv_stack_ms``, ``ort_u8s8_ms``, ``ort_s8s8_ms``, ``conv_vs_u8s8``,
    ``conv_vs_s8s8`` (the onnxruntime figures only when it is installed).  ``dla bench tune``
    calls this; ``bench_int`` prints it with more peers."""
    from dla import int_backend
    from dla.engine import Engine, quantize_tensor
    from dla.int_kernels import conv_int
    from golden.layers import ConvSpec

    net, x, qnet = _setup or _int_setup(cfg, seed)
    engine = Engine(net, qnet)
    figures: dict[str, float | str] = {"backend": int_backend.status().line()}
    with threadpool_limits(limits=threads):
        plans = engine.plans()  # inside the limit: the int8 backend's sessions take its thread count
        t_int, t_float = interleaved_medians([lambda: engine.run(x, "int"), lambda: forward(net, x, keep_all=False)],
                                             repeats)
        figures.update(int_ms=t_int, float_ms=t_float, int_vs_float=t_int / t_float)
        if log:
            log(f"INT exact GEMM backend: {figures['backend']}")
            log(f"{net.name} threads={threads}: INT {t_int:.1f} ms, golden FLOAT {t_float:.1f} ms "
                f"(INT/FLOAT {t_int / t_float:.2f}x, target <= 1.0x)")
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            if log:
                log("onnxruntime not installed: pip install onnxruntime onnx (conv-stack comparison skipped)")
            return figures
        run = engine.run(x, "int")  # each conv gets its real int8 input from an INT run
        ours, s8, u8 = 0.0, 0.0, 0.0
        for spec in net.layers:
            if not isinstance(spec, ConvSpec):
                continue
            src = spec.inputs[0]
            xq = run.records[src].output if src >= 0 else quantize_tensor(x, qnet.scales[-1])
            xu = (xq.astype(np.int16) + 128).astype(np.uint8)
            w_q = qnet.layers[spec.index].w_q
            sess_s8 = _ort_qlinearconv_session(spec, w_q, "int8", threads)
            sess_u8 = _ort_qlinearconv_session(spec, w_q, "uint8", threads)
            plan = plans[spec.index]
            a, b, c = interleaved_medians([lambda: conv_int(spec, [xq], plan, engine.hw),
                                           lambda: sess_s8.run(None, {"x": xq[None]}),
                                           lambda: sess_u8.run(None, {"x": xu[None]})], repeats)
            ours, s8, u8 = ours + a, s8 + b, u8 + c
    figures.update(conv_stack_ms=ours, ort_s8s8_ms=s8, ort_u8s8_ms=u8, conv_vs_u8s8=ours / u8, conv_vs_s8s8=ours / s8)
    if log:
        log(f"conv stack ({sum(isinstance(s, ConvSpec) for s in net.layers)} convs): ours {ours:.1f} ms, "
            f"onnxruntime u8s8 {u8:.1f} ms (ratio {ours / u8:.2f}x, target <= 2.0x), "
            f"s8s8 {s8:.1f} ms (ratio {ours / s8:.2f}x)")
    return figures


def bench_int(cfg: str | Path, threads: int = 2, repeats: int = 7, seed: int = 0,
              log: Callable[[str], None] = print) -> dict[str, float | str]:
    """INT forward vs golden FLOAT (:func:`int_engine_ratios`), vs the same INT on the float-BLAS
    backend, and vs OpenCV; operand-width configurations; the conv stack vs onnxruntime
    QLinearConv (u8s8, s8s8)."""
    import cv2

    from dla import int_backend
    from dla.engine import Engine

    net, x, qnet = setup = _int_setup(cfg, seed)
    with tempfile.TemporaryDirectory() as tmp:
        wpath = Path(tmp) / "w.weights"
        write_weights(net, wpath)
        cvnet = cv2.dnn.readNetFromDarknet(str(cfg), str(wpath))
    out_names = cvnet.getUnconnectedOutLayersNames()
    cv2.setNumThreads(threads)

    def run_cv() -> object:
        cvnet.setInput(x[None])
        return cvnet.forward(out_names)

    figures = int_engine_ratios(cfg, threads, repeats, seed, log, _setup=setup)
    engine = Engine(net, qnet)
    with threadpool_limits(limits=threads):
        engine.plans()
        if int_backend.active() != int_backend.FLOAT:
            int_backend.force(int_backend.FLOAT)
            try:
                on_float = Engine(net, qnet)
                on_float.plans()
            finally:
                int_backend.force(None)
            t_int, t_blas = interleaved_medians([lambda: engine.run(x, "int"), lambda: on_float.run(x, "int")], repeats)
            figures.update(int_float_backend_ms=t_blas)
            log(f"INT on the float-BLAS backend {t_blas:.1f} ms (this backend {t_int:.1f} ms: {t_blas / t_int:.2f}x faster)")
        t_int, t_cv = interleaved_medians([lambda: engine.run(x, "int"), run_cv], repeats)
        figures.update(opencv_ms=t_cv)
        log(f"OpenCV float {t_cv:.1f} ms (INT/OpenCV {t_int / t_cv:.2f}x)")
        figures.update(bench_mixed_precision(net, x, engine, repeats, log))
    log(f"peak RSS {peak_rss_mib():.0f} MiB")
    return figures


def head_layers(net: Network) -> list[int]:
    """The heads of a detector: the layers feeding its yolo/region layers, in index order."""
    from golden.layers import Kind

    return sorted({s.inputs[0] for s in net.layers if s.kind in (Kind.YOLO, Kind.REGION)})


def mixed_precision_specs(net: Network) -> dict[str, dict]:
    """The operand-width configurations of docs/accuracy.md, as quantization specs for ``net``:
    heads = the layers feeding yolo/region (:func:`head_layers`), first = layer 0."""
    heads = head_layers(net)
    edge = [0, *heads]
    return {
        "int16 heads": {"overrides": [{"layers": heads, "activation_bits": 16}]},
        "int16 first layer": {"input_bits": 16, "overrides": [{"layers": [0], "weight_bits": 16}]},
        "w4a8 body": {"overrides": [{"types": ["convolutional"], "weight_bits": 4},
                                    {"layers": edge, "weight_bits": 8}]},
        "mixed (all three)": {"input_bits": 16, "overrides": [
            {"types": ["convolutional"], "weight_bits": 4}, {"layers": heads, "weight_bits": 8, "activation_bits": 16},
            {"layers": [0], "weight_bits": 16}]},
    }


def bench_mixed_precision(net: Network, x: np.ndarray, engine: object, repeats: int,
                          log: Callable[[str], None] = print) -> dict[str, float]:
    """INT forward at each configuration of :func:`mixed_precision_specs` vs all-int8, measured
    interleaved (target: every mixed configuration <= 1.5x the all-int8 time)."""
    from dla.engine import Engine
    from quant import collect_ranges, quantize
    from quant.spec import QuantSpec

    ranges = collect_ranges(net, [x])
    engines = {name: Engine(net, quantize(net, ranges, spec=QuantSpec.from_dict({"granularity": "per_channel", **d})))
               for name, d in mixed_precision_specs(net).items()}
    for e in engines.values():
        e.run(x, "int")  # plans, and the int16 kernels compiled once, outside the timing
    times = interleaved_medians([lambda: engine.run(x, "int")] +  # type: ignore[attr-defined]
                                [lambda e=e: e.run(x, "int") for e in engines.values()], repeats)
    figures = {"int8_ms": times[0]}
    log(f"operand widths (INT forward, all-int8 {times[0]:.1f} ms; target <= 1.5x):")
    for (name, _), t in zip(engines.items(), times[1:]):
        figures[f"{name}_ms"] = t
        log(f"  {name:<20} {t:8.1f} ms   {t / times[0]:5.2f}x all-int8")
    return figures


def bench_calibration(cfg: str | Path, counts: tuple[int, ...] = (50, 100), seed: int = 0,
                      log: Callable[[str], None] = print) -> dict[str, float]:
    """Calibration statistics (max + |x| histograms of every tensor) over synthetic 416x416
    images: wall time per image and peak RSS after each count — flat RSS means fixed memory."""
    from dla.calibration import synthetic_inputs
    from quant import collect_ranges

    net = random_weights(parse_network(cfg), seed)
    figures: dict[str, float] = {}
    inputs = synthetic_inputs(net, max(counts))
    ranges = None
    done = 0
    t0 = time.perf_counter()
    from quant.calibrate import Ranges

    ranges = Ranges()
    for target in sorted(counts):
        part = collect_ranges(net, itertools.islice(inputs, target - done))  # streamed, never a list
        for t, h in part.hists.items():  # fold the chunk into the running statistics
            ranges.hists[t] = h if t not in ranges.hists else ranges.hists[t].merge(h)
        done = target
        elapsed = time.perf_counter() - t0
        figures[f"rss_{target}_mib"] = peak_rss_mib()
        figures[f"seconds_{target}"] = elapsed
        log(f"{net.name}: statistics over {target} images: {elapsed:.1f} s ({elapsed / target * 1e3:.0f} ms/image), "
            f"peak RSS {peak_rss_mib():.0f} MiB")
    return figures


def bench_step(cfg: str | Path, seed: int = 0, log: Callable[[str], None] = print) -> dict[str, float]:
    """``Session.step()`` through every layer in INT mode: per-layer latency (median, max)."""
    from dla.session import Session
    from quant import collect_ranges, quantize

    net = random_weights(parse_network(cfg), seed)
    x = synthetic_image(net.input_shape, np.random.default_rng(seed + 1))
    qnet = quantize(net, collect_ranges(net, [x]), "per_channel")
    Session(qnet, x, "int").run()  # warm up (compiled kernels, caches)
    s = Session(qnet, x, "int")
    times = []
    for spec in net.layers:
        t0 = time.perf_counter()
        s.step()
        times.append((time.perf_counter() - t0) * 1e3)
    worst = int(np.argmax(times))
    log(f"{net.name} INT step(): median {statistics.median(times):.1f} ms, max {max(times):.1f} ms "
        f"(layer {worst} {net.layers[worst].kind.value}), total {sum(times):.0f} ms over {len(times)} layers")
    return {"median_ms": statistics.median(times), "max_ms": max(times)}


def bench_cycles(cfg: str | Path, repeats: int = 5, log: Callable[[str], None] = print) -> float:
    """Wall time of the whole cycle model of a network (target for yolov3: under 1 s)."""
    from dla.config import HardwareConfig
    from dla.cycles import network_cycles

    net = parse_network(cfg)
    hw = HardwareConfig()
    network_cycles(net, hw)
    ms = interleaved_medians([lambda: network_cycles(net, hw)], repeats, warmup=0)[0]
    log(f"{net.name}: cycle model of {len(net.layers)} layers in {ms:.1f} ms (median of {repeats})")
    return ms


def bench_regress(n: int = 8, workers: int = 2, model: str = "yolov3-tiny",
                  log: Callable[[str], None] = print) -> dict[str, float]:
    """``dla regress`` over ``n`` small scenarios (one model, an algorithm × granularity matrix,
    full reports): one worker vs ``workers`` workers, back to back; prints the speed-up."""
    import yaml

    from dla.scenario.regress import collect, run_campaign

    algorithms = ["max", "percentile", "mse", "kl", "log2", "auto"]
    per = -(-n // 2)
    with tempfile.TemporaryDirectory(prefix="dla-bench-regress-") as tmp:
        path = Path(tmp) / "sweep.yaml"
        path.write_text(yaml.safe_dump({
            "model": {"cfg": model, "seed": 0}, "modes": ["float", "int"], "images": ["dog"],
            "quant": {"calib": {"synthetic": 2}},
            "matrix": {"quant.activations": (algorithms * 2)[:per], "quant.granularity": ["per_tensor", "per_channel"]},
            "checks": [{"sqnr": {"min_db": 0}}]}))
        jobs = collect([str(path)])[:n]
        times = {}
        for j in (1, workers):
            t0 = time.perf_counter()
            rows = run_campaign(jobs, Path(tmp) / f"out-{j}", workers=j)
            times[j] = time.perf_counter() - t0
            bad = [r["id"] for r in rows if r["status"] != "pass"]
            log(f"dla regress: {len(jobs)} scenarios of {model} with -j {j}: {times[j]:.1f} s"
                + (f" ({len(bad)} not passing: {', '.join(bad)})" if bad else ""))
    speedup = times[1] / times[workers]
    log(f"speed-up -j {workers} vs -j 1: {speedup:.2f}x (same machine, back to back; cluster start-up included)")
    return {"serial_s": times[1], "parallel_s": times[workers], "speedup": speedup}
