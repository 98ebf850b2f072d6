#!/usr/bin/env python3
"""Independent oracle for tessera-crypt's interop test (crates/tessera-crypt/tests/interop_python.rs).

PyNaCl (libsodium) and the Python `crypt4gh` package check what the Rust code writes and produce
what the Rust code must read. Each subcommand prints one JSON object on stdout; binary values are
standard base64. Exit code 3 means a needed package is missing (the Rust test then skips, unless
TESSERA_REQUIRE_INTEROP=1).

Subcommands:
  check                       import everything, print package versions
  nacl-keypair                a fresh PyNaCl key pair
  nacl-open FILE              FILE: {"secret", "boxes": [...]}; open each with SealedBox
  nacl-seal FILE              FILE: {"public", "messages": [...]}; seal each with SealedBox
  c4gh-load SECKEY PUBKEY     load key files with crypt4gh.keys
  c4gh-generate DIR           write DIR/py.sec, DIR/py.pub (unencrypted) and DIR/locked.sec
  b64decode FILE              FILE: {"inputs": [str, ...]}; Python's base64.b64decode on each
"""

import base64
import json
import os

import oracle_cli  # beside this script


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def load_json(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def cmd_check(_args):
    import importlib.metadata as metadata

    import crypt4gh.keys  # noqa: F401
    import crypt4gh.keys.c4gh  # noqa: F401
    import nacl.public  # noqa: F401

    return {name: metadata.version(name) for name in ("PyNaCl", "crypt4gh")}


def cmd_nacl_keypair(_args):
    from nacl.public import PrivateKey

    secret = PrivateKey.generate()
    return {"public": b64(bytes(secret.public_key)), "secret": b64(bytes(secret))}


def cmd_nacl_open(args):
    from nacl.public import PrivateKey, SealedBox

    request = load_json(args[0])
    opener = SealedBox(PrivateKey(unb64(request["secret"])))
    return {"plaintexts": [b64(opener.decrypt(unb64(box))) for box in request["boxes"]]}


def cmd_nacl_seal(args):
    from nacl.public import PublicKey, SealedBox

    request = load_json(args[0])
    sealer = SealedBox(PublicKey(unb64(request["public"])))
    return {"boxes": [b64(sealer.encrypt(unb64(m))) for m in request["messages"]]}


def cmd_c4gh_load(args):
    from crypt4gh.keys import get_private_key, get_public_key
    from nacl.public import PrivateKey

    secret = get_private_key(args[0], callback=None)
    public = get_public_key(args[1])
    return {
        "secret": b64(secret),
        "public": b64(public),
        "derived_public": b64(bytes(PrivateKey(secret).public_key)),
    }


def cmd_c4gh_generate(args):
    from crypt4gh.keys import get_private_key
    from crypt4gh.keys.c4gh import generate
    from nacl.public import PrivateKey

    directory = args[0]
    seckey, pubkey = os.path.join(directory, "py.sec"), os.path.join(directory, "py.pub")
    generate(seckey, pubkey, passphrase=None, comment=None)
    generate(
        os.path.join(directory, "locked.sec"),
        os.path.join(directory, "locked.pub"),
        passphrase=b"correct horse",
        comment=b"tessera interop",
    )
    secret = get_private_key(seckey, callback=None)
    return {"secret": b64(secret), "public": b64(bytes(PrivateKey(secret).public_key))}


def cmd_b64decode(args):
    results = []
    for text in load_json(args[0])["inputs"]:
        try:
            results.append({"ok": b64(base64.b64decode(text))})
        except ValueError as error:
            results.append({"error": str(error)})
    return {"results": results}


COMMANDS = {
    "check": cmd_check,
    "nacl-keypair": cmd_nacl_keypair,
    "nacl-open": cmd_nacl_open,
    "nacl-seal": cmd_nacl_seal,
    "c4gh-load": cmd_c4gh_load,
    "c4gh-generate": cmd_c4gh_generate,
    "b64decode": cmd_b64decode,
}



if __name__ == "__main__":
    oracle_cli.run(COMMANDS, __doc__)
