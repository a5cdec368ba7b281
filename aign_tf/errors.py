"""The one exception type for user mistakes.

Anything a user can fix (a wrong flag, a missing data directory, a tensor of the wrong shape, a
corrupt file) raises `UserError` with one line that says what was wrong and how to fix it. The
command-line entry points print that line to stderr and exit with status 2.
"""
import re
import sys
from collections.abc import Callable


class UserError(ValueError):
    """A mistake the user can fix; its message is one line naming the problem and the fix."""


def check_choice(what: str, value, choices) -> None:
    """Raises UserError("unknown WHAT 'value'; use one of a, b, c") unless `value` is in `choices`."""
    if value not in choices:
        raise UserError(f"unknown {what} {value!r}; use one of {', '.join(choices)}")


def raised_in_graph(error: Exception) -> UserError | None:
    """The one line for a user mistake that a TensorFlow graph met while reading data, or None: the
    UserError line that an assertion quotes after "UserError: " (`aign_tf.data.images.decode_image`
    names a damaged file so), or an image decoder's failure on bytes damaged inside a whole file."""
    message = getattr(error, "message", None) or str(error)
    match = re.search(r"UserError: (.+?)['\]]*$", message, re.M)
    if match:
        return UserError(match[1].strip())
    if re.search(r"\{\{node [^}]*Decode(Image|Png|Jpeg|Bmp|Raw)\}\}", message):
        reason = re.search(r"transformation with iterator: [\w:]+: ([^\n]+)", message)
        return UserError(f"an image file is damaged inside ({reason[1] if reason else 'it cannot be decoded'}); "
                         "TensorFlow does not say which: find it by opening each image (e.g. PIL's Image.open(path).load())")
    return None


def exit_status(command: Callable[[], None]) -> int:
    """Runs a developer command (the data converters): 0, or 2 after printing a UserError's one line."""
    try:
        command()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
