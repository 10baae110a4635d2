"""The Markdown the review is written in, as one self-contained HTML page (no external files).

Only the subset ``render.py`` writes: headings, paragraphs, block quotes, lists, tables,
fenced code, inline code and bold.
"""

from __future__ import annotations

import html
import re

_STYLE = (
    "body{font-family:sans-serif;max-width:72rem;margin:2rem auto;line-height:1.4}"
    "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #aaa;padding:4px;vertical-align:top}"
    "pre{background:#f4f4f4;padding:8px;overflow-x:auto}"
    "blockquote{border-left:4px solid #ccc;margin:0;padding-left:1rem}"
)


def _inline(text: str) -> str:
    text = html.escape(text).replace("&lt;br&gt;", "<br>")
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)


def _row(line: str, tag: str) -> str:
    cells = line.strip().strip("|").split(" | ")
    return "<tr>" + "".join(f"<{tag}>{_inline(c.strip())}</{tag}>" for c in cells) + "</tr>"


def to_html(markdown: str, title: str) -> str:
    out = [f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title><style>{_STYLE}</style>"]
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            end = lines.index("```", i + 1)
            out.append("<pre>" + html.escape("\n".join(lines[i + 1 : end])) + "</pre>")
            i = end + 1
            continue
        if line.startswith("|"):
            rows = [_row(line, "th")]
            i += 2  # the separator line
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_row(lines[i], "td"))
                i += 1
            out.append("<table>" + "".join(rows) + "</table>")
            continue
        if m := re.match(r"(#+) (.*)", line):
            n = len(m.group(1))
            out.append(f"<h{n}>{_inline(m.group(2))}</h{n}>")
        elif line.startswith("> "):
            out.append(f"<blockquote>{_inline(line[2:])}</blockquote>")
        elif line.startswith("- "):
            out.append(f"<ul><li>{_inline(line[2:])}</li></ul>")
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
        i += 1
    return "\n".join(out) + "\n"
