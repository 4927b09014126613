"""The two kinds of failure a user can cause, each printed as one line by the CLI.

``UsageError`` (exit code 2): an unknown option or a bad value for one.
``InputError`` (exit code 1): bad input data: a missing or empty corpus, a malformed JSON line,
a wrong model type, a missing tokenizer. The message names the file, line or field and says
what to do.
"""


class KitError(Exception):
    exit_code = 1


class UsageError(KitError):
    exit_code = 2


class InputError(KitError):
    exit_code = 1
