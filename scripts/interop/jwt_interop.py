#!/usr/bin/env python3
"""Independent oracle for tessera-auth's interop test (crates/tessera-auth/tests/interop_python.rs).

jwcrypto is the JOSE library of the original services (ghga-service-commons). Each subcommand
prints one JSON object on stdout. Exit code 3 means a needed package is missing.

Subcommands:
  check                  import jwcrypto, print its version
  verify FILE            FILE: {"public_jwk", "private_jwk", "token"}; load both JWKs and verify the
                         ES256 token (no claim checks); print header and claims
  sign                   generate a P-256 key, sign claims with a header carrying typ and kid;
                         print {"public_jwk", "token", "claims"}
"""

import json
import time

import oracle_cli  # beside this script


def cmd_check(_args):
    import importlib.metadata as metadata

    import jwcrypto.jwk  # noqa: F401
    import jwcrypto.jwt  # noqa: F401

    return {"jwcrypto": metadata.version("jwcrypto")}


def cmd_verify(args):
    from jwcrypto import jwk, jws

    with open(args[0], encoding="utf-8") as handle:
        request = json.load(handle)
    public = jwk.JWK.from_json(request["public_jwk"])
    private = jwk.JWK.from_json(request["private_jwk"])
    token = jws.JWS()
    token.deserialize(request["token"])
    token.verify(public, alg="ES256")
    return {
        "header": json.loads(token.objects["protected"]),
        "claims": json.loads(token.payload),
        "public_has_private": public.has_private,
        "private_has_private": private.has_private,
        "same_public": private.export_public(as_dict=True) == public.export_public(as_dict=True),
    }


def cmd_sign(_args):
    from jwcrypto import jwk, jwt

    key = jwk.JWK.generate(kty="EC", crv="P-256", kid="oracle-key")
    now = int(time.time())
    claims = {
        "id": "oracle-user",
        "name": "Ora Cle",
        "email": "oracle@example.org",
        "title": "Dr.",
        "roles": ["admin"],
        "iat": now,
        "exp": now + 600,
    }
    token = jwt.JWT(header={"alg": "ES256", "typ": "JWT", "kid": "oracle-key"}, claims=claims)
    token.make_signed_token(key)
    return {"public_jwk": key.export_public(), "token": token.serialize(), "claims": claims}


COMMANDS = {"check": cmd_check, "verify": cmd_verify, "sign": cmd_sign}



if __name__ == "__main__":
    oracle_cli.run(COMMANDS, __doc__)
