//! A node with a node: `Delayed<T> op Delayed<U>` for any `T: Op<U>`, with
//! either side by reference.

use std::ops::{Add, BitAnd, BitOr, BitXor, Div, Mul, Rem, Shl, Shr, Sub};

use super::both;
use crate::Delayed;

macro_rules! nodes {
    ($($Op:ident $op:ident $name:literal $sym:literal;)+) => {$(
        #[doc = concat!("A node of `lhs ", $sym, " rhs` for two nodes: see [Operators and access](crate#operators-and-access).")]
        impl<T, U> $Op<Delayed<U>> for Delayed<T>
        where
            T: $Op<U> + Clone + Send + Sync + 'static,
            U: Clone + Send + Sync + 'static,
            T::Output: Send + Sync + 'static,
        {
            type Output = Delayed<T::Output>;

            fn $op(self, rhs: Delayed<U>) -> Self::Output {
                both(&$name, self, rhs, <T as $Op<U>>::$op)
            }
        }

        #[doc = concat!("A node of `lhs ", $sym, " rhs` for two nodes: see [Operators and access](crate#operators-and-access).")]
        impl<T, U> $Op<&Delayed<U>> for Delayed<T>
        where
            T: $Op<U> + Clone + Send + Sync + 'static,
            U: Clone + Send + Sync + 'static,
            T::Output: Send + Sync + 'static,
        {
            type Output = Delayed<T::Output>;

            fn $op(self, rhs: &Delayed<U>) -> Self::Output {
                both(&$name, self, rhs.clone(), <T as $Op<U>>::$op)
            }
        }

        #[doc = concat!("A node of `lhs ", $sym, " rhs` for two nodes: see [Operators and access](crate#operators-and-access).")]
        impl<T, U> $Op<Delayed<U>> for &Delayed<T>
        where
            T: $Op<U> + Clone + Send + Sync + 'static,
            U: Clone + Send + Sync + 'static,
            T::Output: Send + Sync + 'static,
        {
            type Output = Delayed<T::Output>;

            fn $op(self, rhs: Delayed<U>) -> Self::Output {
                both(&$name, self.clone(), rhs, <T as $Op<U>>::$op)
            }
        }

        #[doc = concat!("A node of `lhs ", $sym, " rhs` for two nodes: see [Operators and access](crate#operators-and-access).")]
        impl<T, U> $Op<&Delayed<U>> for &Delayed<T>
        where
            T: $Op<U> + Clone + Send + Sync + 'static,
            U: Clone + Send + Sync + 'static,
            T::Output: Send + Sync + 'static,
        {
            type Output = Delayed<T::Output>;

            fn $op(self, rhs: &Delayed<U>) -> Self::Output {
                both(&$name, self.clone(), rhs.clone(), <T as $Op<U>>::$op)
            }
        }
    )+};
}

nodes! {
    Add add "add" "+";
    Sub sub "sub" "-";
    Mul mul "mul" "*";
    Div div "div" "/";
    Rem rem "rem" "%";
    BitAnd bitand "bitand" "&";
    BitOr bitor "bitor" "|";
    BitXor bitxor "bitxor" "^";
    Shl shl "shl" "<<";
    Shr shr "shr" ">>";
}
