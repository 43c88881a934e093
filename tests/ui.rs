//! Compile-time behaviour of `#[job_handler]`: every misuse is one error, spanned
//! on the offending tokens (tests/ui/<class>/<mistake>.rs + .stderr), and what
//! must compile does (tests/pass/). The `.stderr` files belong to the compiler
//! named in tests/ui/README.md.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/*.rs");
    t.pass("tests/pass/*.rs");
}
