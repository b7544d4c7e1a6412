//! Nested cross-validation of ridge regression, the second example of dask's
//! "Custom Parallel Workflows": sequential code turned into a parallel task
//! graph by changing the calls, not the structure.
//!
//! ```text
//! cargo run --release --example nested_cv
//! ```
//!
//! The outer loop splits a synthetic data set into `OUTER_FOLDS` folds. For
//! each one, an inner cross-validation on the outer training rows scores
//! every ridge penalty λ in `LAMBDAS`; the best λ is refit on all the outer
//! training rows and tested on the held-out fold. That is 205 ridge fits,
//! each one a few milliseconds of arithmetic.
//!
//! The program runs it twice:
//!
//! 1. [`nested_cv`]: plain function calls, one after another;
//! 2. [`nested_cv_graph`]: the same loops calling the `#[delayed]` twins in
//!    [`graph`], which build a graph of 255 tasks. Every fit is a
//!    `#[delayed(blocking)]` task, so independent fits run in parallel.
//!
//! Each fit adds up its sums in the same order in both runs, so the scores
//! are bitwise identical; the program checks that, then prints both times.
//! The speed-up should be close to the number of cores.
//!
//! The data set is a node made once with `Delayed::value`; every fit
//! borrows it through a `&Dataset` parameter, so it is never copied.
//!
//! `benches/pipeline.rs` reuses this file to measure the speed-up, and
//! `benches/cache.rs` reuses its [`cached`] twins (not run here) to measure
//! a rerun with a warm persistent cache.

use std::error::Error;
use std::time::{Duration, Instant};

use delayed::Delayed;

/// Rows of the synthetic data set.
pub(crate) const ROWS: usize = 4_000;

/// Features (columns) of the synthetic data set.
pub(crate) const FEATURES: usize = 150;

/// Folds of the outer loop, which estimates the test error.
const OUTER_FOLDS: usize = 5;

/// Folds of the inner loop, which picks λ.
const INNER_FOLDS: usize = 5;

/// The ridge penalties the inner loop chooses from.
const LAMBDAS: [f64; 8] = [1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1e3, 3e3];

/// Standard deviation of the noise added to the targets.
const NOISE: f64 = 8.0;

/// A data set: a row-major feature matrix and one target per row. It owns
/// them (`Vec<f64>`); [`cached`] borrows them from a serde tuple instead.
#[derive(Debug)]
pub(crate) struct Dataset<V = Vec<f64>> {
    cols: usize,
    x: V,
    y: V,
}

/// Row indices to fit on and row indices to score on.
#[derive(Debug)]
struct Split {
    train: Vec<usize>,
    test: Vec<usize>,
}

/// Fitted ridge weights (no intercept: the data are centred).
#[derive(Debug)]
struct Model {
    lambda: f64,
    weights: Vec<f64>,
}

/// The outcome of one outer fold: the chosen λ and the test error.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FoldResult {
    lambda: f64,
    mse: f64,
}

fn main() -> Result<(), Box<dyn Error>> {
    let data = Dataset::synthetic(ROWS, FEATURES, 7);
    let fits = OUTER_FOLDS * (LAMBDAS.len() * INNER_FOLDS + 1);
    println!(
        "nested cross-validation: {ROWS} rows × {FEATURES} features, \
         {OUTER_FOLDS} outer × {INNER_FOLDS} inner folds, {} λ values, {fits} ridge fits\n",
        LAMBDAS.len(),
    );

    let start = Instant::now();
    let sequential = nested_cv(&data);
    let sequential_time = start.elapsed();

    // Computed from plain synchronous code, like dask's `compute()` from a
    // script. Blocking tasks run at most one per core, so the 200 fits that
    // are ready at once do not oversubscribe the machine.
    let cores = std::thread::available_parallelism()?.get();
    let start = Instant::now();
    let parallel = nested_cv_graph(data).compute_blocking()?;
    let parallel_time = start.elapsed();

    assert_eq!(
        bits(&sequential),
        bits(&parallel),
        "the sequential and parallel runs must agree bit for bit",
    );
    print_results(&parallel);
    print_times(sequential_time, parallel_time, cores);
    Ok(())
}

/// Nested cross-validation, one call after another.
pub(crate) fn nested_cv(data: &Dataset) -> Vec<FoldResult> {
    k_fold(&data.all_rows(), OUTER_FOLDS)
        .iter()
        .map(|outer| {
            let inner = k_fold(&outer.train, INNER_FOLDS);
            let scores: Vec<f64> = LAMBDAS
                .iter()
                .map(|&lambda| {
                    let fold_scores: Vec<f64> = inner
                        .iter()
                        .map(|split| validate(lambda, data, split))
                        .collect();
                    mean(&fold_scores)
                })
                .collect();
            let best = select(&LAMBDAS, &scores);
            let model = fit(best, data, outer);
            evaluate(data, &model, outer)
        })
        .collect()
}

