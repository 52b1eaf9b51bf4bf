"""MkDocs hooks for chainrule's site (scripts/build_docs.py adds this file to the config).

The docstrings are plain prose written for `help()`, not Markdown, so text such as `a[p][q]` in
a sentence reads to Markdown as a reference link, and mkdocs-autorefs warns that no page is
called `q`. Those are not broken links (the text is shown as written), so that one message is
logged as information instead of failing the strict build. Every other warning still fails it,
and scripts/build_docs.py checks every link of the built pages itself.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger("mkdocs.hooks.chainrule")


class _DocstringBrackets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and "Could not find cross-reference target" in str(
                record.msg):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def on_config(config):
    # On the handlers (MkDocs counts warnings in one of them), so that messages from the
    # plugin's sub-loggers pass through the filter too.
    for handler in logging.getLogger("mkdocs").handlers + logging.getLogger().handlers:
        if not any(isinstance(f, _DocstringBrackets) for f in handler.filters):
            handler.addFilter(_DocstringBrackets())
    return config


_HEADING_ID = re.compile(r"<h([1-6])\s+id=\"([^\"]+)\"")


def on_page_content(html: str, page, config, files) -> str:
    """A notebook page's table of contents links to its headings by their ids.

    mkdocs-jupyter makes the table of contents from the headings' text without their code
    ("The neuron as one `dot` node" gives #the-neuron-as-one-node) while the page's headings
    keep it (#the-neuron-as-one-dot-node), so such entries lead nowhere. Both list the same
    headings in the same order: each entry takes the id of its heading.
    """
    if not page.file.src_uri.endswith(".ipynb"):
        return html
    ids = [match.group(2) for match in _HEADING_ID.finditer(html)]
    entries = []

    def walk(items) -> None:
        for item in items:
            entries.append(item)
            walk(item.children)

    walk(page.toc)
    if len(entries) == len(ids):
        for entry, heading_id in zip(entries, ids):
            entry.id = heading_id
    else:  # never seen; say so rather than guess
        log.warning("docs_hooks: %s has %d headings but %d table-of-contents entries",
                    page.file.src_uri, len(ids), len(entries))
    return html
