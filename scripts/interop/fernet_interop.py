#!/usr/bin/env python3
"""Independent oracle for tessera-tokens' Fernet interop test (crates/tessera-tokens/tests/interop_python.rs).

`cryptography.fernet` is what the original WTS encrypts its stored refresh tokens with. Each
subcommand prints one JSON object on stdout. Exit code 3 means a needed package is missing.

Subcommands:
  check           import cryptography, print its version
  encrypt FILE    FILE: {"key", "messages": [str]}; print {"tokens": [str]} made by Python
  decrypt FILE    FILE: {"key", "tokens": [str]}; print {"messages": [str]} (no TTL, as WTS)
  generate        print {"key"}: a fresh Fernet key
"""

import json

import oracle_cli  # beside this script


def load(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def cmd_check(_args):
    import importlib.metadata as metadata

    import cryptography.fernet  # noqa: F401

    return {"cryptography": metadata.version("cryptography")}


def cmd_encrypt(args):
    from cryptography.fernet import Fernet

    request = load(args[0])
    fernet = Fernet(request["key"].encode())
    return {"tokens": [fernet.encrypt(m.encode()).decode() for m in request["messages"]]}


def cmd_decrypt(args):
    from cryptography.fernet import Fernet

    request = load(args[0])
    fernet = Fernet(request["key"].encode())
    return {"messages": [fernet.decrypt(t.encode()).decode() for t in request["tokens"]]}


def cmd_generate(_args):
    from cryptography.fernet import Fernet

    return {"key": Fernet.generate_key().decode()}


COMMANDS = {"check": cmd_check, "encrypt": cmd_encrypt, "decrypt": cmd_decrypt, "generate": cmd_generate}



if __name__ == "__main__":
    oracle_cli.run(COMMANDS, __doc__)
