"""The one error type for bad input: tools print its message on one line and exit with code 2."""


class InputError(Exception):
    """Bad user input (a file, a field, a folder); the message names what and where."""
