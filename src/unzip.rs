//! Several outputs from one node: `unzip`, like dask's `nout`.

use crate::builder::Builder;
use crate::Delayed;

/// `"unzip"` sixteen times over. A field node's name is the slice of it
/// for its field: every one reads `"unzip"`, and where it points tells the
/// field, which is how a keyed graph exports a field node.
const NAMES: &str =
    "unzipunzipunzipunzipunzipunzipunzipunzipunzipunzipunzipunzipunzipunzipunzipunzip";

/// The `i`-th `"unzip"` of [`NAMES`].
const fn name(i: usize) -> &'static str {
    let (_, rest) = NAMES.as_bytes().split_at(i * 5);
    let (name, _) = rest.split_at(5);
    match std::str::from_utf8(name) {
        Ok(name) => name,
        Err(_) => panic!("NAMES is ASCII"),
    }
}

/// The names of field nodes, by field.
static FIELD_NAMES: [&str; 16] = [
    name(0),
    name(1),
    name(2),
    name(3),
    name(4),
    name(5),
    name(6),
    name(7),
    name(8),
    name(9),
    name(10),
    name(11),
    name(12),
    name(13),
    name(14),
    name(15),
];

/// The name of the node of field `index`, for fields up to 15.
#[allow(dead_code, reason = "for keyed graphs, which a build may leave out")]
pub(crate) fn field_name(index: usize) -> Option<&'static &'static str> {
    FIELD_NAMES.get(index)
}

/// The field a node named `name` picks, if it is a field node.
#[allow(dead_code, reason = "for keyed graphs, which a build may leave out")]
pub(crate) fn field_index(name: &'static str) -> Option<usize> {
    FIELD_NAMES
        .iter()
        .position(|field| std::ptr::eq(field.as_ptr(), name.as_ptr()) && field.len() == name.len())
}

/// A node that clones field `index` out of `whole`'s output.
fn field<T, U>(whole: &Delayed<T>, index: usize, pick: fn(&T) -> &U) -> Delayed<U>
where
    T: Send + Sync + 'static,
    U: Clone + Send + Sync + 'static,
{
    let mut builder = Builder::new(&FIELD_NAMES[index]);
    let whole = builder.borrow::<T>(whole);
    builder.sync(move |deps| pick(deps.get(&whole)).clone())
}

/// Tuples that [`Delayed::unzip`] splits: those of 1 to 12 fields, each
/// `Clone`.
///
/// Sealed: it is implemented for those tuples only.
///
/// # Examples
///
/// ```
/// use delayed::{Delayed, Unzip};
///
/// fn split_all<T: Unzip>(node: &Delayed<T>) -> T::Nodes {
///     node.unzip()
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (a,) = split_all(&Delayed::value((1,)));
/// assert_eq!(a.compute().await.unwrap(), 1);
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "`unzip` splits a node whose output is a tuple of 1 to 12 `Clone` fields, and `{Self}` is not one",
    label = "`unzip` needs a tuple of 1 to 12 fields here",
    note = "to take fields of anything else, use `map_ref`: `node.map_ref(|out| out.field.clone())`"
)]
pub trait Unzip: Sized + Send + Sync + 'static + sealed::Sealed {
    /// One node per field: `(Delayed<A>, Delayed<B>, ...)`.
    type Nodes;

    /// The field nodes of `whole`; see [`Delayed::unzip`].
    #[doc(hidden)]
    fn unzip_node(whole: &Delayed<Self>) -> Self::Nodes;
}

mod sealed {
    pub trait Sealed {}
}

impl<T: Send + Sync + 'static> Delayed<T> {
    /// Splits a node that returns a tuple (of 1 to 12 fields) into one node
    /// per field, like dask's `nout`: the tuple is computed once, and each
    /// field node clones its field out of it.
    ///
    /// Field nodes are named `unzip`. A keyed graph exports one as a field
    /// of the tuple's key (`{"ref": "split", "index": 0}`), so graphs that
    /// unzip the output of a registered function export and run again.
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
    /// #[delayed]
    /// fn stats(data: Vec<u64>) -> (u64, u64, usize) {
    ///     (*data.iter().min().unwrap(), *data.iter().max().unwrap(), data.len())
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (train, test) = split(vec![1, 2, 3, 4]).unzip();
    /// assert_eq!(train.compute().await.unwrap(), vec![1, 2, 3]);
    /// assert_eq!(test.compute().await.unwrap(), vec![4]);
    ///
    /// let (low, high, count) = stats(vec![5, 1, 9]).unzip();
    /// assert_eq!(delayed::compute((low, high, count)).await.unwrap(), (1, 9, 3));
    /// # }
    /// ```
    pub fn unzip(&self) -> T::Nodes
    where
        T: Unzip,
    {
        T::unzip_node(self)
    }
}

macro_rules! unzip {
    ($($part:ident $index:tt),+) => {
        impl<$($part),+> sealed::Sealed for ($($part,)+)
        where
            $($part: Clone + Send + Sync + 'static,)+
        {
        }

        impl<$($part),+> Unzip for ($($part,)+)
        where
            $($part: Clone + Send + Sync + 'static,)+
        {
            type Nodes = ($(Delayed<$part>,)+);

            fn unzip_node(whole: &Delayed<Self>) -> Self::Nodes {
                ($(field(whole, $index, |whole: &Self| &whole.$index),)+)
            }
        }
    };
}

unzip!(A 0);
unzip!(A 0, B 1);
unzip!(A 0, B 1, C 2);
unzip!(A 0, B 1, C 2, D 3);
unzip!(A 0, B 1, C 2, D 3, E 4);
unzip!(A 0, B 1, C 2, D 3, E 4, F 5);
unzip!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
unzip!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
unzip!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
unzip!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
unzip!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
unzip!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_name_reads_unzip_and_tells_its_field() {
        for (i, name) in FIELD_NAMES.iter().enumerate() {
            assert_eq!(*name, "unzip");
            assert_eq!(field_index(name), Some(i));
            assert!(std::ptr::eq(*field_name(i).unwrap(), *name));
        }
        assert_eq!(field_index("unzip"), None, "another \"unzip\" is no field");
        assert_eq!(field_name(16), None);
    }
}
