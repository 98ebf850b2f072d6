//! The Python oracles under `scripts/interop/`: independent implementations (PyNaCl, the
//! `crypt4gh` package, `cryptography`, jwcrypto) that check what the Rust code writes.
//!
//! Every script answers `check` (import its packages, exit non-zero when one is missing) and
//! prints one JSON value for its other commands; a request too large for the command line
//! goes in a JSON file whose path is the last argument.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

/// The interpreter to run the oracles with (default `python3`).
pub const PYTHON: &str = "TESSERA_PYTHON";
/// Makes a missing oracle a failure instead of a skip.
pub const REQUIRE: &str = "TESSERA_REQUIRE_INTEROP";

/// A real JupyterLab's `jupyter` executable (scripts/test installs it).
pub const JUPYTER: &str = "TESSERA_JUPYTER";

/// `$TESSERA_JUPYTER` when it names an executable file. Otherwise the test should return:
/// this prints `SKIPPED: <test>: …`, or fails the test under `TESSERA_REQUIRE_INTEROP=1`.
pub fn jupyter() -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    match std::env::var(JUPYTER) {
        Ok(path)
            if std::fs::metadata(&path)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0) =>
        {
            Some(path)
        }
        other => {
            let reason = match other {
                Ok(path) => format!("{JUPYTER}={path} is not an executable file"),
                Err(_) => format!(
                    "{JUPYTER} is not set (pip install -r scripts/interop/jupyter-requirements.txt)"
                ),
            };
            crate::skip_or_fail(REQUIRE, &crate::current_test(), &reason);
            None
        }
    }
}

/// `$TESSERA_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var(PYTHON).unwrap_or_else(|_| "python3".to_owned())
}

/// Whether `TESSERA_REQUIRE_INTEROP=1`.
pub fn required() -> bool {
    crate::flag(REQUIRE)
}

/// Whether `python <args>` succeeds; when it does not, prints `SKIPPED: <test>: <why>`
/// (naming `what` is missing), or fails the test under `TESSERA_REQUIRE_INTEROP=1`.
pub(crate) fn runs(python: &str, test: &str, args: &[&str], what: &str) -> bool {
    let reason = match Command::new(python).args(args).output() {
        Err(err) => format!("cannot run {python}: {err}"),
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!(
            "{python} lacks {what} (pip install -r scripts/interop/requirements.txt): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    };
    crate::skip_or_fail(REQUIRE, test, &reason);
    false
}

/// One oracle script, run by [`python`].
#[derive(Debug, Clone)]
pub struct Oracle {
    python: String,
    script: PathBuf,
}

impl Oracle {
    /// `scripts/interop/<file>` of this workspace.
    pub fn new(file: &str) -> Self {
        Self {
            python: python(),
            script: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../scripts/interop")
                .join(file),
        }
    }

    /// Whether the oracle's `check` passes. When it does not, the test should return: this
    /// prints `SKIPPED: <test>: <why>`, or fails the test under `TESSERA_REQUIRE_INTEROP=1`.
    pub fn available(&self, test: &str) -> bool {
        let script = self.script.to_string_lossy();
        runs(
            &self.python,
            test,
            &[&script, "check"],
            "the interop packages",
        )
    }

    /// Runs the oracle with `args` and parses what it prints; fails the test when it cannot
    /// run, exits non-zero or prints no JSON.
    pub fn run(&self, args: &[&str]) -> Value {
        let out = match Command::new(&self.python)
            .arg(&self.script)
            .args(args)
            .output()
        {
            Ok(out) => out,
            Err(err) => panic!("cannot run {}: {err}", self.python),
        };
        assert!(
            out.status.success(),
            "oracle {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
            panic!(
                "oracle {args:?} printed no JSON ({err}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Runs `command <file>` where the file holds `request` as JSON.
    pub fn run_with_request(&self, command: &str, request: &Value) -> Value {
        let file = RequestFile::new(request);
        self.run(&[command, &file.0.to_string_lossy()])
    }
}

/// Sends one presigned request with botocore's HTTP session through
/// `scripts/interop/s3_interop.py` (a real S3 client's stack, not reqwest) and returns the
/// status and body. The caller checked [`Oracle::available`].
pub fn botocore_send(
    oracle: &Oracle,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
        .collect();
    let request = serde_json::json!({
        "method": method, "url": url, "headers": headers, "body_b64": b64.encode(body),
    });
    let answer = oracle.run_with_request("send", &request);
    let status = answer["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok());
    let body = answer["body_b64"].as_str().and_then(|b| b64.decode(b).ok());
    match (status, body) {
        (Some(status), Some(body)) => (status, body),
        _ => panic!("s3_interop.py send answered {answer}"),
    }
}

/// A request in the temp dir, removed when dropped (also when the oracle fails the test).
struct RequestFile(PathBuf);

impl RequestFile {
    fn new(request: &Value) -> Self {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "tessera-oracle-{}-{}.json",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        if let Err(err) = std::fs::write(&path, request.to_string()) {
            panic!("cannot write {}: {err}", path.display());
        }
        Self(path)
    }
}

impl Drop for RequestFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// An "oracle" that is a shell script, so the plumbing is tested without Python.
    fn shell(dir: &tempfile::TempDir, body: &str) -> Oracle {
        let script = dir.path().join("oracle.sh");
        std::fs::write(&script, body).unwrap();
        Oracle {
            python: "sh".to_owned(),
            script,
        }
    }

    #[test]
    fn the_script_lives_under_scripts_interop() {
        let oracle = Oracle::new("fernet_interop.py");
        assert!(oracle.script.is_file(), "{}", oracle.script.display());
    }

    #[test]
    fn a_request_goes_in_a_file_that_is_removed_afterwards() {
        let dir = tempfile::tempdir().unwrap();
        let oracle = shell(
            &dir,
            r#"printf '{"path": "%s", "got": %s}' "$2" "$(cat "$2")""#,
        );
        let request = json!({"messages": ["a", "ü"], "n": 3});
        let answer = oracle.run_with_request("echo", &request);
        assert_eq!(answer["got"], request);
        let path = answer["path"].as_str().unwrap();
        assert!(path.ends_with(".json"), "{path}");
        assert!(!std::path::Path::new(path).exists(), "{path} left behind");
    }

    #[test]
    fn arguments_reach_the_script() {
        let dir = tempfile::tempdir().unwrap();
        let oracle = shell(&dir, r#"printf '["%s", "%s"]' "$1" "$2""#);
        assert_eq!(oracle.run(&["sign", "x y"]), json!(["sign", "x y"]));
    }

    #[test]
    #[should_panic(expected = "oracle [\"boom\"] failed: bad input")]
    fn a_failing_oracle_fails_the_test_with_its_stderr() {
        let dir = tempfile::tempdir().unwrap();
        shell(&dir, "echo bad input >&2; exit 3").run(&["boom"]);
    }

    #[test]
    #[should_panic(expected = "printed no JSON")]
    fn output_that_is_not_json_fails_the_test() {
        let dir = tempfile::tempdir().unwrap();
        shell(&dir, "echo hello").run(&["x"]);
    }

    #[test]
    fn a_passing_check_is_available() {
        let dir = tempfile::tempdir().unwrap();
        let oracle = shell(&dir, r#"[ "$1" = check ]"#);
        assert!(oracle.available("a_passing_check_is_available"));
    }
}
