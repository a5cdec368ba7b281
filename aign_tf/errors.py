"""The one exception type for user mistakes.

Anything a user can fix (a wrong flag, a missing data directory, a tensor of the wrong shape, a
corrupt file) raises `UserError` with one line that says what was wrong and how to fix it. The
command-line entry points print that line to stderr and exit with status 2.
"""


class UserError(ValueError):
    """A mistake the user can fix; its message is one line naming the problem and the fix."""


def check_choice(what: str, value, choices) -> None:
    """Raises UserError("unknown WHAT 'value'; use one of a, b, c") unless `value` is in `choices`."""
    if value not in choices:
        raise UserError(f"unknown {what} {value!r}; use one of {', '.join(choices)}")
