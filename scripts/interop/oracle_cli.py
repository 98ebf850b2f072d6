"""The command-line shape every interop oracle shares.

`run(commands, doc)` dispatches `argv[1]` to one of `commands`, prints the result as JSON,
and exits 2 for a usage error (printing `doc`) and 3 when a Python package is missing, so
the Rust side can tell "oracle unavailable" from "oracle disagrees".
"""

import json
import sys


def run(commands, doc):
    argv = sys.argv
    if len(argv) < 2 or argv[1] not in commands:
        print(doc, file=sys.stderr)
        sys.exit(2)
    try:
        result = commands[argv[1]](argv[2:])
    except ImportError as error:
        print(f"missing python package: {error}", file=sys.stderr)
        sys.exit(3)
    json.dump(result, sys.stdout)
    sys.exit(0)
