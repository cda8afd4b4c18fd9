"""``dla serve`` (the web workbench) and ``dla augment`` (one image into five)."""
from __future__ import annotations

import click

from golden.errors import UserInputError
from golden.image import max_image_pixels


def register(group: click.Group) -> None:
    """Add ``serve`` and ``augment`` to the main ``dla`` group."""
    group.add_command(serve_cmd)
    group.add_command(augment_cmd)


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30,
          "kb": 10 ** 3, "mb": 10 ** 6, "gb": 10 ** 9}


def parse_size(text: str, option: str) -> int:
    """``4GiB``, ``512MiB``, ``1.5G``, ``1000000`` → bytes (binary units for K/M/G)."""
    import re

    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise UserInputError(f"{option}: '{text}' is not a size (e.g. 4GiB, 512MiB, 0 for no limit)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--data", "data_dir", default="dla-workbench", show_default=True, type=click.Path(file_okay=False),
              help="Directory for users' files, jobs and the SQLite database.")
@click.option("--database-url", default=None,
              help="SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db (default: SQLite in --data).")
@click.option("--no-signup", is_flag=True, help="Disable sign-up (only existing accounts can log in).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Job worker processes running at once.")
@click.option("--max-job-memory", default="4GiB", show_default=True, metavar="SIZE",
              help="Memory limit of each job and STEP session (its worker's address space): e.g. 2GiB, 512MiB, "
                   "0 = none. Models whose activations cannot fit are refused up front.")
@click.option("--max-job-seconds", default=1800.0, show_default=True, type=click.FloatRange(0),
              help="Time limit of each job and of each STEP command (0 = none).")
@click.option("--max-image-pixels", default=max_image_pixels, show_default=True, type=click.IntRange(1),
              help="Images with more pixels are refused at upload, before decoding.")
@click.option("--behind-https", is_flag=True,
              help="Served to browsers over HTTPS (a proxy in front): cookies are marked Secure, HSTS is sent.")
def serve_cmd(host: str, port: int, data_dir: str, database_url: str | None, no_signup: bool, workers: int,
              max_job_memory: str, max_job_seconds: float, max_image_pixels: int, behind_https: bool) -> None:
    """Serve the web workbench: upload models and images, run FLOAT/HYBRID/INT, quantize, STEP."""
    import uvicorn
    from sqlalchemy.exc import ArgumentError, OperationalError

    from dla.web.app import create_app

    memory = parse_size(max_job_memory, "--max-job-memory")
    try:
        app = create_app(data_dir, database_url, allow_signup=not no_signup, job_workers=workers,
                         secure_cookies=behind_https, max_image_pixels=max_image_pixels,
                         max_job_memory=memory or None, max_job_seconds=max_job_seconds or None)
    except ArgumentError as exc:
        raise UserInputError(f"--database-url: {exc}") from None
    except OperationalError as exc:
        raise UserInputError(f"cannot open the database: {str(exc).splitlines()[0]}") from None
    except ModuleNotFoundError as exc:
        raise UserInputError(f"--database-url needs the driver '{exc.name}': pip install it") from None
    click.echo(f"dla workbench on http://{host}:{port}/ (data in {data_dir})")
    uvicorn.run(app, host=host, port=port, log_level="warning")


@click.command("augment")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Output directory.")
def augment_cmd(images: tuple[str, ...], output: str) -> None:
    """Five images from each IMAGE: original, rotate, blur, flip (upside down), flop (mirrored)."""
    from dla.augment import augment_files

    written = augment_files(images, output)
    click.echo(f"wrote {len(written)} images to {output}/")
