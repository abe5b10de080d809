//! Build-time probes. Each emits one `pipekit_*` cfg, named once here and
//! registered in Cargo.toml's `unexpected_cfgs` list, so that platform lists
//! are never copied between files.

use std::env;
use std::process::Command;

fn main() {
    let rustc = rustc_minor();
    // Cargo understands `rustc-check-cfg` from 1.80 on; older ones (the
    // MSRV's) warn about each line.
    if rustc.map_or(true, |(minor, _)| minor >= 80) {
        println!("cargo:rustc-check-cfg=cfg(pipekit_pipe2)");
        println!("cargo:rustc-check-cfg=cfg(pipekit_std_pipe)");
        println!("cargo:rustc-check-cfg=cfg(pipekit_libc_pipe_buf)");
    }
    println!("cargo:rerun-if-changed=build.rs");

    // `pipe2(O_CLOEXEC)`: the positive list of targets whose libc has it.
    // Every other Unix uses `pipe` + `F_SETFD`, so a new target is correct
    // (if racy) before it is fast, never the other way round.
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    const PIPE2: &[&str] = &[
        "linux",
        "android",
        "freebsd",
        "dragonfly",
        "netbsd",
        "openbsd",
        "illumos",
        "hurd",
        "redox",
        "fuchsia",
    ];
    if PIPE2.contains(&os.as_str()) {
        println!("cargo:rustc-cfg=pipekit_pipe2");
    }

    // Targets whose libc defines `PIPE_BUF`; elsewhere POSIX's minimum.
    const LIBC_PIPE_BUF: &[&str] = &[
        "linux",
        "android",
        "macos",
        "ios",
        "tvos",
        "watchos",
        "visionos",
        "freebsd",
        "dragonfly",
        "netbsd",
        "openbsd",
        "illumos",
        "solaris",
    ];
    if LIBC_PIPE_BUF.contains(&os.as_str()) {
        println!("cargo:rustc-cfg=pipekit_libc_pipe_buf");
    }

    // `std::io::PipeReader`/`PipeWriter` were stabilised in Rust 1.87.
    if rustc.is_some_and(|(minor, nightly)| minor >= 87 + u32::from(nightly)) {
        println!("cargo:rustc-cfg=pipekit_std_pipe");
    }
}

/// The compiler's minor version, and whether it is a nightly or dev build
/// (whose 1.N may predate a feature stabilised in 1.N).
fn rustc_minor() -> Option<(u32, bool)> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    // "rustc 1.95.0 (59807616e 2026-04-14)" or "rustc 1.97.0-nightly (...)"
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split('.');
    if parts.next()? != "1" {
        return None;
    }
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next()?;
    let nightly = patch.contains("nightly") || patch.contains("dev");
    Some((minor, nightly))
}
