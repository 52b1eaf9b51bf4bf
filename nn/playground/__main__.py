"""`python -m nn.playground [--host H] [--port P] [--no-browser]`: serve the playground."""

from nn.playground.server import main

raise SystemExit(main())
