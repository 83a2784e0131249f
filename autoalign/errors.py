"""The one error type a user's mistake raises; the CLI turns it into one line and exit code 2."""


class UserError(Exception):
    """Bad input from the user: a recipe field, a file, a model URI. The message names the culprit."""
