"""The error `autodiff.compile` raises when a function cannot be compiled faithfully."""


class CompileError(RuntimeError):
    """The function cannot be compiled faithfully (the message says why and what to do)."""
