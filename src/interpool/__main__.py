"""``python -m interpool COMMAND``: the package's command line.

Commands:
    check MODULE... | --installed   which modules load in a worker interpreter
"""

import sys

_USAGE = """usage: python -m interpool COMMAND [ARGS]

commands:
  check MODULE... | --installed   report which modules load in a worker interpreter
                                  (python -m interpool check --help for more)

The benchmark is python -m interpool.bench."""


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("-h", "--help"):
        print(_USAGE)
        return 0
    if not argv:
        print(_USAGE, file=sys.stderr)
        print("\npython -m interpool: error: name a command", file=sys.stderr)
        return 2
    if argv[0] == "check":
        from ._check_cli import main as check

        return check(argv[1:])
    print(_USAGE, file=sys.stderr)
    print(f"\npython -m interpool: error: unknown command {argv[0]!r} (commands: check)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
