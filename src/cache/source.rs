//! [`SourceFile`]: a file outside the graph, keyed by what it holds.

use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::codec::{self, Digest};
use crate::builder::Builder;
use crate::Delayed;

/// A file that a pipeline reads, as an input of cached functions: its
/// path and a stamp of its state, read when the node runs (each compute
/// runs it again; it is not cached). A cached function that takes a
/// `SourceFile` is keyed by that stamp, so editing the file reruns it,
/// and touching nothing does not.
///
/// - [`SourceFile::hashed`]: the stamp is the SHA-256 of the content
///   (exact: a file rewritten with the same bytes is unchanged).
/// - [`SourceFile::stamped`]: the stamp is the length and modification
///   time (cheap: no read of the content).
///
/// # Examples
///
/// ```
/// use delayed::{cache::{Cache, SourceFile}, delayed, Options};
///
/// #[delayed(cache)]
/// fn words(file: SourceFile) -> usize {
///     file.read_to_string().unwrap().split_whitespace().count()
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), delayed::Error> {
/// let path = std::env::temp_dir().join(format!("delayed-doc-source-{}.txt", std::process::id()));
/// std::fs::write(&path, "one two three").unwrap();
/// let cache = Cache::memory();
/// let count = words(SourceFile::hashed(&path));
/// assert_eq!(count.compute_with(Options::new().cache(&cache)).await?, 3);
/// # std::fs::remove_file(&path).ok();
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    path: PathBuf,
    stamp: Stamp,
}

/// What stands for the file's state in keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Stamp {
    Content(Digest),
    LengthAndTime { len: u64, modified_nanos: u128 },
}

impl SourceFile {
    /// A node that reads `path` when it runs, keyed by the SHA-256 of the
    /// file's content.
    ///
    /// The node fails (naming its key) if the file cannot be read.
    ///
    /// # Examples
    ///
    /// ```
    /// let file = delayed::cache::SourceFile::hashed("data/input.txt");
    /// # let _ = file;
    /// ```
    pub fn hashed(path: impl Into<PathBuf>) -> Delayed<SourceFile> {
        let path = path.into();
        Builder::new(&"source_file").blocking_result(move |_| {
            let content = std::fs::read(&path)?;
            Ok::<_, io::Error>(SourceFile {
                path: path.clone(),
                stamp: Stamp::Content(codec::digest(&content)),
            })
        })
    }

    /// A node that looks at `path` when it runs, keyed by the file's
    /// length and modification time: cheaper than [`hashed`], but a file
    /// rewritten with the same length within the file system's time
    /// resolution looks unchanged, and a file touched without a change
    /// looks changed.
    ///
    /// [`hashed`]: SourceFile::hashed
    ///
    /// # Examples
    ///
    /// ```
    /// let file = delayed::cache::SourceFile::stamped("data/input.txt");
    /// # let _ = file;
    /// ```
    pub fn stamped(path: impl Into<PathBuf>) -> Delayed<SourceFile> {
        let path = path.into();
        Builder::new(&"source_file").blocking_result(move |_| {
            let meta = std::fs::metadata(&path)?;
            let modified_nanos = meta
                .modified()?
                .duration_since(UNIX_EPOCH)
                .map(|since| since.as_nanos())
                .unwrap_or(0);
            Ok::<_, io::Error>(SourceFile {
                path: path.clone(),
                stamp: Stamp::LengthAndTime {
                    len: meta.len(),
                    modified_nanos,
                },
            })
        })
    }

    /// The file's path.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let path = std::env::temp_dir().join(format!("delayed-doc-path-{}.txt", std::process::id()));
    /// std::fs::write(&path, "x").unwrap();
    /// let file = delayed::cache::SourceFile::stamped(&path).compute().await.unwrap();
    /// assert_eq!(file.path(), path.as_path());
    /// # std::fs::remove_file(&path).ok();
    /// # }
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file as text, now.
    ///
    /// # Errors
    ///
    /// The file cannot be read, or is not UTF-8.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let path = std::env::temp_dir().join(format!("delayed-doc-read-{}.txt", std::process::id()));
    /// std::fs::write(&path, "hello").unwrap();
    /// let file = delayed::cache::SourceFile::hashed(&path).compute().await.unwrap();
    /// assert_eq!(file.read_to_string().unwrap(), "hello");
    /// # std::fs::remove_file(&path).ok();
    /// # }
    /// ```
    pub fn read_to_string(&self) -> io::Result<String> {
        std::fs::read_to_string(&self.path)
    }
}
