//! Unary operators: `-x` and `!x`.

use std::ops::{Neg, Not};

use super::one;
use crate::Delayed;

macro_rules! unary {
    ($($Op:ident $op:ident $name:literal $sym:literal;)+) => {$(
        #[doc = concat!("A node of `", $sym, "x`: see [Operators and access](crate#operators-and-access).")]
        impl<T> $Op for Delayed<T>
        where
            T: $Op + Clone + Send + Sync + 'static,
            T::Output: Send + Sync + 'static,
        {
            type Output = Delayed<T::Output>;

            fn $op(self) -> Self::Output {
                one(&$name, self, <T as $Op>::$op)
            }
        }

        #[doc = concat!("A node of `", $sym, "x`: see [Operators and access](crate#operators-and-access).")]
        impl<T> $Op for &Delayed<T>
        where
            T: $Op + Clone + Send + Sync + 'static,
            T::Output: Send + Sync + 'static,
        {
            type Output = Delayed<T::Output>;

            fn $op(self) -> Self::Output {
                one(&$name, self.clone(), <T as $Op>::$op)
            }
        }
    )+};
}

unary! {
    Neg neg "neg" "-";
    Not not "not" "!";
}
