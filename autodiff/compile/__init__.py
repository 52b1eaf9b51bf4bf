"""autodiff.compile, moving into a package: for now all of it is in `rules`."""

from autodiff.compile.rules import *  # noqa: F403
from autodiff.compile.rules import MAX_NODES, CompiledFunction, CompileError, Trace, compile  # noqa: F401, A004
