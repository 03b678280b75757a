"""MkDocs hooks: pages that are generated from the code, so they cannot drift from it.

* ``<!-- generated: config-options -->`` becomes the table of :data:`flask_wechat.config.OPTIONS`;
* ``<!-- generated: fake-users -->`` becomes the table of the fake WeChat's default users;
* ``<!-- generated: api-reference -->`` becomes one mkdocstrings block per name in
  ``flask_wechat.__all__``, grouped by the module that defines it;
* the troubleshooting page must name, for every errcode section, the exception class
  :func:`flask_wechat.errors.error_for` raises for it (a mismatch fails the strict build).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import flask_wechat
from flask_wechat import config, errors
from flask_wechat.testing import DEFAULT_USERS

log = logging.getLogger("mkdocs.plugins.flask_wechat")

_MODULE_TITLES = {
    "flask_wechat.ext": "The extension",
    "flask_wechat.models": "Models",
    "flask_wechat.accounts": "Identities",
    "flask_wechat.protocol": "WeChat data",
    "flask_wechat.errors": "Errors",
}
# Sphinx roles in docstrings (:class:`~a.b.C`) read as plain code in Markdown.
_ROLE = re.compile(r":(?:class|data|meth|func|mod|attr|exc|obj):<code>(~?)([\w.]+)</code>")
_ERRCODE_SECTION = re.compile(r"^### .*\{#errcode-(-?\d+)\}$", re.MULTILINE)


def _default(value: Any) -> str:
    if value is None:
        return "*(none)*"
    return f"`{value!r}`" if isinstance(value, str) else f"`{value}`"


def config_table() -> str:
    """The configuration reference, one row per :class:`flask_wechat.config.Option`."""
    rows = ["| Key | Default | What it does |", "|---|---|---|"]
    for option in config.OPTIONS:
        text = option.help.replace("|", "\\|")
        rows.append(f"| `{option.key}`{{ #{option.key.lower()} }} | {_default(option.default)} | {text} |")
    return "\n".join(rows)


def fake_users_table() -> str:
    """The fake WeChat's default cast; control characters in nicknames shown escaped."""
    rows = ["| Key | Nickname | Notes |", "|---|---|---|"]
    for user in DEFAULT_USERS:
        printable = user.nickname.isprintable()
        notes = [
            "" if printable else "a raw control character in the nickname, as WeChat has sent",
            "" if user.headimgurl else "no avatar",
            "snapshot-page virtual user: never logged in" if user.snapshot else "",
        ]
        nickname = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in user.nickname)
        rows.append(f"| `{user.key}` | `{nickname}` | {'; '.join(note for note in notes if note)} |")
    return "\n".join(rows)


def api_reference() -> str:
    """mkdocstrings blocks for the public API, in ``__all__`` order, grouped by module."""
    groups: dict[str, list[str]] = {}
    for name in flask_wechat.__all__:
        if name.startswith("__"):
            continue
        module = getattr(flask_wechat, name).__module__
        groups.setdefault(module, []).append(name)
    parts = []
    for module, names in groups.items():
        parts.append(f"## {_MODULE_TITLES.get(module, module)}\n")
        parts += [f"::: {module}.{name}\n" for name in names]
    return "\n".join(parts)


def check_troubleshooting(markdown: str) -> None:
    """Each ``{#errcode-N}`` section must name the class WeChat's errcode N is raised as."""
    sections = list(_ERRCODE_SECTION.finditer(markdown))
    for index, match in enumerate(sections):
        end = sections[index + 1].start() if index + 1 < len(sections) else len(markdown)
        errcode = int(match.group(1))
        expected = type(errors.error_for(errcode)).__name__
        if f"`{expected}`" not in markdown[match.start() : end]:
            log.warning("troubleshooting.md: errcode %s is raised as %s; its section must say so", errcode, expected)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if page.file.src_uri == "troubleshooting.md":
        check_troubleshooting(markdown)
    generated = {
        "config-options": config_table,
        "fake-users": fake_users_table,
        "api-reference": api_reference,
    }
    for name, build in generated.items():
        marker = f"<!-- generated: {name} -->"
        if marker in markdown:
            markdown = markdown.replace(marker, build())
    return markdown


def on_page_content(html: str, **kwargs: Any) -> str:
    return _ROLE.sub(lambda m: f"<code>{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}</code>", html)
