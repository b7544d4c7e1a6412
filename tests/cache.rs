//! The persistent cache (`delayed::cache`): hits, keys, early cutoff,
//! outside inputs, stores, corruption, eviction, lazy reads, and how a
//! cached node is seen by callbacks, snapshots, the timeline and dot.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use delayed::cache::{Cache, Digest, DirStore, MemoryStore, SourceFile, Store, StoreFuture};
use delayed::{delayed, Callback, Delayed, Options, Outcome, TaskFinished, TaskState, Timeline};

/// A fresh directory under the system's temporary folder.
fn temp_dir(name: &str) -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "delayed-cache-test-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Counts the outcomes the callbacks hear.
#[derive(Clone, Default)]
struct Outcomes(Arc<Mutex<HashMap<&'static str, usize>>>);

impl Callback for Outcomes {
    fn task_finished(&self, task: &TaskFinished) {
        let word = match task.outcome() {
            Outcome::Done => "done",
            Outcome::Cached => "cached",
            Outcome::Failed(_) => "failed",
            _ => "other",
        };
        *self.0.lock().unwrap().entry(word).or_default() += 1;
    }
}

impl Outcomes {
    fn get(&self, word: &str) -> usize {
        self.0.lock().unwrap().get(word).copied().unwrap_or(0)
    }
}

/// A store that records every call, over a memory store.
#[derive(Default)]
struct Recording {
    inner: MemoryStore,
    gets: Mutex<Vec<String>>,
    puts: Mutex<Vec<String>>,
}

impl Store for Recording {
    fn head<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Digest>> {
        self.inner.head(key)
    }
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        self.gets.lock().unwrap().push(key.to_owned());
        self.inner.get(key)
    }
    fn put<'a>(&'a self, key: &'a str, digest: Digest, entry: Vec<u8>) -> StoreFuture<'a, ()> {
        self.puts.lock().unwrap().push(key.to_owned());
        self.inner.put(key, digest, entry)
    }
    fn remove<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        self.inner.remove(key)
    }
    fn clear(&self) -> StoreFuture<'_, ()> {
        self.inner.clear()
    }
}

static SQUARES: AtomicUsize = AtomicUsize::new(0);

#[delayed(cache)]
fn square(x: u64) -> u64 {
    SQUARES.fetch_add(1, Ordering::SeqCst);
    x * x
}

#[tokio::test]
async fn a_second_compute_reads_the_result_instead_of_running() {
    let cache = Cache::memory();
    let before = SQUARES.load(Ordering::SeqCst);
    let outcomes = Outcomes::default();
    let options = || Options::new().cache(&cache).callback(outcomes.clone());
    assert_eq!(
        square(1001).compute_with(options()).await.unwrap(),
        1001 * 1001
    );
    assert_eq!(SQUARES.load(Ordering::SeqCst), before + 1);
    assert_eq!(
        square(1001).compute_with(options()).await.unwrap(),
        1001 * 1001
    );
    assert_eq!(
        SQUARES.load(Ordering::SeqCst),
        before + 1,
        "the hit did not run"
    );
    assert_eq!((outcomes.get("done"), outcomes.get("cached")), (1, 1));
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (1, 1));
    assert!(stats.bytes_written > 0 && stats.bytes_read > 0);
    // Another argument is another key.
    assert_eq!(
        square(1002).compute_with(options()).await.unwrap(),
        1002 * 1002
    );
    assert_eq!(SQUARES.load(Ordering::SeqCst), before + 2);
}

static PLAIN_RUNS: AtomicUsize = AtomicUsize::new(0);

#[delayed]
fn plain(x: u64) -> u64 {
    PLAIN_RUNS.fetch_add(1, Ordering::SeqCst);
    x + 1
}

static UNCACHED_SQUARES: AtomicUsize = AtomicUsize::new(0);

#[delayed(cache)]
fn counted_square(x: u64) -> u64 {
    UNCACHED_SQUARES.fetch_add(1, Ordering::SeqCst);
    x * x
}

#[tokio::test]
async fn without_a_cache_or_without_the_attribute_everything_runs() {
    // A function without `cache` runs on every compute, cache or not.
    let cache = Cache::memory();
    for _ in 0..2 {
        plain(1)
            .compute_with(Options::new().cache(&cache))
            .await
            .unwrap();
    }
    assert_eq!(PLAIN_RUNS.load(Ordering::SeqCst), 2);
    // A cached function in a compute without a cache runs every time and
    // writes nothing.
    for _ in 0..2 {
        assert_eq!(counted_square(5).compute().await.unwrap(), 25);
    }
    assert_eq!(UNCACHED_SQUARES.load(Ordering::SeqCst), 2);
    assert_eq!(cache.stats().bytes_written, 0);
}

