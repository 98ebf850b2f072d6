//! Sets `TESSERA_GIT_COMMIT` (reported by `/_version`) to the commit being built: `git
//! rev-parse HEAD` when this is a git checkout, else the variable from the build's
//! environment (e.g. a container build without `.git`), else `src/lib.rs` says "unknown";
//! links the binaries with packed relative relocations (`tessera_build`).

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    tessera_build::link_binaries();
    println!("cargo:rerun-if-env-changed=TESSERA_GIT_COMMIT");
    let Some(commit) = git(&["rev-parse", "HEAD"]) else {
        // option_env! in lib.rs reads the build's environment itself.
        return;
    };
    println!("cargo:rustc-env=TESSERA_GIT_COMMIT={commit}");
    // Rebuild when HEAD moves: the HEAD file (a branch switch) and the branch's ref (a
    // commit). Only existing files: a missing one would rerun this on every build.
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
    }
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    for path in watched.into_iter().flatten() {
        let path = Path::new(&root).join(path);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
