//! Several outputs from one node: `unzip`, like dask's `nout`.

use crate::builder::Builder;
use crate::Delayed;

/// A node that clones one field out of `whole`'s output.
fn field<T, U>(whole: &Delayed<T>, pick: fn(&T) -> &U) -> Delayed<U>
where
    T: Send + Sync + 'static,
    U: Clone + Send + Sync + 'static,
{
    let mut builder = Builder::new(&"unzip");
    let whole = builder.borrow::<T>(whole);
    builder.sync(move |deps| pick(deps.get(&whole)).clone())
}

macro_rules! unzip {
    ($($part:ident $index:tt),+) => {
        impl<$($part),+> Delayed<($($part,)+)>
        where
            $($part: Clone + Send + Sync + 'static,)+
        {
            /// Splits a node that returns a tuple into one node per field,
            /// like dask's `nout`: the tuple is computed once, and each
            /// field node clones its field out of it.
            ///
            /// # Examples
            ///
            /// ```
            /// use delayed::delayed;
            ///
            /// #[delayed]
            /// fn split(data: Vec<u64>) -> (Vec<u64>, Vec<u64>) {
            ///     let (train, test) = data.split_at(3);
            ///     (train.to_vec(), test.to_vec())
            /// }
            ///
            /// # #[tokio::main(flavor = "current_thread")] async fn main() {
            /// let (train, test) = split(vec![1, 2, 3, 4]).unzip();
            /// assert_eq!(train.compute().await.unwrap(), vec![1, 2, 3]);
            /// assert_eq!(test.compute().await.unwrap(), vec![4]);
            /// # }
            /// ```
            pub fn unzip(&self) -> ($(Delayed<$part>,)+) {
                ($(field(self, |whole| &whole.$index),)+)
            }
        }
    };
}

unzip!(A 0, B 1);
unzip!(A 0, B 1, C 2);
unzip!(A 0, B 1, C 2, D 3);
