//! The README's Rust example is `examples/quickstart.rs`, word for word: the first test
//! keeps the two the same, the second runs it.

include!("../examples/quickstart.rs");

#[test]
fn the_readme_shows_the_quickstart_example() {
    let readme = include_str!("../../README.md");
    let example = include_str!("../examples/quickstart.rs");
    assert!(
        readme.contains(&format!("```rust\n{example}```")),
        "README.md's Rust example is not sdk/examples/quickstart.rs; copy the file into the README"
    );
}

#[test]
fn the_quickstart_example_runs() {
    main().unwrap();
}
