"""jinja2 environment over the package's templates (Markdown and HTML)."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2


@cache
def _env(autoescape: bool) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("kvetch_release", "templates"),
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def render(template: str, **context: Any) -> str:
    """Render ``template``; HTML templates are autoescaped, Markdown ones are not."""
    return _env(template.endswith(".html.j2")).get_template(template).render(**context)
