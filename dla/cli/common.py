"""What every ``dla`` command shares: the error boundary, the common options, and turning the
positional MODEL arguments into a network (and engine).

User mistakes (``golden.errors.UserInputError``) become one ``Error: ...`` line on stderr and a
non-zero exit code, never a traceback (``DlaGroup``).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from tqdm import tqdm

from golden.errors import DlaError, UserInputError
from dla.catalog import default_names, read_names
from golden.forks import FORK_CHOICES
from golden.network import Network

if TYPE_CHECKING:
    from dla.resolve import ResolvedModel


class UserError(click.ClickException):
    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class DlaGroup(click.Group):
    """Turns the project's user errors into click errors (one line, non-zero exit)."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except DlaError as exc:
            raise UserError(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise UserError("interrupted", 130) from None
        except OSError as exc:  # the file system refused (name too long, permission, disk full)
            raise UserError(os_error_message(exc)) from None
        except MemoryError:  # the bounds in golden.network should make this unreachable
            raise UserError("out of memory: the inputs are too large for this machine "
                            "(see docs/security.md, 'Limits')") from None


def os_error_message(exc: OSError) -> str:
    """``path: reason`` for an ``OSError`` that escaped a library call (no traceback)."""
    name = exc.filename if exc.filename is not None else ""
    shown = str(name) if len(str(name)) <= 120 else f"{str(name)[:60]}...({len(str(name))} characters)"
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{shown}: {reason}" if shown else reason


def warn(net: Network, quiet: bool) -> None:
    if not quiet:
        for w in net.warnings:
            click.echo(f"warning: {w}", err=True)


_IMAGE_MAGIC = {b"\xff\xd8\xff": "a JPEG image", b"\x89PNG": "a PNG image"}


def not_an_image(weights: str) -> None:
    """Reject an image given where WEIGHTS belong (e.g. ``dla infer CFG dog.jpg dog.jpg``).

    Why: the weights reader would otherwise report a size mismatch deep inside some layer,
    which does not tell the user they swapped or repeated an argument.
    """
    try:
        with open(weights, "rb") as f:
            head = f.read(4)
    except OSError:
        return  # the weights loader reports missing/unreadable files in its own words
    for magic, what in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            raise UserError(f"{weights}: this is {what}, not Darknet .weights (arguments are CFG WEIGHTS IMAGE)")


def load_cfg_weights(cfg: str, weights: str | None, quiet: bool, darknet: str = "auto") -> Network:
    """The network of ``CFG [WEIGHTS]`` (a shipped trained-model name brings its own weights)."""
    from dla.resolve import resolve_model

    if weights is not None:
        not_an_image(weights)
    net = resolve_model(cfg, weights, darknet=darknet).net
    warn(net, quiet)
    return net


def progress(net: Network, quiet: bool, desc: str) -> tqdm:
    return tqdm(total=len(net.layers), desc=desc, unit="layer", disable=quiet, leave=False, file=sys.stderr)


quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bar and no warnings.")
hw_option = click.option("--hw", type=click.Path(dir_okay=False),
                         help="Hardware config YAML (default: the built-in default, scenarios/hw/default.yaml).")
calib_option = click.option("--calib", type=click.Path(),
                            help="Calibration images: a folder or a list file (default: the input image).")
darknet_option = click.option(
    "--darknet", type=click.Choice(FORK_CHOICES), default="auto", show_default=True,
    help="Whose Darknet to reproduce: pjreddie (BN ÷ (√var + 1e-6), letterbox) or alexeyab (BN folded "
         "with √(var + 1e-5), stretch unless [net] letter_box=1); auto = alexeyab iff the cfg uses an "
         "AlexeyAB-only feature.  A .qnet keeps the fork it was quantized for.")
granularity_option = click.option("--granularity", type=click.Choice(["per-tensor", "per-channel"]),
                                  default="per-tensor", show_default=True, help="Weight scales.")


def hardware(path: str | None):
    """The ``--hw`` config, or the built-in default."""
    from dla.config import HardwareConfig
    from dla.resolve import load_hardware

    return load_hardware(path) or HardwareConfig()


def spec_from_options(activations: str, weights: str, granularity: str, percentile: float, spec_file: str | None):
    """The quantization spec from options, or from a YAML/JSON file (options then ignored)."""
    from quant.spec import QuantSpec

    if spec_file:
        from dla.yamlsafe import load_yaml_safely

        data = load_yaml_safely(spec_file, "spec file") or {}
        if not isinstance(data, dict):
            raise UserError(f"{spec_file}: expected a mapping (activations:, weights:, granularity:, overrides:)")
        try:
            return QuantSpec.from_dict(data)
        except UserInputError as exc:  # name the file, as every other spec reader does
            raise UserError(f"{spec_file}: {exc}") from None
    return QuantSpec(activations, weights, granularity.replace("-", "_"), percentile)


def engine_for(model: "ResolvedModel", image: str, calib: str | None, granularity: str, hw_path: str | None, quiet: bool,
               spec=None, synthetic: int | None = None):
    """The INT/HYBRID engine (``dla.resolve.make_engine``): from the .qnet as it is, or by
    calibrating (progress bar per image)."""
    from dla.calibration import resolve_images
    from dla.resolve import make_engine

    if model.qnet is not None:
        return make_engine(model, calib=calib, synthetic=synthetic, hw=hw_path)
    hw = hardware(hw_path)
    images = resolve_images(calib, synthetic, default=Path(image) if image else None)
    total = images if isinstance(images, int) else len(images)
    with tqdm(total=total, desc="calibrating", unit="img", disable=quiet, leave=False, file=sys.stderr) as bar:
        engine = make_engine(model, calib=images if isinstance(images, list) else None,
                             synthetic=images if isinstance(images, int) else None, granularity=granularity,
                             spec=spec, hw=hw, on_image=lambda n: bar.update(), check=False)
    engine.plans()  # fail early (e.g. an activation the DLA cannot run) — before any output is written
    return engine


def model_args(args: tuple[str, ...], needs_weights: bool, quiet: bool, rest: int,
               darknet: str = "auto") -> tuple["ResolvedModel", list[str]]:
    """Split ``args`` into the model and ``rest`` further arguments (IMAGE paths), resolved by
    ``dla.resolve.resolve_model``.  The model is ``CFG WEIGHTS`` (``CFG [WEIGHTS]`` unless
    ``needs_weights``), ``MODEL.qnet``, or the name of a shipped trained model (``shapes-yolo``:
    its cfg and weights, so ``dla infer shapes-yolo IMAGE`` works as ``dla eval shapes-yolo``).

    ``darknet`` (``--darknet``) picks the fork for a cfg; a .qnet keeps its own, and naming a
    different one is an error (its integers were folded with that fork's batch norm)."""
    from dla.catalog import is_trained_name
    from dla.qnet_file import is_qnet
    from dla.resolve import resolve_model

    if args and (is_qnet(args[0]) or is_trained_name(args[0])) and len(args) == 1 + rest:
        if is_trained_name(args[0]):
            _check_images(args[1:])
        model = resolve_model(args[0], darknet=darknet)
        warn(model.net, quiet)
        return model, list(args[1:])
    n_model = 2 if needs_weights else len(args) - rest
    if len(args) != n_model + rest or n_model not in (1, 2) or (needs_weights and n_model != 2):
        want = "CFG WEIGHTS" if needs_weights else "CFG [WEIGHTS]"
        extra = " IMAGE" if rest else ""
        raise UserError(f"expected {want}{extra} or MODEL.qnet{extra}, got {len(args)} argument(s): {' '.join(args)}")
    _check_images(args[n_model:])
    weights = args[1] if n_model == 2 else None
    if weights is not None:
        not_an_image(weights)
    model = resolve_model(args[0], weights, darknet=darknet)
    warn(model.net, quiet)
    return model, list(args[n_model:])


def _check_images(images: tuple[str, ...]) -> None:
    """Every caller's further arguments are IMAGE paths: a mistyped one must fail before the
    weights load and a progress bar starts, so the user sees only the Error line."""
    for image in images:
        try:
            found = Path(image).is_file()
        except OSError as exc:  # e.g. a name longer than the file system allows
            shown = image if len(image) <= 60 else f"{image[:60]}...({len(image)} characters)"
            raise UserError(f"{shown}: cannot open ({exc.strerror or exc})") from None
        if not found:
            raise UserError(f"{image}: image not found")


def class_names(net: Network, names: str | None, shipped: list[str] | None = None) -> list[str] | None:
    """``--names``, else the model's own (a shipped trained model), else COCO/VOC by class count."""
    if names:
        return read_names(names)
    if shipped is not None:
        return shipped
    classes = max((h.classes for h in net.heads), default=0) or net.layers[net.output_index].out_shape[0]
    return default_names(classes)


def run_and_report(net: Network, image: str, mode: str, names: str | None, thresh: float, nms: float,
                    dump: str | None, out_png: str | None, json_out: str | None, quiet: bool,
                    announce: bool = True, engine=None, shipped_names: list[str] | None = None):
    from dla.dump import write_dump
    from dla.fileio import write_bytes_atomic, write_json_atomic
    from dla.infer import infer
    from golden.draw import draw_detections

    for target in (out_png, json_out):  # fail before the run, not after it
        if target and not Path(target).resolve().parent.is_dir():
            raise UserError(f"{target}: directory {Path(target).parent} does not exist")
    with progress(net, quiet, f"{net.name} [{mode}]") as bar:
        res = infer(net, image, mode, class_names(net, names, shipped_names), thresh, nms, keep_all=dump is not None,
                    on_layer=lambda spec, out: bar.update(), engine=engine)
    click.echo(f"{net.name} on {Path(image).name} ({res.image_size[0]}x{res.image_size[1]}), mode {mode}: "
               f"{res.seconds * 1e3:.0f} ms")
    for line in res.summary_lines():
        click.echo("  " + line)
    if dump:
        write_dump(dump, net, res.raw or res.outputs, mode, scales=res.scales, meta={"image": str(image)})
        if announce:
            click.echo(f"dump: {dump}/manifest.json ({len(net.layers)} layers)")
    if out_png:
        import io

        buf = io.BytesIO()
        draw_detections(image, res.detections).save(buf, format="PNG")
        write_bytes_atomic(out_png, buf.getvalue())
        if announce:
            click.echo(f"image: {out_png}")
    if json_out:
        payload = ([d.to_json() for d in res.detections] if net.is_detector
                   else [{"class": n, "prob": round(p, 6)} for n, p in res.top])
        write_json_atomic(json_out, payload)
        if announce:
            click.echo(f"json: {json_out}")
    return res


