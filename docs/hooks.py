"""MkDocs hooks: pages that are generated from the code, so they cannot drift from it.

* ``<!-- generated: config-options -->`` becomes the table of :data:`flask_wechat.config.OPTIONS`;
* ``<!-- generated: fake-users -->`` becomes the table of the fake WeChat's default users;
* ``<!-- generated: api-reference -->`` becomes one mkdocstrings block per name in
  ``flask_wechat.__all__``, grouped by the module that defines it;
* the troubleshooting page must name, for every errcode section, the exception class
  :func:`flask_wechat.errors.error_for` raises for it (a mismatch fails the strict build);
* the site serves Mermaid itself (see :data:`VENDORED`), and every diagram must parse with it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.utils import get_relative_url

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


def check_troubleshooting(markdown: str, name: str = "troubleshooting.md") -> None:
    """Each ``{#errcode-N}`` section must name the class WeChat's errcode N is raised as (in either language)."""
    sections = list(_ERRCODE_SECTION.finditer(markdown))
    for index, match in enumerate(sections):
        end = sections[index + 1].start() if index + 1 < len(sections) else len(markdown)
        errcode = int(match.group(1))
        expected = type(errors.error_for(errcode)).__name__
        if f"`{expected}`" not in markdown[match.start() : end]:
            log.warning("%s: errcode %s is raised as %s; its section must say so", name, errcode, expected)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if page.file.src_uri in {"troubleshooting.md", f"{CHINESE}/troubleshooting.md"}:
        check_troubleshooting(markdown, page.file.src_uri)
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


def on_page_content(html: str, page: Any, **kwargs: Any) -> str:
    _DIAGRAMS[page.file.src_uri] = diagrams_in(html)
    return _ROLE.sub(lambda m: f"<code>{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}</code>", html)


# -- Two languages ----------------------------------------------------------------------------------
# English pages live at the top, their Simplified Chinese translations under zh/ with the same file names
# and the same section anchors; docs/assets/theme gives zh/ pages the theme's Chinese words.

CHINESE = "zh"
_FILES: dict[str, Any] = {}


def on_files(files: Any, **kwargs: Any) -> None:
    _FILES.clear()
    _FILES.update({file.src_uri: file for file in files.documentation_pages()})


def translations(src_uri: str) -> dict[str, str]:
    """The page in each language it exists in, by language code (``en``, ``zh``): source paths."""
    english = src_uri.removeprefix(f"{CHINESE}/")
    candidates = {"en": english, CHINESE: f"{CHINESE}/{english}"}
    return {language: uri for language, uri in candidates.items() if uri in _FILES}


def on_page_context(context: dict[str, Any], page: Any, **kwargs: Any) -> dict[str, Any]:
    # The language menu (docs/assets/theme/partials/alternate.html) leads to this page in the other language.
    context["translations"] = {
        language: get_relative_url(_FILES[uri].url, page.url)
        for language, uri in translations(page.file.src_uri).items()
    }
    return context


# -- Scripts the site serves itself ----------------------------------------------------------------
# mkdocs-material loads Mermaid from unpkg.com when a page has a diagram (and, on a browser without
# ResizeObserver, a polyfill from there too): a reader who cannot reach that CDN, or has no network, sees
# diagram source. So the build fetches each pinned npm tarball once (npm's cache keeps it, the file lands in
# build/docs-vendor/), copies the one file the theme wants into the site, and points the theme's loader at that
# copy. The loader stays lazy: only a page with a diagram loads Mermaid's 3.5 MB, which a site-wide
# extra_javascript would put on every page. Nothing is fetched when the site is read.


@dataclass(frozen=True)
class Vendored:
    """An npm package file the site serves in place of the theme's CDN copy."""

    package: str
    version: str
    #: npm's ``dist.integrity`` of the tarball: a fetched tarball must match it.
    integrity: str
    #: The file inside the package that the site serves.
    script: str
    #: Where the theme's bundle would load it from.
    cdn_url: str

    @property
    def site_dir(self) -> str:
        return f"assets/vendor/{self.package}-{self.version}"

    @property
    def site_path(self) -> str:
        return f"{self.site_dir}/{self.script.rsplit('/', 1)[-1]}"


#: Mermaid's major version is the one mkdocs-material's bundle asks unpkg.com for.
VENDORED = (
    Vendored(
        "mermaid",
        "11.17.2",
        "sha512-V6K3C8EBdEsPFZXSKMJe6ppQOENxuHARr9GvHX4hh47lAbhMRD9qf4oEK7LoaRQxULMa80/qt5gHO73aCleBBg==",
        "dist/mermaid.min.js",
        "https://unpkg.com/mermaid@11/dist/mermaid.min.js",
    ),
    Vendored(
        "resize-observer-polyfill",
        "1.5.1",
        "sha512-LwZrotdHOo12nQuZlHEmtuXdqGoOD0OhaxopaNFxWzInpEgaLWoVuAMbTzixuosCx2nEG58ngzW3vxdWoxIgdg==",
        "dist/ResizeObserver.js",
        "https://unpkg.com/resize-observer-polyfill",
    ),
)
MERMAID = VENDORED[0]
#: Hosts whose name in a built file means a reader's browser would reach out (scripts, styles, fonts).
CDN_HOSTS = (
    "unpkg.com",
    "cdn.jsdelivr.net",
    "cdnjs.cloudflare.com",
    "fonts.googleapis.com",
    "fonts.gstatic.com",
    "ajax.googleapis.com",
    "code.jquery.com",
    "cdn.bootcdn.net",
    "cdn.staticfile.org",
)
_NODE_TOOLS = Path(__file__).parent / "assets" / "node"
_MERMAID_BLOCK = re.compile(r'<pre class="mermaid"><code>(.*?)</code></pre>', re.DOTALL)
#: Diagram sources by page, as the browser hands them to Mermaid.
_DIAGRAMS: dict[str, list[str]] = {}


def diagrams_in(page_html: str) -> list[str]:
    """The Mermaid sources of a rendered page (superfences' ``<pre class="mermaid">``)."""
    return [html.unescape(body) for body in _MERMAID_BLOCK.findall(page_html)]


def vendor_cache(config: Any) -> Path:
    """Where fetched packages and the Node tools live between builds (``make clean`` removes it)."""
    return Path(config.config_file_path).resolve().parent / "build" / "docs-vendor"


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise PluginError("the docs build needs npm (and Node) once, to fetch Mermaid: apt-get install npm")
    return npm


def fetch(item: Vendored, cache: Path) -> Path:
    """The package's script and LICENSE in the cache, fetched from the npm registry the first time."""
    target = cache / f"{item.package}-{item.version}"
    if (target / item.script).is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    log.info("fetching %s@%s from the npm registry", item.package, item.version)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        subprocess.run(  # noqa: S603 - npm with fixed arguments, no shell
            [
                _npm(),
                "pack",
                f"{item.package}@{item.version}",
                "--pack-destination",
                tmp,
                "--prefer-offline",
                "--silent",
            ],
            cwd=tmp,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        [tarball] = Path(tmp).glob("*.tgz")
        digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
        if digest != item.integrity:
            raise PluginError(f"{item.package}@{item.version} from npm is not the pinned tarball ({digest})")
        staging = Path(tmp) / "package"
        with tarfile.open(tarball) as archive:
            for name in (item.script, "LICENSE"):
                member = archive.extractfile(f"package/{name}")
                if member is None:
                    raise PluginError(f"{item.package}@{item.version} has no {name}")
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                (staging / name).write_bytes(member.read())
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


def node_tools(cache: Path) -> Path:
    """jsdom for the diagram check, installed by ``npm ci`` from docs/assets/node (again when its lock changes)."""
    target = cache / "node"
    lock = (_NODE_TOOLS / "package-lock.json").read_bytes()
    installed = target / "package-lock.json"
    if installed.is_file() and installed.read_bytes() == lock and (target / "node_modules" / "jsdom").is_dir():
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(_NODE_TOOLS / name, target / name)
    log.info("installing the docs' Node tools (jsdom) from the npm registry")
    subprocess.run(  # noqa: S603 - npm with fixed arguments, no shell
        [_npm(), "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"],
        cwd=target,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return target


def check_diagrams(diagrams: dict[str, list[str]], mermaid_js: Path, tools: Path) -> list[str]:
    """Parse every diagram with Mermaid's own parser (in jsdom); one message per diagram that fails."""
    batch = [
        {"where": f"{page}, diagram {number}", "source": source}
        for page, sources in sorted(diagrams.items())
        for number, source in enumerate(sources, 1)
    ]
    node = shutil.which("node")
    if node is None:
        raise PluginError("the docs build needs Node to check the Mermaid diagrams: apt-get install npm")
    result = subprocess.run(  # noqa: S603 - node with fixed arguments, no shell
        [node, str(_NODE_TOOLS / "check-mermaid.cjs"), str(mermaid_js)],
        input=json.dumps(batch),
        capture_output=True,
        text=True,
        env={**os.environ, "NODE_PATH": str(tools / "node_modules")},
        check=False,
    )
    if result.returncode != 0:
        raise PluginError(f"the Mermaid check did not run: {result.stderr.strip()}")
    return [f"{failure['where']}: {failure['error']}" for failure in json.loads(result.stdout)]


def serve_vendored(site_dir: Path, cache: Path) -> list[str]:
    """Copy the vendored files into the site and point the theme's bundle at them; what went wrong, if anything."""
    problems = []
    for item in VENDORED:
        source = fetch(item, cache)
        target = site_dir / item.site_dir
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / item.script, site_dir / item.site_path)
        shutil.copyfile(source / "LICENSE", target / "LICENSE")
    for bundle in sorted((site_dir / "assets" / "javascripts").glob("bundle.*.min.js")):
        text = bundle.read_text(encoding="utf-8")
        for item in VENDORED:
            # The loader builds a <script src>: resolve the path against the site's root, as the theme does.
            loaded = f"new URL({json.dumps(item.site_path)},__md_scope).href"
            if json.dumps(item.cdn_url) not in text and loaded not in text:
                problems.append(f"{bundle.name} no longer loads {item.cdn_url}: update VENDORED in docs/hooks.py")
            text = text.replace(json.dumps(item.cdn_url), loaded)
        # Its source map (the theme's TypeScript, for debugging the theme) describes the CDN it no longer uses.
        text = re.sub(r"\n//# sourceMappingURL=\S+\s*$", "\n", text)
        bundle.with_name(bundle.name + ".map").unlink(missing_ok=True)
        bundle.write_text(text, encoding="utf-8")
    return problems


def cdn_references(site_dir: Path) -> list[str]:
    """Built text files that name a CDN host, with the host."""
    found = []
    for path in sorted(site_dir.rglob("*")):
        if path.suffix not in {".html", ".js", ".css", ".map", ".json", ".xml", ".txt"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{path.relative_to(site_dir)}: {host}" for host in CDN_HOSTS if host in text]
    return found


def on_pre_build(config: Any, **kwargs: Any) -> None:
    _DIAGRAMS.clear()


def on_post_build(config: Any, **kwargs: Any) -> None:
    cache = vendor_cache(config)
    site_dir = Path(config.site_dir)
    for problem in serve_vendored(site_dir, cache) + cdn_references(site_dir):
        log.warning("the built site must not load anything from a CDN: %s", problem)
    mermaid_js = site_dir / MERMAID.site_path
    for failure in check_diagrams(_DIAGRAMS, mermaid_js, node_tools(cache)):
        log.warning("Mermaid cannot parse %s", failure)