static PARITY: AtomicUsize = AtomicUsize::new(0);
static REPORTS: AtomicUsize = AtomicUsize::new(0);

#[delayed(cache)]
fn parity(x: u64) -> u64 {
    PARITY.fetch_add(1, Ordering::SeqCst);
    x % 2
}

#[delayed(cache)]
fn report(bit: u64) -> String {
    REPORTS.fetch_add(1, Ordering::SeqCst);
    format!("bit={bit}")
}

#[tokio::test]
async fn early_cutoff_an_input_that_reran_with_the_same_bytes_keeps_its_dependents() {
    let cache = Cache::memory();
    let options = || Options::new().cache(&cache);
    assert_eq!(
        report(parity(1)).compute_with(options()).await.unwrap(),
        "bit=1"
    );
    assert_eq!(
        (
            PARITY.load(Ordering::SeqCst),
            REPORTS.load(Ordering::SeqCst)
        ),
        (1, 1)
    );
    // parity(3) is a new call, so it runs; it makes the same bytes as
    // parity(1), so report keeps its key and is read, not run.
    assert_eq!(
        report(parity(3)).compute_with(options()).await.unwrap(),
        "bit=1"
    );
    assert_eq!(
        (
            PARITY.load(Ordering::SeqCst),
            REPORTS.load(Ordering::SeqCst)
        ),
        (2, 1)
    );
    // parity(2) makes other bytes: report runs.
    assert_eq!(
        report(parity(2)).compute_with(options()).await.unwrap(),
        "bit=0"
    );
    assert_eq!(
        (
            PARITY.load(Ordering::SeqCst),
            REPORTS.load(Ordering::SeqCst)
        ),
        (3, 2)
    );
}

static WORDS: AtomicUsize = AtomicUsize::new(0);

#[delayed(cache)]
fn word_count(file: SourceFile) -> usize {
    WORDS.fetch_add(1, Ordering::SeqCst);
    file.read_to_string().unwrap().split_whitespace().count()
}

#[tokio::test]
async fn a_source_file_is_keyed_by_its_content() {
    let dir = temp_dir("source");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("words.txt");
    std::fs::write(&path, "a b c").unwrap();
    let cache = Cache::dir(dir.join("cache")).unwrap();
    let options = || Options::new().cache(&cache);
    let count = || word_count(SourceFile::hashed(&path));
    assert_eq!(count().compute_with(options()).await.unwrap(), 3);
    assert_eq!(count().compute_with(options()).await.unwrap(), 3);
    assert_eq!(WORDS.load(Ordering::SeqCst), 1, "unchanged file: a hit");
    // Rewritten with the same bytes: still a hit.
    std::fs::write(&path, "a b c").unwrap();
    assert_eq!(count().compute_with(options()).await.unwrap(), 3);
    assert_eq!(WORDS.load(Ordering::SeqCst), 1);
    std::fs::write(&path, "a b c d").unwrap();
    assert_eq!(count().compute_with(options()).await.unwrap(), 4);
    assert_eq!(WORDS.load(Ordering::SeqCst), 2, "edited file: it runs");
    // The stamp of length and time sees the change too.
    let stamped = || word_count(SourceFile::stamped(&path));
    assert_eq!(stamped().compute_with(options()).await.unwrap(), 4);
    assert_eq!(stamped().compute_with(options()).await.unwrap(), 4);
    assert_eq!(WORDS.load(Ordering::SeqCst), 3);
    std::fs::write(&path, "a").unwrap();
    assert_eq!(stamped().compute_with(options()).await.unwrap(), 1);
    assert_eq!(WORDS.load(Ordering::SeqCst), 4);
    std::fs::remove_dir_all(&dir).ok();
}

#[delayed(cache)]
fn twice(x: u64) -> u64 {
    x * 2
}

static SUMS: AtomicUsize = AtomicUsize::new(0);

#[delayed(cache)]
fn total(parts: Vec<u64>) -> u64 {
    SUMS.fetch_add(1, Ordering::SeqCst);
    parts.iter().sum()
}

#[tokio::test]
async fn a_directory_cache_outlives_its_handle() {
    let dir = temp_dir("dir");
    let graph = || total(vec![twice(11), twice(12), Delayed::value(1)]);
    {
        let cache = Cache::dir(&dir).unwrap();
        assert_eq!(
            graph()
                .compute_with(Options::new().cache(&cache))
                .await
                .unwrap(),
            47
        );
    }
    let sums = SUMS.load(Ordering::SeqCst);
    // As a new process would: a new handle on the same directory.
    let cache = Cache::dir(&dir).unwrap();
    let outcomes = Outcomes::default();
    let options = Options::new().cache(&cache).callback(outcomes.clone());
    assert_eq!(graph().compute_with(options).await.unwrap(), 47);
    assert_eq!(SUMS.load(Ordering::SeqCst), sums);
    assert_eq!(outcomes.get("cached"), 3);
    assert_eq!(cache.stats().misses, 0);
    cache.clear().await.unwrap();
    assert_eq!(DirStore::open(&dir).unwrap().bytes(), 0);
    std::fs::remove_dir_all(&dir).ok();
}

