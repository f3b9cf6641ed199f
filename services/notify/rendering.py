"""Messages from the Jinja2 templates in `templates/<locale>/`.

Each template has a text file with a `subject` and a `body` block (the email's text part, the
inbox entry and the SMS) and an HTML file for the email's HTML part, autoescaped so nothing a
user typed (a name, an intention's message) can inject markup.
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.notify.domain import DEFAULT_LOCALE

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
LOCALES = ("zh-CN", "en")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@cache
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,  # the templates ship with the code: no file's mtime asked per message
    )


def render(template: str, locale: str, context: dict) -> Rendered:
    locale = locale if locale in LOCALES else DEFAULT_LOCALE
    env = environment()
    text = env.get_template(f"{locale}/{template}.txt")
    variables = text.new_context(dict(context))
    subject = "".join(text.blocks["subject"](variables)).strip()
    body = "".join(text.blocks["body"](variables)).strip() + "\n"
    html = env.get_template(f"{locale}/{template}.html").render(subject=subject, **context)
    return Rendered(subject=subject, text=body, html=html)
