//! Compile-fail tests for misuse of `#[delayed]`, and one passing case that
//! covers every supported signature.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail_*.rs");
    t.pass("tests/ui/pass_*.rs");
}
