//! What `#[delayed(cache)]` tells the cache about a function: its path,
//! code version and hand version, and how to encode its output and the
//! outputs of its inputs. Made once per function, carried on its nodes'
//! policy as the engine's opaque mark.

use std::any::Any;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::engine::hooks::AnyOutput;
use crate::engine::view::NodeView;

/// Serialized bytes, if the value was of the expected type.
type Encoded = Option<Result<Vec<u8>, postcard::Error>>;

/// A cached function, as the macro describes it.
pub(crate) struct Spec {
    pub(crate) path: &'static str,
    pub(crate) code: u64,
    pub(crate) version: &'static str,
    /// The output type's name: a function whose output type changes
    /// misses.
    pub(crate) output: &'static str,
    pub(crate) encode: fn(&(dyn Any + Send + Sync)) -> Encoded,
    pub(crate) decode: fn(&[u8]) -> Result<AnyOutput, postcard::Error>,
    pub(crate) inputs: Vec<InputCodec>,
}

/// How to encode one parameter's input, in order.
#[doc(hidden)]
pub struct InputCodec {
    pub(crate) encode: fn(&NodeView) -> Encoded,
}

/// For the macro: describes a cached function whose output is `T`.
#[doc(hidden)]
pub fn spec<T>(
    path: &'static str,
    code: u64,
    version: &'static str,
    inputs: Vec<InputCodec>,
) -> Arc<dyn Any + Send + Sync>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    Arc::new(Spec {
        path,
        code,
        version,
        output: std::any::type_name::<T>(),
        encode: |output| output.downcast_ref::<T>().map(postcard::to_stdvec),
        decode: |bytes| postcard::from_bytes::<T>(bytes).map(|value| Box::new(value) as AnyOutput),
        inputs,
    })
}

/// For the macro: a parameter of type `T`, whose input's output is keyed
/// by its serialized bytes.
#[doc(hidden)]
pub fn input<T>() -> InputCodec
where
    T: Serialize + Send + Sync + 'static,
{
    InputCodec {
        encode: |node| node.output::<T>().map(postcard::to_stdvec),
    }
}

/// The FNV-1a hash of `text`: the macro's code version of a function, the
/// same on every run and machine.
///
/// # Examples
///
/// ```
/// assert_eq!(delayed::cache::__private::fnv1a(""), 0xcbf2_9ce4_8422_2325);
/// ```
#[doc(hidden)]
pub const fn fnv1a(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}
