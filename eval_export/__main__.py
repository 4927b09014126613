from babylm.cli import entry
from eval_export.commands import COMMANDS

if __name__ == "__main__":
    entry("eval_export", COMMANDS)
