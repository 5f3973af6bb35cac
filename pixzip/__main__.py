"""python -m pixzip: the command line."""
from pixzip.cli.main import entry

if __name__ == "__main__":
    entry()
