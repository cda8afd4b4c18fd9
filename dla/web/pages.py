"""The HTML pages: Jinja2 templates that hold only layout; plain JS (static/) calls the API.

Every page sets the CSRF cookie, so the page's JS can echo it on its writes."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from dla.web.auth import current_user, ensure_csrf_cookie, user_from_request
from dla.web.context import WebContext, ctx
from dla.web.db import User

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter()


def _page(request: Request, name: str, user: User | None, **extra: object) -> Response:
    response = templates.TemplateResponse(request, name, {"user": user, **extra})
    ensure_csrf_cookie(request, response)
    return response


@lru_cache(maxsize=1)
def favicon_bytes() -> bytes:
    """The site icon, drawn here (nothing shipped, nothing from the network): a 4x4 array of
    processing elements on the header's colour, as a 16/32/48-pixel ICO."""
    import io

    from PIL import Image, ImageDraw

    size = 48
    im = Image.new("RGBA", (size, size), (36, 52, 71, 255))
    d = ImageDraw.Draw(im)
    step, pe = size // 4, size // 4 - 4
    for r in range(4):
        for c in range(4):
            x, y = c * step + 2, r * step + 2
            d.rectangle((x, y, x + pe - 1, y + pe - 1), fill=(207, 227, 255, 255) if (r + c) % 3 else (255, 183, 77, 255))
    buf = io.BytesIO()
    im.save(buf, format="ICO", sizes=[(16, 16), (32, 32), (48, 48)])
    return buf.getvalue()


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    """Browsers ask for it on every page: an icon, not a 404 in the server's log."""
    return Response(favicon_bytes(), media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, c: WebContext = Depends(ctx)) -> Response:
    return _page(request, "login.html", None, allow_signup=c.settings.allow_signup, mode="login")


@router.get("/signup", response_class=HTMLResponse)
def signup_page(request: Request, c: WebContext = Depends(ctx)) -> Response:
    if not c.settings.allow_signup:
        return RedirectResponse("/login", status_code=303)
    return _page(request, "login.html", None, allow_signup=True, mode="signup")


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    user = user_from_request(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return _page(request, "files.html", user)


@router.get("/models/{model_id}", response_class=HTMLResponse)
def model_page(request: Request, model_id: int, user: User = Depends(current_user)) -> Response:
    return _page(request, "model.html", user, model_id=model_id)


@router.get("/run", response_class=HTMLResponse)
def run_page(request: Request, user: User = Depends(current_user)) -> Response:
    return _page(request, "run.html", user)


@router.get("/quantize", response_class=HTMLResponse)
def quantize_page(request: Request, user: User = Depends(current_user)) -> Response:
    from quant.algorithms import WEIGHT_ALGORITHMS
    from quant.spec import ACTIVATION_CHOICES, GRANULARITIES

    return _page(request, "quantize.html", user, activations=ACTIVATION_CHOICES, weight_algs=WEIGHT_ALGORITHMS,
                 granularities=GRANULARITIES)


@router.get("/step", response_class=HTMLResponse)
def step_page(request: Request, user: User = Depends(current_user)) -> Response:
    return _page(request, "step.html", user)
