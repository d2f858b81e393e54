//! Compile errors: each `tests/ui/*.rs` fails to build with the message in its `.stderr`.
//!
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite` after changing a message, and
//! review the diff.

#[test]
fn compile_errors() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
