//! Unit tests of the sinks' and sources' own logic, apart from any pipe.

use std::io::{BufRead, Write};

use proptest::prelude::*;

use super::{Lines, SinkWrite};

/// What [`BufRead::lines`] gives for `bytes`, on bytes: each line without
/// its `\n` and a `\r` before it, and the last, unterminated one as is.
fn reference_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut cursor = bytes;
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        if cursor.read_until(b'\n', &mut line).unwrap() == 0 {
            return lines;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        lines.push(line);
    }
}

/// The lines a `Sink::lines` writer passes for `bytes` written in pieces
/// cut at `cuts`, with `end_of_file` at the end.
fn split(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    {
        let mut lines = Lines {
            callback: |line: &[u8]| got.push(line.to_vec()),
            partial: Vec::new(),
        };
        let mut at = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        for cut in cuts.into_iter().chain([bytes.len()]) {
            lines.write_all(&bytes[at..cut]).unwrap();
            at = cut;
        }
        lines.end_of_file();
    }
    got
}

#[test]
fn lines_edge_cases() {
    assert_eq!(split(b"", &[]), Vec::<Vec<u8>>::new());
    assert_eq!(split(b"\n", &[]), [b""]);
    assert_eq!(split(b"a\r\nb\n", &[2]), [&b"a"[..], b"b"]);
    // A lone `\r` at the end stays, as `BufRead::lines` keeps it.
    assert_eq!(split(b"a\r", &[1]), [b"a\r"]);
    assert_eq!(split(b"\r\n\r\n", &[1, 3]), [b"", b""]);
}

proptest! {
    #[test]
    fn lines_split_like_bufread_lines_at_any_chunk_boundaries(
        bytes in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a'), any::<u8>()], 0..300),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        prop_assert_eq!(split(&bytes, &cuts), reference_lines(&bytes));
    }
}
