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


# What the command line says when Ctrl-C (or a signal the training loop turns into a stop) ends a
# command, and how a run goes on afterwards: said in one place for the CLI and the loop.
INTERRUPTED = "interrupted"
RESUME_HINT = "run the same command with --resume true to continue from the latest checkpoint"
