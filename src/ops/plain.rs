//! A node with a plain value, on either side: `x + 1`, `2.0 * x`.
//!
//! The impls are generic over the node's type and concrete in the plain
//! value's, one per plain type. That is what lets a literal infer: for
//! `Delayed<u64> + 1`, of all the integer types only `u64` satisfies
//! `u64: Add<_>`, so the `1` is a `u64`. A shift's plain amount is only a
//! `u32`: integers shift by every integer type, so more choices would
//! leave `x << 3` ambiguous.

use std::ops::{Add, BitAnd, BitOr, BitXor, Div, Mul, Rem, Shl, Shr, Sub};
use std::time::Duration;

use super::{plain_left, plain_right};
use crate::Delayed;

/// `Delayed<T> op value` and `&Delayed<T> op value` for each value type.
macro_rules! right {
    ($Op:ident $op:ident $name:literal $sym:literal: $($Plain:ty),+) => {$(
        #[doc = concat!("A node of `lhs ", $sym, " value` for a node and a plain `", stringify!($Plain), "`: see [Operators and access](crate#operators-and-access).")]
        impl<T> $Op<$Plain> for Delayed<T>
        where
            T: $Op<$Plain> + Clone + Send + Sync + 'static,
            T::Output: Send + Sync + 'static,
        {
            type Output = Delayed<T::Output>;

            fn $op(self, rhs: $Plain) -> Self::Output {
                plain_right(&$name, self, rhs, <T as $Op<$Plain>>::$op)
            }
        }

        #[doc = concat!("A node of `lhs ", $sym, " value` for a node and a plain `", stringify!($Plain), "`: see [Operators and access](crate#operators-and-access).")]
        impl<T> $Op<$Plain> for &Delayed<T>
        where
            T: $Op<$Plain> + Clone + Send + Sync + 'static,
            T::Output: Send + Sync + 'static,
        {
            type Output = Delayed<T::Output>;

            fn $op(self, rhs: $Plain) -> Self::Output {
                plain_right(&$name, self.clone(), rhs, <T as $Op<$Plain>>::$op)
            }
        }
    )+};
}

/// `value op Delayed<U>` and `value op &Delayed<U>` for each value type.
macro_rules! left {
    ($Op:ident $op:ident $name:literal $sym:literal: $($Plain:ty),+) => {$(
        #[doc = concat!("A node of `value ", $sym, " rhs` for a plain `", stringify!($Plain), "` and a node: see [Operators and access](crate#operators-and-access).")]
        impl<U> $Op<Delayed<U>> for $Plain
        where
            $Plain: $Op<U>,
            U: Clone + Send + Sync + 'static,
            <$Plain as $Op<U>>::Output: Send + Sync + 'static,
        {
            type Output = Delayed<<$Plain as $Op<U>>::Output>;

            fn $op(self, rhs: Delayed<U>) -> Self::Output {
                plain_left(&$name, self, rhs, <$Plain as $Op<U>>::$op)
            }
        }

        #[doc = concat!("A node of `value ", $sym, " rhs` for a plain `", stringify!($Plain), "` and a node: see [Operators and access](crate#operators-and-access).")]
        impl<U> $Op<&Delayed<U>> for $Plain
        where
            $Plain: $Op<U>,
            U: Clone + Send + Sync + 'static,
            <$Plain as $Op<U>>::Output: Send + Sync + 'static,
        {
            type Output = Delayed<<$Plain as $Op<U>>::Output>;

            fn $op(self, rhs: &Delayed<U>) -> Self::Output {
                plain_left(&$name, self, rhs.clone(), <$Plain as $Op<U>>::$op)
            }
        }
    )+};
}

/// Both sides, for the numbers, `bool` and `Duration`; `&'static str` on
/// the right only (`Delayed<String> + "suffix"`: nothing adds a node to a
/// string slice).
macro_rules! plain {
    ($($Op:ident $op:ident $name:literal $sym:literal;)+) => {$(
        right!($Op $op $name $sym:
            u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize,
            f32, f64, bool, Duration, &'static str);
        left!($Op $op $name $sym:
            u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize,
            f32, f64, bool, Duration);
    )+};
}

plain! {
    Add add "add" "+";
    Sub sub "sub" "-";
    Mul mul "mul" "*";
    Div div "div" "/";
    Rem rem "rem" "%";
    BitAnd bitand "bitand" "&";
    BitOr bitor "bitor" "|";
    BitXor bitxor "bitxor" "^";
}

right!(Shl shl "shl" "<<": u32);
right!(Shr shr "shr" ">>": u32);
left!(Shl shl "shl" "<<": u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);
left!(Shr shr "shr" ">>": u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);
