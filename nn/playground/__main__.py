"""`python -m nn.playground [--host H] [--port P] [--no-browser] [--max-sessions N]
[--idle-minutes M]`: serve the playground; `python -m nn.playground --export DIR [--pyodide
DIR_OR_URL] [--viz PATH]`: write it as a static site instead (`--help` explains each option)."""

from nn.playground.server import main

raise SystemExit(main())
