//! Links the binaries with packed relative relocations (`tessera_build`).

fn main() {
    tessera_build::link_binaries();
}
