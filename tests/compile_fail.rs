//! Compile-fail tests for misuse of `#[delayed]`, and one passing case that
//! covers every supported signature.
//!
//! The expected messages are rustc's with the default features. The
//! `nats` feature's dependencies bring more traits of the same names into
//! the build, and rustc then writes some paths in full (`std::marker::Send`
//! for `Send`, `std::hash::Hash` for `Hash`), so the cases run without it
//! (`cargo test`, as CI does).

#[cfg(not(feature = "nats"))]
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail_*.rs");
    t.pass("tests/ui/pass_*.rs");
}
