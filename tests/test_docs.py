"""The README is a quickstart that keeps its promises: two set-up commands (the second is what
CI runs), about a screen per section, and every link inside the repository resolves; the
review's HTML has a table of contents, anchors and the findings first."""

import re
from pathlib import Path

from tsdcheck.review.html import to_html

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_readme_has_the_two_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text()
    setup = readme[readme.index("## Set-up: two commands") :]
    block = setup[setup.index("```sh\n") + 6 : setup.index("\n```", setup.index("```sh\n"))]
    commands = [line.split("#")[0].strip() for line in block.splitlines()]
    assert len(commands) == 2 and commands[0].startswith("./setup.sh && ")
    assert commands[1] in (ROOT / ".ci" / "run").read_text()
    assert len(readme.splitlines()) <= 190  # set-up, own library, a counterexample, races, links


def test_every_link_of_the_readme_and_docs_stays_in_the_repository_and_resolves():
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text()
        assert "../shared" not in text, f"{page.name} points outside the repository"
        for target in LINK.findall(text):
            assert not target.startswith(("http:", "https:", "/")), f"{page.name}: {target}"
            assert (page.parent / target).exists(), f"{page.name} links {target}, which does not exist"


def test_review_html_has_contents_anchors_and_the_findings_first():
    markdown = "\n".join(
        [
            "# review",
            "intro <script>alert(1)</script>",
            "## 1. Traceability",
            "| a | b |",
            "|---|---|",
            "| x<br>y | `k0` |",
            "## 5. Findings on the texts",
            "### One `finding`",
            "```",
            "## not a heading",
            "```",
        ]
    )
    page = to_html(markdown, "review")
    assert page.index('id="5-findings-on-the-texts"') < page.index('id="1-traceability"')
    contents = page[page.index("<nav>") : page.index("</nav>")]
    assert contents.index("#5-findings-on-the-texts") < contents.index("#1-traceability")
    assert 'href="#one-finding"' in contents and "not-a-heading" not in page
    assert "<td>x<br>y</td>" in page and "<code>k0</code>" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