static CORRUPTED: AtomicUsize = AtomicUsize::new(0);

#[delayed(cache)]
fn shout(text: String) -> String {
    CORRUPTED.fetch_add(1, Ordering::SeqCst);
    text.to_uppercase()
}

#[tokio::test]
async fn a_corrupt_or_truncated_entry_is_a_miss_never_a_wrong_result() {
    let store = Arc::new(Recording::default());
    let cache = Cache::from_arc(store.clone());
    let options = || Options::new().cache(&cache);
    assert_eq!(
        shout("hi".to_string())
            .compute_with(options())
            .await
            .unwrap(),
        "HI"
    );
    let key = store.puts.lock().unwrap()[0].clone();
    let digest = store.head(&key).await.unwrap().unwrap();
    let good = store.get(&key).await.unwrap().unwrap();
    let damaged: Vec<Vec<u8>> = vec![
        // A flipped byte in the payload.
        {
            let mut bytes = good.clone();
            *bytes.last_mut().unwrap() ^= 0x55;
            bytes
        },
        // Truncated.
        good[..good.len() - 1].to_vec(),
        // Not an entry at all.
        b"garbage".to_vec(),
        // A good entry of another function, whose bytes are no String.
        not_text_entry(&cache).await,
    ];
    for (i, bytes) in damaged.into_iter().enumerate() {
        store.put(&key, digest, bytes).await.unwrap();
        assert_eq!(
            shout("hi".to_string())
                .compute_with(options())
                .await
                .unwrap(),
            "HI"
        );
        assert_eq!(CORRUPTED.load(Ordering::SeqCst), i + 2, "damage {i} reran");
    }
    assert_eq!(cache.stats().corrupt, 4);
    // The rerun wrote a good entry back.
    assert_eq!(
        shout("hi".to_string())
            .compute_with(options())
            .await
            .unwrap(),
        "HI"
    );
    assert_eq!(CORRUPTED.load(Ordering::SeqCst), 5);
}

#[delayed(cache)]
fn not_text() -> Vec<u8> {
    vec![0xff]
}

/// The entry `not_text` leaves: a good frame whose payload does not
/// decode as a `String` (it is not UTF-8).
async fn not_text_entry(cache: &Cache) -> Vec<u8> {
    let store = Arc::new(Recording::default());
    let other = Cache::from_arc(store.clone());
    not_text()
        .compute_with(Options::new().cache(&other))
        .await
        .unwrap();
    let key = store.puts.lock().unwrap()[0].clone();
    let _ = cache;
    store.get(&key).await.unwrap().unwrap()
}

static CHAIN: AtomicUsize = AtomicUsize::new(0);

#[delayed(cache)]
fn step(x: Vec<u8>) -> Vec<u8> {
    CHAIN.fetch_add(1, Ordering::SeqCst);
    let mut x = x;
    x.push(x.len() as u8);
    x
}

#[tokio::test]
async fn hits_are_read_lazily_only_what_is_needed_here() {
    let store = Arc::new(Recording::default());
    let cache = Cache::from_arc(store.clone());
    let chain = || step(step(step(vec![9])));
    let first = chain()
        .compute_with(Options::new().cache(&cache))
        .await
        .unwrap();
    assert_eq!(first, vec![9, 1, 2, 3]);
    assert_eq!(CHAIN.load(Ordering::SeqCst), 3);
    let puts = store.puts.lock().unwrap().clone();
    assert_eq!(puts.len(), 3);
    store.gets.lock().unwrap().clear();
    let outcomes = Outcomes::default();
    let options = Options::new().cache(&cache).callback(outcomes.clone());
    assert_eq!(chain().compute_with(options).await.unwrap(), first);
    assert_eq!(CHAIN.load(Ordering::SeqCst), 3);
    assert_eq!(outcomes.get("cached"), 3);
    // Only the root was read: its inputs are hits whose dependent is a hit.
    assert_eq!(*store.gets.lock().unwrap(), vec![puts[2].clone()]);
}

