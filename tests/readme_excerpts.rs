//! The README's code blocks that cannot be compiled as doctests (they need
//! an optional feature) are excerpts of an example that CI compiles and
//! runs: each such block's lines must appear, in order, in the example file
//! that the paragraph before the block names.

use std::fs;

#[test]
fn ignored_readme_blocks_are_excerpts_of_their_examples() {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut checked = 0;
    let mut rest = readme.as_str();
    while let Some(start) = rest.find("```rust,ignore\n") {
        let before = &rest[..start];
        let body_start = start + "```rust,ignore\n".len();
        let end = body_start + rest[body_start..].find("```").expect("an unclosed block");
        let block = &rest[body_start..end];
        let example = before
            .rfind("examples/")
            .map(|at| &before[at..])
            .and_then(|tail| tail.find(".rs").map(|dot| &tail[..dot + 3]))
            .expect("an ignored block with no `examples/NAME.rs` named before it");
        let source =
            fs::read_to_string(format!("{}/{example}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let mut lines = source.lines().map(str::trim);
        for wanted in block.lines().map(str::trim).filter(|line| !line.is_empty()) {
            assert!(
                lines.any(|line| line == wanted),
                "README line {wanted:?} is not in {example} (in order)"
            );
        }
        checked += 1;
        rest = &rest[end + 3..];
    }
    assert!(checked > 0, "the README has no ignored block to check");
}
