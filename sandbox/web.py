"""Helpers every site handler uses: the instance context, Jinja rendering, sessions, flashes, forms.

Handlers are plain `async def handler(request)`; `ctx(request)` gives them this instance's state.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
FLASH_COOKIE = "flash"

_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES_DIR)),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["money"] = lambda cents: f"${cents / 100:,.2f}"
# Inlined into every page: an external stylesheet arriving after the first layout would move
# elements between the agent's observation and its click.
_env.globals["world_css"] = (STATIC_DIR / "world.css").read_text(encoding="utf-8")


@dataclass
class Ctx:
    """What a handler may touch: its own site's state, the whole world (cross-site reads), URLs."""

    state: dict
    world: dict
    urls: dict[str, str]
    instance: int
    site: str


def ctx(request: Request) -> Ctx:
    """The context of the instance and site this request was served by."""
    holder = (
        request.app.state.instance
    )  # sandbox.instance.Instance (its world is replaced on reset)
    site = request.app.state.site
    return Ctx(
        state=holder.world[site],
        world=holder.world,
        urls=holder.urls,
        instance=holder.index,
        site=site,
    )


def session_cookie(site: str) -> str:
    """Cookie name of a site's session; per site because browsers share cookies across ports."""
    return f"sid_{site}"


def agent_session_id(site: str) -> str:
    """The permanent session id of the site's agent user, seeded into every instance."""
    return f"agent-{site}-session-7f3a9c"


def current_user(request: Request) -> dict | None:
    """The logged-in user dict of this site (from `state["users"]`), or None."""
    c = ctx(request)
    sid = request.cookies.get(session_cookie(c.site))
    if not sid:
        return None
    username = c.state.get("sessions", {}).get(sid)
    if username is None:
        return None
    return c.state.get("users", {}).get(username)


def login_required(request: Request) -> Response | None:
    """A redirect to the site's login page when nobody is logged in, else None."""
    if current_user(request) is not None:
        return None
    target = request.url.path + (("?" + request.url.query) if request.url.query else "")
    return redirect("/login?" + urlencode({"next": target}))


def redirect(url: str, flash: str | None = None) -> RedirectResponse:
    """A 303 redirect; `flash` is shown once on the next rendered page."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(FLASH_COOKIE, quote(flash), path="/", httponly=True)
    return response


def paginate(items: list, page: int, per_page: int = 20) -> dict:
    """One page of `items` (1-based `page`, clamped to the valid range)."""
    pages = max(1, (len(items) + per_page - 1) // per_page)
    page = min(max(1, page), pages)
    start = (page - 1) * per_page
    return {
        "items": items[start : start + per_page],
        "page": page,
        "pages": pages,
        "total": len(items),
        "has_prev": page > 1,
        "has_next": page < pages,
    }


def int_param(request: Request, name: str, default: int = 1) -> int:
    """An integer query parameter; garbage gives the default instead of an error page."""
    try:
        return int(request.query_params.get(name, default))
    except (TypeError, ValueError):
        return default


async def form(request: Request) -> dict[str, str]:
    """The urlencoded body of a POST as a dict (last value wins)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True))


def render(request: Request, template_name: str, context: dict, status: int = 200) -> HTMLResponse:
    """Render a template with `ctx`, `user`, `flashes` and `request` always in the context."""
    raw_flash = request.cookies.get(FLASH_COOKIE)
    flashes = [unquote(raw_flash)] if raw_flash else []
    full = {
        "ctx": ctx(request),
        "user": current_user(request),
        "flashes": flashes,
        "request": request,
        **context,
    }
    html = _env.get_template(template_name).render(full)
    response = HTMLResponse(html, status_code=status)
    if raw_flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def not_found(request: Request, what: str = "Page") -> HTMLResponse:
    """A rendered 404 page inside the site's layout."""
    return render(request, "not_found.html", {"what": what}, status=404)


def start_session(request: Request, username: str) -> str:
    """Create a session for `username` in this site's state and return its id."""
    c = ctx(request)
    sid = secrets.token_hex(12)
    c.state.setdefault("sessions", {})[sid] = username
    return sid


def auth_routes(login_template: str, home: str = "/") -> list[Route]:
    """`/login` (GET form, POST check against `state["users"][name]["password"]`) and `/logout`.

    The template gets `next` and `error`; its form posts `username`, `password` and `next`.
    """

    async def login(request: Request) -> Response:
        next_url = request.query_params.get("next", home)
        if request.method == "GET":
            return render(request, login_template, {"next": next_url, "error": None})
        data = await form(request)
        username = data.get("username", "").strip()
        next_url = data.get("next") or home
        if not next_url.startswith("/"):
            next_url = home
        user = ctx(request).state.get("users", {}).get(username)
        if user is None or user.get("password") != data.get("password", ""):
            context = {"next": next_url, "error": "Invalid login or password."}
            return render(request, login_template, context, status=401)
        response = redirect(next_url, flash=f"Welcome, {user.get('name', username)}.")
        site = ctx(request).site
        response.set_cookie(session_cookie(site), start_session(request, username), path="/")
        return response

    async def logout(request: Request) -> Response:
        c = ctx(request)
        sid = request.cookies.get(session_cookie(c.site))
        if sid and sid != agent_session_id(c.site):
            c.state.get("sessions", {}).pop(sid, None)
        response = redirect("/login", flash="You have signed out.")
        response.delete_cookie(session_cookie(c.site), path="/")
        return response

    return [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["GET", "POST"]),
    ]


def page_links(base: str, params: dict[str, Any], page: dict) -> dict:
    """Prev/next URLs for a `paginate` result, keeping the other query parameters."""

    def url(n: int) -> str:
        query = {k: v for k, v in params.items() if v not in (None, "")}
        query["page"] = n
        return base + "?" + urlencode(query)

    return {
        "prev_url": url(page["page"] - 1) if page["has_prev"] else None,
        "next_url": url(page["page"] + 1) if page["has_next"] else None,
    }
