"""The page `to_html` returns: a `str` of the whole HTML file that Jupyter shows in the cell.

`HTMLPage` is a plain `str` (write it, search it, compare it) with one more method,
`_repr_html_`, which Jupyter calls to display an object. The page carries its own script and
styles, so it is shown inside an `<iframe srcdoc=...>`: it runs as it would in its own browser
tab, and cannot restyle the notebook around it.
"""

from __future__ import annotations

import html


class HTMLPage(str):
    """A complete HTML page as a string; in Jupyter, the page itself, inline in the cell.

        >>> page = HTMLPage("<!DOCTYPE html><html><body><p>hi</p></body></html>")
        >>> page.startswith("<!DOCTYPE html>"), isinstance(page, str)
        (True, True)
        >>> page._repr_html_()[:20]
        '<iframe srcdoc="&lt;'
    """

    #: Height of the inline frame in pixels; the page scrolls inside it.
    height = 640

    def _repr_html_(self) -> str:
        return (f'<iframe srcdoc="{html.escape(self, quote=True)}" '
                f'style="width: 100%; height: {self.height}px; border: 1px solid #ddd" '
                'sandbox="allow-scripts"></iframe>')
