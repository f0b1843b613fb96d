//! The committed header `include/memlane.h` is what cbindgen makes of this
//! crate now. After changing the C API, rewrite it with
//! `MEMLANE_BLESS=1 cargo test -p memlane-c --test header`.

use std::path::Path;

#[test]
fn header_is_up_to_date() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");

    let path = crate_dir.join("include/memlane.h");
    if std::env::var_os("MEMLANE_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write include/memlane.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "include/memlane.h is out of date (first difference at line {}): regenerate it with \
             `MEMLANE_BLESS=1 cargo test -p memlane-c --test header` and commit it",
            line + 1
        );
    }
}
