"""The docs: a site that works offline, diagrams that render, pages in two languages, READMEs that match the code.

The site tests build the site once per run into a temporary directory with ``mkdocs build --strict``
(docs/hooks.py fetches the pinned Mermaid from the npm registry on a machine's first build, then parses
every diagram with it), or read ``FLASK_WECHAT_DOCS_SITE`` when ``make docs`` has just built it there.
Without the docs extra (mkdocs) they are skipped: ``make docs``, which CI runs, runs this module after
its build. The rendering test drives Debian's Chromium, with every request off loopback refused.
"""

from __future__ import annotations

import functools
import html
import importlib.util
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from flask_wechat import signals
from flask_wechat.i18n import MESSAGES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
ZH = DOCS / "zh"
#: Pages that must exist in both languages; the existing-app guide is held to it once it exists.
TRANSLATED = ("index.md", "quickstart.md", "troubleshooting.md")
TRANSLATED_WHEN_PRESENT = ("existing-app.md", "after-login.md", "wecom.md")
READMES = {
    "README.md": "The modules follow the design notes' layers:",
    "README.zh-CN.md": "各模块遵循设计说明中的分层：",
}
CHROMIUM = Path("/usr/bin/chromium")


# -- READMEs ---------------------------------------------------------------------------------------


def _section(text: str, start: str) -> str:
    """From ``start`` to the next heading."""
    begin = text.index(start)
    end = text.find("\n#", begin)
    return text[begin : end if end != -1 else len(text)]


@pytest.mark.parametrize("readme", sorted(READMES))
def test_readme_layer_list_names_every_module(readme: str) -> None:
    layers = _section((ROOT / readme).read_text(encoding="utf-8"), READMES[readme])
    package = ROOT / "flask_wechat"
    modules = [path.name for path in package.glob("*.py")]
    modules += [f"{path.name}/" for path in package.iterdir() if (path / "__init__.py").is_file()]
    missing = [name for name in sorted(modules) if f"`{name}`" not in layers]
    assert not missing, f"{readme}'s layer list does not name {missing}"


@pytest.mark.parametrize(("readme", "heading"), [("README.md", "### Signals"), ("README.zh-CN.md", "### 信号")])
def test_readme_signal_list_names_every_signal(readme: str, heading: str) -> None:
    section = _section((ROOT / readme).read_text(encoding="utf-8"), heading)
    listed = re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE)
    assert sorted(listed) == sorted(signals.__all__)


# -- two languages ---------------------------------------------------------------------------------


def test_translated_pages_exist_in_both_languages() -> None:
    for name in TRANSLATED:
        assert (DOCS / name).is_file() and (ZH / name).is_file(), name
    for name in TRANSLATED_WHEN_PRESENT:
        assert (DOCS / name).is_file() == (ZH / name).is_file(), f"{name} must be in English and Chinese, or in neither"
    for page in ZH.rglob("*.md"):
        assert (DOCS / page.relative_to(ZH)).is_file(), f"{page.relative_to(DOCS)} has no English original"


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in DOCS.rglob("*.md"):
        name = page.relative_to(DOCS).as_posix()
        assert re.search(rf":\s+{re.escape(name)}$", nav, re.MULTILINE), f"{name} is not in mkdocs.yml's nav"


@pytest.mark.parametrize(
    ("page", "language", "quote"),
    [("troubleshooting.md", "en", r'\*\*\d{3} "([^"]+)"'), ("zh/troubleshooting.md", "zh-CN", r"\*\*\d{3} “([^”]+)”")],
)
def test_troubleshooting_quotes_the_pages_words(page: str, language: str, quote: str) -> None:
    """The error-page texts it quotes are the ones visitors see (flask_wechat/i18n.py)."""
    quoted = re.findall(quote, (DOCS / page).read_text(encoding="utf-8"))
    assert quoted
    for text in quoted:
        assert any(text in words for words in MESSAGES[language].values()), f"{page} quotes {text!r}"


