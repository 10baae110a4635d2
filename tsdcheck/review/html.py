"""The review's Markdown as one self-contained HTML page (no external files, no scripts), rendered
by markdown-it-py: a table of contents, an anchor on every heading, and the findings first.

Raw HTML in the Markdown is escaped (the review quotes spec texts); only the ``<br>`` that
table cells use for line breaks is kept.
"""

from __future__ import annotations

import html
import itertools
import re

from markdown_it import MarkdownIt
from markdown_it.token import Token

_STYLE = (
    "body{font-family:sans-serif;max-width:72rem;margin:2rem auto;line-height:1.4}"
    "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #aaa;padding:4px;vertical-align:top}"
    "pre{background:#f4f4f4;padding:8px;overflow-x:auto}"
    "blockquote{border-left:4px solid #ccc;margin:0;padding-left:1rem}"
    "nav{background:#f8f8f8;padding:4px 1rem;margin:1rem 0}nav ul{margin:0}"
    "h2 a.anchor,h3 a.anchor{visibility:hidden;text-decoration:none;margin-left:.3em}"
    "h2:hover a.anchor,h3:hover a.anchor{visibility:visible}"
)
FIRST = "Findings"
"""Top-level sections whose heading has this word come first: what a reader opens the review for."""


def findings_first(markdown: str) -> str:
    """The same Markdown with the ``## ...Findings...`` sections moved before the other ``##``
    sections (the text before the first ``##`` stays on top)."""
    head: list[str] = []
    sections: list[list[str]] = []
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if line.startswith("## ") and not fenced:
            sections.append([])
        (sections[-1] if sections else head).append(line)
    first = [s for s in sections if FIRST in s[0]]
    rest = [s for s in sections if FIRST not in s[0]]
    return "\n".join([*head, *(line for s in first + rest for line in s)])


def _slug(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^\w]+", "-", text.lower()).strip("-") or "section"
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    taken.add(slug)
    return slug


def _plain(inline: Token) -> str:
    """A heading's text without its Markdown (code spans, emphasis)."""
    return "".join(c.content for c in inline.children or () if c.type in ("text", "code_inline")) or inline.content


def to_html(markdown: str, title: str) -> str:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(findings_first(markdown))
    taken: set[str] = set()
    contents: list[tuple[int, str, str]] = []
    for opening, inline in itertools.pairwise(tokens):
        if opening.type != "heading_open":
            continue
        text = _plain(inline)
        slug = _slug(text, taken)
        opening.attrSet("id", slug)
        if opening.tag in ("h2", "h3"):
            contents.append((int(opening.tag[1]), text, slug))
            link = Token("html_inline", "", 0, content=f'<a class="anchor" href="#{slug}">#</a>')
            inline.children = [*(inline.children or []), link]
    body = md.renderer.render(tokens, md.options, {}).replace("&lt;br&gt;", "<br>")
    nav = "<nav><b>Contents</b><ul>" + "".join(
        f'<li style="margin-left:{(level - 2) * 1.5}rem"><a href="#{slug}">{html.escape(text)}</a></li>'
        for level, text, slug in contents
    )
    nav += "</ul></nav>"
    at = body.find("</h1>")
    body = body[: at + 5] + nav + body[at + 5 :] if at >= 0 else nav + body
    head = f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title><style>{_STYLE}</style>"
    return f"{head}\n{body}"
