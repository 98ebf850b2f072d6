"""The original OGDC client, ogdc-runner 0.3.0, as an interop driver.

`check` imports it and checks its version; `run ARGS...` runs its CLI with ARGS (the
environment carries OGDC_API_URL, OGDC_API_USERNAME and OGDC_API_PASSWORD) and prints
{"exit": code, "output": text} as JSON.
"""

import contextlib
import io
import json
import sys


def main() -> int:
    if sys.argv[1:] == ["check"]:
        import importlib.metadata

        from ogdc_runner.__main__ import cli  # noqa: F401

        version = importlib.metadata.version("ogdc-runner")
        if version != "0.3.0":
            print(f"ogdc-runner {version} installed, 0.3.0 expected", file=sys.stderr)
            return 1
        return 0
    if sys.argv[1:2] != ["run"]:
        print("usage: ogdc_cli.py check | run ARGS...", file=sys.stderr)
        return 2
    from ogdc_runner.__main__ import cli

    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            cli.main(args=sys.argv[2:], prog_name="ogdc-runner", standalone_mode=False)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except Exception as e:  # the CLI's own errors (OgdcServiceApiError, …)
            print(f"{type(e).__name__}: {e}")
            code = 1
    print(json.dumps({"exit": code, "output": out.getvalue()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
