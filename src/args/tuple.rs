//! Tuples of up to 12 fields, each a plain value, a node or a collection
//! of its own: `take3((a, b, 3))`.

use super::seq::whole;
use super::{Cx, Shape};
use crate::builder::{Builder, Converted};
use crate::engine::deps::Input;
use crate::{Delayed, IntoArg};

/// The shape of a tuple parameter: a tuple of the fields' shapes.
#[doc(hidden)]
#[derive(Default, Debug)]
pub struct Tuple<S>(pub S);

const TUPLE: u8 = 4;

/// A field of a tuple join: a plain value moves in, a node is waited for.
fn input<U: Send + Sync + 'static>(builder: &mut Builder, part: Converted<U>) -> Input<U> {
    match part {
        Converted::Value(value) => Input::Value(value),
        Converted::Node(node) => Input::Dep(builder.push(node)),
    }
}

macro_rules! tuple {
    ($($part:ident $shape:ident $arg:ident $value:ident $index:tt),+) => {
        impl<$($part, $shape: Shape<$part>),+> Shape<($($part,)+)> for Tuple<($($shape,)+)> {
            fn hash_plain(&self, value: &($($part,)+), cx: &mut Cx) {
                cx.tag(TUPLE);
                $(self.0.$index.hash_plain(&value.$index, cx);)+
            }
        }

        impl<$($part, $shape, $arg),+> IntoArg<($($part,)+), Tuple<($($shape,)+)>> for ($($arg,)+)
        where
            $($part: Clone + Send + Sync + 'static,
            $shape: Shape<$part>,
            $arg: IntoArg<$part, $shape>,)+
        {
            fn convert(self, shape: &Tuple<($($shape,)+)>, cx: &mut Cx) -> Converted<($($part,)+)> {
                cx.unlabeled();
                cx.tag(TUPLE);
                let parts = ($(self.$index.convert(&shape.0.$index, cx),)+);
                match parts {
                    ($(Converted::Value($value),)+) => Converted::Value(($($value,)+)),
                    parts => {
                        let mut builder = Builder::new(&"tuple").joining();
                        let mut inputs = ($(input(&mut builder, parts.$index),)+);
                        Converted::Node(builder.sync(move |deps| ($(deps.take(&mut inputs.$index),)+)))
                    }
                }
            }
        }

        impl<$($part, $shape),+> IntoArg<($($part,)+), Tuple<($($shape,)+)>> for Delayed<($($part,)+)>
        where
            $($part: Send + Sync + 'static, $shape: Shape<$part>,)+
        {
            fn convert(self, shape: &Tuple<($($shape,)+)>, cx: &mut Cx) -> Converted<($($part,)+)> {
                whole(&self, shape, cx);
                Converted::Node(self)
            }
        }

        impl<$($part, $shape),+> IntoArg<($($part,)+), Tuple<($($shape,)+)>> for &Delayed<($($part,)+)>
        where
            $($part: Send + Sync + 'static, $shape: Shape<$part>,)+
        {
            fn convert(self, shape: &Tuple<($($shape,)+)>, cx: &mut Cx) -> Converted<($($part,)+)> {
                whole(self, shape, cx);
                Converted::Node(self.clone())
            }
        }
    };
}

tuple!(A SA PA v0 0);
tuple!(A SA PA v0 0, B SB PB v1 1);
tuple!(A SA PA v0 0, B SB PB v1 1, C SC PC v2 2);
tuple!(A SA PA v0 0, B SB PB v1 1, C SC PC v2 2, D SD PD v3 3);
tuple!(A SA PA v0 0, B SB PB v1 1, C SC PC v2 2, D SD PD v3 3, E SE PE v4 4);
tuple!(A SA PA v0 0, B SB PB v1 1, C SC PC v2 2, D SD PD v3 3, E SE PE v4 4, F SF PF v5 5);
tuple!(A SA PA v0 0, B SB PB v1 1, C SC PC v2 2, D SD PD v3 3, E SE PE v4 4, F SF PF v5 5, G SG PG v6 6);
tuple!(A SA PA v0 0, B SB PB v1 1, C SC PC v2 2, D SD PD v3 3, E SE PE v4 4, F SF PF v5 5, G SG PG v6 6, H SH PH v7 7);
tuple!(A SA PA v0 0, B SB PB v1 1, C SC PC v2 2, D SD PD v3 3, E SE PE v4 4, F SF PF v5 5, G SG PG v6 6, H SH PH v7 7, I SI PI v8 8);
tuple!(A SA PA v0 0, B SB PB v1 1, C SC PC v2 2, D SD PD v3 3, E SE PE v4 4, F SF PF v5 5, G SG PG v6 6, H SH PH v7 7, I SI PI v8 8, J SJ PJ v9 9);
tuple!(A SA PA v0 0, B SB PB v1 1, C SC PC v2 2, D SD PD v3 3, E SE PE v4 4, F SF PF v5 5, G SG PG v6 6, H SH PH v7 7, I SI PI v8 8, J SJ PJ v9 9, K SK PK v10 10);
tuple!(A SA PA v0 0, B SB PB v1 1, C SC PC v2 2, D SD PD v3 3, E SE PE v4 4, F SF PF v5 5, G SG PG v6 6, H SH PH v7 7, I SI PI v8 8, J SJ PJ v9 9, K SK PK v10 10, L SL PL v11 11);
