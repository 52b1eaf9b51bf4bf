"""The error `autodiff.compile` raises when a function cannot be compiled faithfully."""


class CompileError(RuntimeError):
    """The function cannot be compiled faithfully (the message says why and what to do)."""


CompileError.__module__ = "autodiff.compile"  # where users import it from, as tracebacks say
