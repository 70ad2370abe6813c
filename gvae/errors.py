"""The one exception type the CLI turns into a one-line ``Error: ...`` with exit code 1.

Library code raises :class:`GvaeError` for anything a user can fix (a bad path, a bad recipe value, data of
the wrong resolution); every other exception is a bug and keeps its traceback.
"""


class GvaeError(Exception):
    """A problem with the user's input, stated so that the message alone tells what to do."""
