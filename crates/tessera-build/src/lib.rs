//! What the services' build scripts share.
//!
//! [`link_binaries`] links a package's binaries with packed relative relocations
//! (`-z pack-relative-relocs`, `DT_RELR`) on Linux with glibc. A position-independent Rust
//! binary carries one 24-byte relocation per pointer in its read-only data (vtables, static
//! tables): 1.5 MB in conductor, all of which the loader reads at start and which then
//! stays resident. Packed, they take 18 KB; conductor's idle RSS fell by 2.2 MiB on an
//! `opt-level = "s"` build (docs/adr/0002-packed-relative-relocations.md). It needs GNU ld 2.38 or lld 15 and, at
//! run time, glibc 2.36 (the linker records the `GLIBC_ABI_DT_RELR` requirement); set
//! `TESSERA_NO_RELR=1` when building for an older glibc.

/// Emits the link argument for the package's binaries, unless `TESSERA_NO_RELR` is set or
/// the target is not Linux with glibc. Call it from `build.rs`.
pub fn link_binaries() {
    println!("cargo:rerun-if-env-changed=TESSERA_NO_RELR");
    let target = |key: &str| std::env::var(key).unwrap_or_default();
    if relr_wanted(
        &target("CARGO_CFG_TARGET_OS"),
        &target("CARGO_CFG_TARGET_ENV"),
        std::env::var_os("TESSERA_NO_RELR").is_some(),
    ) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether to pack: Linux with glibc, not opted out.
fn relr_wanted(os: &str, env: &str, opted_out: bool) -> bool {
    os == "linux" && env == "gnu" && !opted_out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_linux_with_glibc_packs_unless_opted_out() {
        assert!(relr_wanted("linux", "gnu", false));
        assert!(!relr_wanted("linux", "gnu", true));
        assert!(!relr_wanted("linux", "musl", false));
        assert!(!relr_wanted("macos", "", false));
    }
}
