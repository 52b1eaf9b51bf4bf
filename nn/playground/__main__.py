"""`python -m nn.playground [--host H] [--port P] [--no-browser] [--max-sessions N]
[--idle-minutes M]`: serve the playground (`--help` explains each option)."""

from nn.playground.server import main

raise SystemExit(main())
