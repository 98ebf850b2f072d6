"""The Python `frictionless` package (an independent implementation of the Data Package and
Table Schema specs) as the oracle of the conductor's loader
(services/conductor/tests/corpus.rs).

  check           exits 0 when frictionless imports
  verdicts DIR    prints {"<package dir>": {"valid": bool, "rows": int}} for every
                  DIR/<package>/datapackage.json (rows: data rows of all resources, when valid)
"""
import json
import os
import sys


def verdicts(root):
    import frictionless

    out = {}
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name, "datapackage.json")
        if not os.path.isfile(path):
            continue
        try:
            report = frictionless.validate(path)
            valid = bool(report.valid)
            rows = sum(int((t.stats or {}).get("rows") or 0) for t in report.tasks) if valid else 0
        except Exception:  # a descriptor frictionless cannot even open is invalid
            valid, rows = False, 0
        out[name] = {"valid": valid, "rows": rows}
    return out


if __name__ == "__main__":
    if sys.argv[1] == "check":
        import frictionless  # noqa: F401

        print("{}")
    else:
        print(json.dumps(verdicts(sys.argv[2])))
