//! How the macro picks a way to hash and to print a parameter's type:
//! by method resolution on the concrete type (autoref specialization), so
//! that `Tokenize` wins over `Hash`, and a type without either still works
//! in calls that are not pure.

use std::hash::Hash;
use std::marker::PhantomData;

use crate::tokenize::{Tokenize, Tokenizer};

/// Stands for the type `T` while the macro picks its hash and label.
#[doc(hidden)]
pub struct Pick<T>(PhantomData<fn() -> T>);

impl<T> Pick<T> {
    pub const fn new() -> Pick<T> {
        Pick(PhantomData)
    }
}

impl<T> Default for Pick<T> {
    fn default() -> Self {
        Pick::new()
    }
}

/// Hash with `Tokenize`: picked first.
#[doc(hidden)]
pub trait ViaTokenize<T> {
    fn hasher(&self) -> fn(&T, &mut Tokenizer);
}

impl<T: Tokenize> ViaTokenize<T> for Pick<T> {
    fn hasher(&self) -> fn(&T, &mut Tokenizer) {
        |value, tokens| value.tokenize(tokens)
    }
}

/// Hash with `Hash`: picked when the type is not `Tokenize`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a parameter of a pure function must be `Hash` or `delayed::Tokenize`",
    label = "`{T}` is neither `Hash` nor `Tokenize`"
)]
pub trait ViaHash<T> {
    fn hasher(&self) -> fn(&T, &mut Tokenizer);
}

impl<T: Hash> ViaHash<T> for &Pick<T> {
    fn hasher(&self) -> fn(&T, &mut Tokenizer) {
        |value, tokens| value.hash(tokens)
    }
}

/// Types whose small values print into a key (`fetch-77`).
#[doc(hidden)]
pub trait Label {
    /// Appends the value to `out`; false when it is not small and
    /// printable.
    fn label(&self, out: &mut String) -> bool;
}

/// Print with `Label`: picked first.
#[doc(hidden)]
pub trait ViaLabel<T> {
    fn labeler(&self) -> Option<fn(&T, &mut String) -> bool>;
}

impl<T: Label> ViaLabel<T> for Pick<T> {
    fn labeler(&self) -> Option<fn(&T, &mut String) -> bool> {
        Some(|value, out| value.label(out))
    }
}

/// No label: picked for any other type.
#[doc(hidden)]
pub trait ViaNoLabel<T> {
    fn labeler(&self) -> Option<fn(&T, &mut String) -> bool>;
}

impl<T> ViaNoLabel<T> for &Pick<T> {
    fn labeler(&self) -> Option<fn(&T, &mut String) -> bool> {
        None
    }
}

macro_rules! label_display {
    ($($ty:ty),*) => {
        $(impl Label for $ty {
            fn label(&self, out: &mut String) -> bool {
                use std::fmt::Write;
                write!(out, "{self}").is_ok()
            }
        })*
    };
}

label_display!(u128, i128, bool);

/// Integers print by hand: a leaf call's key is made on every call, and
/// `fmt` costs several times more.
macro_rules! label_unsigned {
    ($($ty:ty),*) => {
        $(impl Label for $ty {
            fn label(&self, out: &mut String) -> bool {
                push_digits(out, *self as u64);
                true
            }
        })*
    };
}

macro_rules! label_signed {
    ($($ty:ty),*) => {
        $(impl Label for $ty {
            fn label(&self, out: &mut String) -> bool {
                if *self < 0 {
                    out.push('-');
                }
                push_digits(out, self.unsigned_abs() as u64);
                true
            }
        })*
    };
}

label_unsigned!(u8, u16, u32, u64, usize);
label_signed!(i8, i16, i32, i64, isize);

/// Appends the decimal digits of `n`.
fn push_digits(out: &mut String, mut n: u64) {
    let mut digits = [0_u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[start..].iter().map(|&digit| char::from(digit)));
}

impl Label for f32 {
    fn label(&self, out: &mut String) -> bool {
        f64::from(*self).label(out)
    }
}

impl Label for f64 {
    fn label(&self, out: &mut String) -> bool {
        use std::fmt::Write;
        self.is_finite() && write!(out, "{self}").is_ok()
    }
}

/// The longest text argument a key prints.
const TEXT_MAX: usize = 24;

fn text(s: &str, out: &mut String) -> bool {
    let printable = !s.is_empty()
        && s.len() <= TEXT_MAX
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:+=@~,".contains(c));
    if printable {
        out.push_str(s);
    }
    printable
}

impl Label for char {
    fn label(&self, out: &mut String) -> bool {
        text(self.encode_utf8(&mut [0; 4]), out)
    }
}

impl Label for str {
    fn label(&self, out: &mut String) -> bool {
        text(self, out)
    }
}

impl Label for String {
    fn label(&self, out: &mut String) -> bool {
        text(self, out)
    }
}

impl Label for &str {
    fn label(&self, out: &mut String) -> bool {
        text(self, out)
    }
}

impl Label for Box<str> {
    fn label(&self, out: &mut String) -> bool {
        text(self, out)
    }
}

impl Label for std::path::PathBuf {
    fn label(&self, out: &mut String) -> bool {
        self.to_str().is_some_and(|s| text(s, out))
    }
}

#[cfg(test)]
mod tests {
    use super::Label;

    fn printed(value: &impl Label) -> String {
        let mut out = String::new();
        assert!(value.label(&mut out));
        out
    }

    #[test]
    fn integers_print_as_display_does() {
        for n in [0_u64, 7, 10, 99, 100, 12_345, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(printed(&n), n.to_string());
        }
        for n in [0_i64, -1, 9, -10, i64::from(i32::MIN), i64::MIN, i64::MAX] {
            assert_eq!(printed(&n), n.to_string());
        }
        assert_eq!(printed(&i8::MIN), "-128");
        assert_eq!(printed(&u8::MAX), "255");
        assert_eq!(printed(&(-5_isize)), "-5");
    }
}