/// The same loops, calling the `#[delayed]` twins: each call adds a node to
/// the graph instead of running, and nothing runs until it is computed.
pub(crate) fn nested_cv_graph(data: Dataset) -> Delayed<Vec<FoldResult>> {
    let rows = data.all_rows();
    let data = Delayed::value(data);
    let results: Vec<_> = k_fold(&rows, OUTER_FOLDS)
        .into_iter()
        .map(|outer| {
            let inner: Vec<_> = k_fold(&outer.train, INNER_FOLDS)
                .into_iter()
                .map(Delayed::value)
                .collect();
            let scores: Vec<_> = LAMBDAS
                .iter()
                .map(|&lambda| {
                    let fold_scores: Vec<_> = inner
                        .iter()
                        .map(|split| graph::validate(lambda, &data, split))
                        .collect();
                    graph::mean(fold_scores)
                })
                .collect();
            let best = graph::select(LAMBDAS.to_vec(), scores);
            let outer = Delayed::value(outer);
            let model = graph::fit(best, &data, &outer);
            graph::evaluate(&data, &model, &outer)
        })
        .collect();
    delayed::join(results)
}

/// The steps of [`nested_cv`] as graph nodes: thin `#[delayed]` twins of
/// the plain functions. The fits are `blocking`, so they run on tokio's
/// blocking pool; the cheap steps run inline.
mod graph {
    use delayed::delayed;

    use super::{Dataset, FoldResult, Model, Split};

    /// See [`super::validate`].
    #[delayed(blocking)]
    pub(super) fn validate(lambda: f64, data: &Dataset, split: &Split) -> f64 {
        super::validate(lambda, data, split)
    }

    /// See [`super::mean`].
    #[delayed]
    pub(super) fn mean(scores: &[f64]) -> f64 {
        super::mean(scores)
    }

    /// See [`super::select`].
    #[delayed]
    pub(super) fn select(lambdas: &[f64], scores: &[f64]) -> f64 {
        super::select(lambdas, scores)
    }

    /// See [`super::fit`].
    #[delayed(blocking)]
    pub(super) fn fit(lambda: f64, data: &Dataset, split: &Split) -> Model {
        super::fit(lambda, data, split)
    }

    /// See [`super::evaluate`].
    #[delayed]
    pub(super) fn evaluate(data: &Dataset, model: &Model, split: &Split) -> FoldResult {
        super::evaluate(data, model, split)
    }
}

/// The graph of `nested_cv_graph` with every step a `#[delayed(cache)]`
/// node, the data set included, so that a persistent cache can serve a
/// rerun. This program does not run it: `benches/cache.rs` times it with an
/// empty cache and again with a warm one.
///
/// A cached function's parameters and output are serde types. So that this
/// file builds where serde's derives are not at hand (the benches), they
/// travel as tuples of their fields: a data set is `(columns, features,
/// targets)`, a split `(train, test)`, a model `(λ, weights)` and a fold's
/// result `(λ, test MSE)`. The fits borrow the data set's vectors; nothing
/// big is copied.
#[cfg(feature = "cache")]
#[allow(dead_code)]
pub(crate) mod cached {
    use delayed::{delayed, Delayed};

    use super::{Dataset, FoldResult, Model, Split, INNER_FOLDS, LAMBDAS, OUTER_FOLDS};

    /// A [`Dataset`]'s fields: columns, features (row-major), targets.
    type Data = (usize, Vec<f64>, Vec<f64>);

    /// A [`Split`]'s fields: training rows, test rows.
    type Rows = (Vec<usize>, Vec<usize>);

    /// A [`Model`]'s fields: λ, weights.
    type Weights = (f64, Vec<f64>);

    /// [`super::nested_cv_graph`] over the synthetic data set `(rows, cols,
    /// seed)`, made by a cached node too; one `(λ, test MSE)` per outer fold.
    pub(crate) fn nested_cv_graph(rows: usize, cols: usize, seed: u64) -> Delayed<Vec<(f64, f64)>> {
        let data = dataset(rows, cols, seed);
        let all: Vec<usize> = (0..rows).collect();
        let results: Vec<_> = super::k_fold(&all, OUTER_FOLDS)
            .into_iter()
            .map(|outer| {
                let inner: Vec<_> = super::k_fold(&outer.train, INNER_FOLDS)
                    .into_iter()
                    .map(|split| Delayed::value((split.train, split.test)))
                    .collect();
                let scores: Vec<_> = LAMBDAS
                    .iter()
                    .map(|&lambda| {
                        let fold_scores: Vec<_> = inner
                            .iter()
                            .map(|split| validate(lambda, &data, split))
                            .collect();
                        mean(fold_scores)
                    })
                    .collect();
                let best = select(LAMBDAS.to_vec(), scores);
                let outer = Delayed::value((outer.train, outer.test));
                let model = fit(best, &data, &outer);
                evaluate(&data, &model, &outer)
            })
            .collect();
        delayed::join(results)
    }

