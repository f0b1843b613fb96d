//! Gives the Linux shared library a SONAME (`libmemlane_c.so`), so that
//! programs linked to it by its full path (CMake's imported targets) record
//! the library's name, not the path it was linked from, and find it at run
//! time through the usual search (rpath, `LD_LIBRARY_PATH`, ld.so.conf).

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libmemlane_c.so");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
