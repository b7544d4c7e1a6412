#![cfg(feature = "progress")]
//! `ProgressBar` attached to a scope with `delayed::observe`, like dask's
//! `with ProgressBar():`. The registration is process-wide, so this file
//! holds a single test: no other test's computes run beside it.

mod common;

use common::{add, nap};
use delayed::ProgressBar;

#[tokio::test(start_paused = true)]
async fn a_scope_bar_covers_every_compute_while_it_lives() {
    let bar = ProgressBar::hidden();
    {
        let _progress = delayed::observe(bar.clone());

        // Two overlapping computes: one bar, the sum of their tasks.
        let (a, b) = tokio::join!(
            add(nap(10, 1), nap(30, 2)).compute(),
            add(nap(20, 3), 4).compute(),
        );
        assert_eq!((a.unwrap(), b.unwrap()), (3, 7));
        assert_eq!((bar.position(), bar.length()), (3 + 2, 3 + 2));
        assert!(bar.is_finished());

        // A compute after they finished: a new bar.
        add(nap(10, 5), 6).compute().await.unwrap();
        assert_eq!((bar.position(), bar.length()), (2, 2));
        assert!(bar.is_finished());
    }
    // The scope ended: not watched.
    add(nap(10, 7), nap(10, 8)).compute().await.unwrap();
    assert_eq!((bar.position(), bar.length()), (2, 2));
}