    /// The results of [`nested_cv_graph`] as [`FoldResult`]s, to compare
    /// with [`super::nested_cv`] by [`super::bits`].
    pub(crate) fn results(folds: &[(f64, f64)]) -> Vec<FoldResult> {
        folds
            .iter()
            .map(|&(lambda, mse)| FoldResult { lambda, mse })
            .collect()
    }

    /// A data set borrowed from its fields.
    fn view(data: &Data) -> Dataset<&[f64]> {
        Dataset {
            cols: data.0,
            x: &data.1,
            y: &data.2,
        }
    }

    fn split(rows: &Rows) -> Split {
        Split {
            train: rows.0.clone(),
            test: rows.1.clone(),
        }
    }

    /// See [`Dataset::synthetic`].
    #[delayed(blocking, cache)]
    fn dataset(rows: usize, cols: usize, seed: u64) -> Data {
        let Dataset { cols, x, y } = Dataset::synthetic(rows, cols, seed);
        (cols, x, y)
    }

    /// See [`super::validate`].
    #[delayed(blocking, cache)]
    fn validate(lambda: f64, data: &Data, rows: &Rows) -> f64 {
        super::validate(lambda, &view(data), &split(rows))
    }

    /// See [`super::mean`].
    #[delayed(cache)]
    fn mean(scores: &[f64]) -> f64 {
        super::mean(scores)
    }

    /// See [`super::select`].
    #[delayed(cache)]
    fn select(lambdas: &[f64], scores: &[f64]) -> f64 {
        super::select(lambdas, scores)
    }

    /// See [`super::fit`].
    #[delayed(blocking, cache)]
    fn fit(lambda: f64, data: &Data, rows: &Rows) -> Weights {
        let Model { lambda, weights } = super::fit(lambda, &view(data), &split(rows));
        (lambda, weights)
    }

    /// See [`super::evaluate`].
    #[delayed(cache)]
    fn evaluate(data: &Data, model: &Weights, rows: &Rows) -> (f64, f64) {
        let model = Model {
            lambda: model.0,
            weights: model.1.clone(),
        };
        let FoldResult { lambda, mse } = super::evaluate(&view(data), &model, &split(rows));
        (lambda, mse)
    }
}

// ---------------------------------------------------------------------------
// The steps.
// ---------------------------------------------------------------------------

/// The validation error of λ on one split: fit on its training rows, score
/// on its test rows.
fn validate<V: AsRef<[f64]>>(lambda: f64, data: &Dataset<V>, split: &Split) -> f64 {
    mse(data, &fit(lambda, data, split), &split.test)
}

/// The mean of the validation errors of one λ over the inner folds.
fn mean(scores: &[f64]) -> f64 {
    scores.iter().sum::<f64>() / scores.len() as f64
}

/// The λ with the lowest cross-validation error; the first one on a tie.
fn select(lambdas: &[f64], scores: &[f64]) -> f64 {
    let best = (0..scores.len())
        .min_by(|&a, &b| scores[a].total_cmp(&scores[b]))
        .expect("at least one λ");
    lambdas[best]
}

/// Fits ridge regression on the training rows of `split`: solves
/// `(XᵀX + λI) w = Xᵀy`.
fn fit<V: AsRef<[f64]>>(lambda: f64, data: &Dataset<V>, split: &Split) -> Model {
    let p = data.cols;
    // The lower triangle of XᵀX + λI, row-major, and Xᵀy.
    let mut gram = vec![0.0; p * p];
    let mut xty = vec![0.0; p];
    for &i in &split.train {
        let (x, y) = (data.row(i), data.target(i));
        for (j, &xj) in x.iter().enumerate() {
            let row = &mut gram[j * p..=j * p + j];
            for (g, &xk) in row.iter_mut().zip(&x[..=j]) {
                *g += xj * xk;
            }
            xty[j] += xj * y;
        }
    }
    for j in 0..p {
        gram[j * p + j] += lambda;
    }
    Model {
        lambda,
        weights: solve_spd(gram, xty, p),
    }
}

/// Scores `model` on the test rows of `split`.
fn evaluate<V: AsRef<[f64]>>(data: &Dataset<V>, model: &Model, split: &Split) -> FoldResult {
    FoldResult {
        lambda: model.lambda,
        mse: mse(data, model, &split.test),
    }
}

/// The mean squared error of `model` on `rows`.
fn mse<V: AsRef<[f64]>>(data: &Dataset<V>, model: &Model, rows: &[usize]) -> f64 {
    let total: f64 = rows
        .iter()
        .map(|&i| {
            let error = dot(data.row(i), &model.weights) - data.target(i);
            error * error
        })
        .sum();
    total / rows.len() as f64
}