def _python_blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)


def _without_comments(code: str) -> str:
    return re.sub(r"\s*#[^\n\"]*$", "", code, flags=re.MULTILINE)


def test_quickstart_app_runs_and_sends_a_stranger_straight_to_wechat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = _python_blocks(DOCS / "quickstart.md")[0]
    monkeypatch.setenv("WECHAT_SECRET", "0123456789abcdef0123456789abcdef")
    namespace: dict[str, Any] = {"__name__": "quickstart_app"}
    exec(code.replace("sqlite:///app.db", f"sqlite:///{tmp_path / 'app.db'}"), namespace)  # noqa: S102 - our docs
    answer = namespace["create_app"]().test_client().get("/profile")
    assert answer.status_code == 302
    assert answer.location.startswith("https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx0123456789abcdef&")


@pytest.mark.parametrize("name", ["quickstart.md", "troubleshooting.md"])
def test_chinese_pages_show_the_same_code(name: str) -> None:
    english, chinese = _python_blocks(DOCS / name), _python_blocks(ZH / name)
    assert [_without_comments(block) for block in chinese] == [_without_comments(block) for block in english]


# -- the built site --------------------------------------------------------------------------------


class _Resources(HTMLParser):
    """What a page makes the browser fetch: script, style sheet, icon, image and frame URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []
        self.ids: list[str] = []
        self.lang: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if "id" in values and tag in {"h2", "h3", "h4"}:
            self.ids.append(values["id"])
        if tag == "html":
            self.lang = values.get("lang")
        if tag == "link" and values.get("rel") not in {"alternate", "canonical"}:
            self.urls.append((tag, values.get("href", "")))
        elif tag in {"script", "img", "iframe", "source", "audio", "video", "embed"} and "src" in values:
            self.urls.append((tag, values["src"]))


def _parse(path: Path) -> _Resources:
    parser = _Resources()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def _external(url: str) -> bool:
    return bool(re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", url, re.IGNORECASE)) and not url.startswith("data:")


def _page(site: Path, name: str) -> Path:
    """The built HTML of a Markdown page (directory URLs)."""
    stem = name.removesuffix(".md")
    return site / (f"{stem}.html" if stem == "404" else f"{stem.removesuffix('index')}/index.html".lstrip("/"))


@pytest.fixture(scope="module")
def hooks() -> ModuleType:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (make docs installs it and runs these)")
    spec = importlib.util.spec_from_file_location("_docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(hooks: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = os.environ.get("FLASK_WECHAT_DOCS_SITE")
    if built:
        return Path(built).resolve()
    target = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(target)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return target


def test_site_loads_nothing_from_another_host(site: Path, hooks: ModuleType) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 20
    fetched = [(page.relative_to(site), tag, url) for page in pages for tag, url in _parse(page).urls if _external(url)]
    assert not fetched
    styles = [
        css
        for css in site.rglob("*.css")
        if re.search(r"(?:url\(\s*['\"]?|@import\s+['\"])(?:https?:)?//", css.read_text())
    ]
    assert not styles
    assert not hooks.cdn_references(site)
    for host in ("unpkg.com", "jsdelivr.net", "googleapis.com", "gstatic.com", "cdnjs"):
        named = [p.name for p in site.rglob("*") if p.is_file() and host.encode() in p.read_bytes()]
        assert not named, f"{named} name {host}"


def test_pages_with_diagrams_load_the_sites_own_mermaid(site: Path, hooks: ModuleType) -> None:
    sources = {page.relative_to(DOCS).as_posix() for page in DOCS.rglob("*.md") if "```mermaid" in page.read_text()}
    assert len(sources) >= 8
    shipped = site / hooks.MERMAID.site_path
    fetched = hooks.fetch(
        hooks.MERMAID, hooks.vendor_cache(type("Config", (), {"config_file_path": ROOT / "mkdocs.yml"}))
    )
    assert shipped.read_bytes() == (fetched / hooks.MERMAID.script).read_bytes()
    assert (shipped.parent / "LICENSE").is_file()
    for name in sources:
        page = _page(site, name)
        text = page.read_text(encoding="utf-8")
        assert hooks.diagrams_in(text), name  # what the build's Mermaid check parses
        [bundle] = [url for tag, url in _parse(page).urls if tag == "script" and "/bundle." in url]
        loader = (page.parent / bundle).resolve().read_text(encoding="utf-8")
        # mkdocs-material's bundle loads Mermaid when a page has a diagram: from the site, never a CDN.
        assert f'new URL("{hooks.MERMAID.site_path}",__md_scope).href' in loader, name
        assert "unpkg" not in loader


def test_mermaid_check_catches_a_broken_diagram(site: Path, hooks: ModuleType) -> None:
    cache = hooks.vendor_cache(type("Config", (), {"config_file_path": ROOT / "mkdocs.yml"}))
    failures = hooks.check_diagrams(
        {"ok.md": ["sequenceDiagram\n    A->>B: fine"], "broken.md": ["sequenceDiagram\n    A->>>B no colon"]},
        site / hooks.MERMAID.site_path,
        hooks.node_tools(cache),
    )
    assert len(failures) == 1 and failures[0].startswith("broken.md, diagram 1: Parse error")


@pytest.mark.parametrize("name", TRANSLATED)
def test_chinese_pages_match_the_english_ones(site: Path, name: str) -> None:
    english, chinese = _parse(_page(site, name)), _parse(_page(site, f"zh/{name}"))
    assert (english.lang, chinese.lang) == ("en", "zh")
    assert chinese.ids == english.ids, "the Chinese page must keep the English sections, in order, with their anchors"
    menu = re.findall(r'<a href="([^"]+)" hreflang="(\w+)" class="md-select__link"', _page(site, name).read_text())
    stem = name.removesuffix(".md").removesuffix("index")
    assert dict((lang, url) for url, lang in menu)["zh"].endswith(f"zh/{stem}/" if stem else "zh/")
    text = _page(site, f"zh/{name}").read_text(encoding="utf-8")
    assert 'placeholder="搜索"' in text  # the theme's own words are Chinese too


# -- diagrams in a real browser --------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_diagrams_render_with_no_network(site: Path, served: str) -> None:
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)", pytrace=False)
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    pages = sorted(page for page in site.rglob("*.html") if '<pre class="mermaid">' in page.read_text(encoding="utf-8"))
    assert len(pages) >= 8
    refused: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        try:
            context = browser.new_context()
            # Any request off this server is what a reader without a network would miss.
            context.route(
                "**/*",
                lambda route: route.continue_() if route.request.url.startswith(served) else route.abort(),
            )
            context.on(
                "request", lambda request: None if request.url.startswith(served) else refused.append(request.url)
            )
            # The theme draws each diagram in a closed shadow root: open it, to look at the drawing.
            context.add_init_script(
                "const attach = Element.prototype.attachShadow;"
                "Element.prototype.attachShadow = function (options) {"
                "  return attach.call(this, {...options, mode: 'open'});"
                "};"
            )
            page = context.new_page()
            for built in pages:
                expected = built.read_text(encoding="utf-8").count('<pre class="mermaid">')
                page.goto(served + built.relative_to(site).parent.as_posix() + "/")
                # Each <pre class="mermaid"> is replaced by a <div class="mermaid"> once Mermaid drew it.
                page.wait_for_function(f"document.querySelectorAll('div.mermaid').length === {expected}", timeout=15000)
                kinds = page.evaluate(
                    "[...document.querySelectorAll('div.mermaid')].map(e =>"
                    " e.shadowRoot.querySelector('svg').getAttribute('aria-roledescription'))"
                )
                assert kinds == ["sequence"] * expected, built.relative_to(site)
        finally:
            browser.close()
    assert not refused, html.escape(", ".join(refused))
