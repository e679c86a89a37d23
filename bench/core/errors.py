"""The one exception type that means "bad input" (the CLI turns it into exit code 2), and
how any exception is told in one line."""


class UsageError(Exception):
    """Bad input from the user (flag, spec file, CSV). The message is one line."""


def one_line(error: BaseException) -> str:
    """An exception in one line: its class and its message's first line."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{error.__class__.__name__}: {first}"[:500]