/// Solves `a w = b` for a symmetric positive definite `n × n` matrix given
/// by its lower triangle (row-major), by Cholesky factorization `a = L Lᵀ`
/// in place.
fn solve_spd(mut a: Vec<f64>, mut b: Vec<f64>, n: usize) -> Vec<f64> {
    for j in 0..n {
        let (done, rest) = a.split_at_mut(j * n);
        let row_j = &mut rest[..n];
        for k in 0..j {
            let row_k = &done[k * n..k * n + n];
            row_j[k] = (row_j[k] - dot(&row_j[..k], &row_k[..k])) / row_k[k];
        }
        let diagonal = row_j[j] - dot(&row_j[..j], &row_j[..j]);
        assert!(diagonal > 0.0, "matrix is not positive definite");
        row_j[j] = diagonal.sqrt();
    }
    // L z = b, then Lᵀ w = z, both in place in `b`.
    for i in 0..n {
        b[i] = (b[i] - dot(&a[i * n..i * n + i], &b[..i])) / a[i * n + i];
    }
    for i in (0..n).rev() {
        let above: f64 = (i + 1..n).map(|k| a[k * n + i] * b[k]).sum();
        b[i] = (b[i] - above) / a[i * n + i];
    }
    b
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Splits `rows` into `k` contiguous folds: split `i` tests on fold `i` and
/// trains on the others.
fn k_fold(rows: &[usize], k: usize) -> Vec<Split> {
    let bound = |i: usize| i * rows.len() / k;
    (0..k)
        .map(|i| {
            let (start, end) = (bound(i), bound(i + 1));
            Split {
                train: [&rows[..start], &rows[end..]].concat(),
                test: rows[start..end].to_vec(),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The data set.
// ---------------------------------------------------------------------------

impl Dataset {
    /// A deterministic regression problem: correlated features, a third of
    /// them with an effect, and Gaussian-like noise.
    pub(crate) fn synthetic(rows: usize, cols: usize, seed: u64) -> Dataset {
        let mut rng = Lcg(seed);
        let weights: Vec<f64> = (0..cols)
            .map(|j| if j % 3 == 0 { rng.normal() } else { 0.0 })
            .collect();
        let mut x = Vec::with_capacity(rows * cols);
        let mut y = Vec::with_capacity(rows);
        for _ in 0..rows {
            // A factor shared by the whole row correlates the features.
            let shared = rng.normal();
            let start = x.len();
            x.extend((0..cols).map(|_| 0.6 * shared + 0.8 * rng.normal()));
            y.push(dot(&x[start..], &weights) + NOISE * rng.normal());
        }
        Dataset { cols, x, y }
    }

    fn all_rows(&self) -> Vec<usize> {
        (0..self.y.len()).collect()
    }
}

impl<V: AsRef<[f64]>> Dataset<V> {
    fn row(&self, i: usize) -> &[f64] {
        &self.x.as_ref()[i * self.cols..(i + 1) * self.cols]
    }

    fn target(&self, i: usize) -> f64 {
        self.y.as_ref()[i]
    }
}

/// A linear congruential generator (Knuth's MMIX constants): deterministic
/// and good enough for synthetic data.
struct Lcg(u64);

impl Lcg {
    /// Uniform in [0, 1), from the top 53 bits.
    fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// Roughly standard normal: the sum of 12 uniforms, minus 6.
    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.uniform()).sum::<f64>() - 6.0
    }
}

// ---------------------------------------------------------------------------
// Output.
// ---------------------------------------------------------------------------

/// The exact bits of the results, for a bitwise comparison.
pub(crate) fn bits(results: &[FoldResult]) -> Vec<(u64, u64)> {
    results
        .iter()
        .map(|r| (r.lambda.to_bits(), r.mse.to_bits()))
        .collect()
}

fn print_results(results: &[FoldResult]) {
    println!("outer fold   best λ   test MSE");
    for (i, r) in results.iter().enumerate() {
        println!("{:>10} {:>8} {:>10.6}", i + 1, r.lambda, r.mse);
    }
    let scores: Vec<f64> = results.iter().map(|r| r.mse).collect();
    println!("{:>10} {:>8} {:>10.6}", "mean", "", mean(&scores));
    println!("(sequential and parallel results are bitwise identical)\n");
}

fn print_times(sequential: Duration, parallel: Duration, cores: usize) {
    println!("sequential: {sequential:>8.2?}");
    println!("delayed:    {parallel:>8.2?} on {cores} cores");
    println!(
        "speed-up:   {:>7.2}×",
        sequential.as_secs_f64() / parallel.as_secs_f64()
    );
}
