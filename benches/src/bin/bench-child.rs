//! The child process of the communicate benchmarks.
//!
//! - `bench-child alternate BYTES`: writes BYTES in 64 KiB chunks, alternating
//!   between standard output and standard error.
//! - `bench-child copy`: copies standard input to standard output.

use std::io::{self, Write};

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("alternate") => {
            let total: usize = args[2].parse().expect("a byte count");
            let chunk = vec![b'x'; 64 << 10];
            let (mut out, mut err) = (io::stdout().lock(), io::stderr().lock());
            for i in 0..total / chunk.len() {
                if i % 2 == 0 {
                    out.write_all(&chunk)?;
                } else {
                    err.write_all(&chunk)?;
                }
            }
            Ok(())
        }
        Some("copy") => io::copy(&mut io::stdin().lock(), &mut io::stdout().lock()).map(drop),
        _ => panic!("usage: bench-child alternate BYTES | copy"),
    }
}
