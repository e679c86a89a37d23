"""The one exception type that means "bad input": the CLI turns it into exit code 2."""


class UsageError(Exception):
    """Bad input from the user (flag, spec file, CSV). The message is one line."""