#[tokio::test]
async fn a_cached_node_has_a_state_of_its_own_in_snapshots_timeline_and_dot() {
    let cache = Cache::memory();
    let x = || twice(77).map(|x| x + 1);
    x().compute_with(Options::new().cache(&cache))
        .await
        .unwrap();
    let input = twice(77);
    let node = input.map(|x| x + 1);
    let timeline = Arc::new(Timeline::new());
    let options = Options::new().cache(&cache).callback(timeline.clone());
    assert_eq!(node.compute_with(options).await.unwrap(), 155);
    let graph = input.graph();
    assert_eq!(graph.nodes()[0].state(), TaskState::Cached, "{graph:?}");
    assert_eq!(graph.nodes()[0].name(), "twice");
    assert_eq!(TaskState::Cached.to_string(), "cached");
    let tasks = timeline.tasks();
    let twice_task = tasks.iter().find(|t| t.name() == "twice").unwrap();
    assert!(matches!(twice_task.outcome(), Outcome::Cached));
    assert!(timeline.to_svg().contains("cached"));
    assert_eq!(timeline.graph().count(TaskState::Cached), 1);
    let dot = timeline.graph().to_dot();
    assert!(
        dot.contains(">cached<"),
        "the legend lists the state: {dot}"
    );
    assert!(dot.contains("#cab2d6"), "the cached node is filled: {dot}");
}

#[cfg(feature = "progress")]
#[tokio::test]
async fn the_progress_bar_counts_cached_tasks() {
    let cache = Cache::memory();
    twice(91)
        .compute_with(Options::new().cache(&cache))
        .await
        .unwrap();
    let bar = delayed::ProgressBar::hidden();
    let options = Options::new().cache(&cache).callback(bar.clone());
    twice(91).compute_with(options).await.unwrap();
    assert_eq!(bar.cached(), 1);
    assert_eq!(bar.position(), 1);
}

static FAILS: AtomicUsize = AtomicUsize::new(0);

#[delayed(cache)]
fn fails(x: u64) -> Result<u64, String> {
    FAILS.fetch_add(1, Ordering::SeqCst);
    Err(format!("no {x}"))
}

#[tokio::test]
async fn errors_are_not_cached() {
    let cache = Cache::memory();
    for _ in 0..2 {
        let err = fails(3)
            .compute_with(Options::new().cache(&cache))
            .await
            .unwrap_err();
        let cause = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(cause.as_deref(), Some("no 3"), "{err}");
    }
    assert_eq!(FAILS.load(Ordering::SeqCst), 2);
    assert_eq!(cache.stats().bytes_written, 0);
}

#[tokio::test]
async fn memory_store_evicts_the_least_recently_used() {
    let store = MemoryStore::with_max_bytes(10);
    store.put("a", [1; 32], vec![0; 4]).await.unwrap();
    store.put("b", [2; 32], vec![0; 4]).await.unwrap();
    // Reading a makes b the least recently used.
    store.get("a").await.unwrap().unwrap();
    store.put("c", [3; 32], vec![0; 4]).await.unwrap();
    assert!(store.head("a").await.unwrap().is_some());
    assert!(store.head("b").await.unwrap().is_none());
    assert!(store.head("c").await.unwrap().is_some());
    assert_eq!(store.bytes(), 8);
}

#[tokio::test]
async fn dir_store_keeps_under_its_bound_least_recently_used_first() {
    let dir = temp_dir("lru");
    let store = DirStore::open(&dir).unwrap().max_bytes(2_500);
    store.put("a", [1; 32], vec![1; 1000]).await.unwrap();
    store.put("b", [2; 32], vec![2; 1000]).await.unwrap();
    assert_eq!(store.get("a").await.unwrap().unwrap(), vec![1; 1000]);
    store.put("c", [3; 32], vec![3; 1000]).await.unwrap();
    assert_eq!(store.head("a").await.unwrap(), Some([1; 32]));
    assert_eq!(
        store.head("b").await.unwrap(),
        None,
        "b was the least recently used"
    );
    assert_eq!(store.head("c").await.unwrap(), Some([3; 32]));
    assert!(store.bytes() <= 2_500);
    std::fs::remove_dir_all(&dir).ok();
}

static CUBES: AtomicUsize = AtomicUsize::new(0);

#[delayed(cache)]
fn cube(x: u64) -> u64 {
    CUBES.fetch_add(1, Ordering::SeqCst);
    x * x * x
}

#[test]
fn sequential_computes_use_the_cache_too() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = Cache::memory();
    let before = CUBES.load(Ordering::SeqCst);
    for _ in 0..2 {
        let options = Options::new().cache(&cache).sequential();
        assert_eq!(
            rt.block_on(cube(42).compute_with(options)).unwrap(),
            42 * 42 * 42
        );
    }
    assert_eq!(CUBES.load(Ordering::SeqCst), before + 1);
}
