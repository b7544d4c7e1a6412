//! Every execution policy of the attribute, together and one by one, with
//! the method spellings on the same nodes.

use std::time::Duration;

use delayed::{delayed, Delayed, Limit, Options, Retry};

static API: Limit = Limit::new("api", 2);
static DISK: Limit = Limit::new("disk", 1);

const PATIENCE: Duration = Duration::from_secs(5);

fn policy() -> Retry {
    Retry::attempts(3).fixed(Duration::from_millis(1))
}

#[delayed(
    limit = API,
    retry = Retry::attempts(4)
        .exponential(Duration::from_millis(1))
        .max_delay(Duration::from_millis(10))
        .jitter(0.5)
        .seed(7)
        .panics(true)
        .when(|err| !err.is_panic()),
    timeout = Duration::from_secs(10),
    priority = 10,
)]
async fn fetch(id: u64) -> Result<u64, std::io::Error> {
    Ok(id)
}

#[delayed(blocking, limit = &DISK, timeout = PATIENCE, priority = -3)]
fn crunch(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[delayed(pure, retry = policy())]
fn square(x: u64) -> u64 {
    x * x
}

#[delayed(limit = API)]
fn label(total: u64, squared: &u64) -> String {
    format!("{total}/{squared}")
}

const URGENT: i32 = 1 + 1;

#[delayed(priority = URGENT)]
async fn urgent() -> u64 {
    1
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let fetched: Vec<Delayed<u64>> = (1..=4).map(fetch).collect();
        let total = crunch(fetched);
        let squared = square(urgent());
        let labeled = label(&total, &squared)
            .limit(&DISK)
            .retry(policy())
            .timeout(Duration::from_secs(1))
            .priority(i32::MAX);
        assert_eq!(labeled.compute().await.unwrap(), "10/1");
        let again = label(3, square(2));
        let text = again
            .compute_with(Options::new().sequential())
            .await
            .unwrap();
        assert_eq!(text, "3/4");
        assert_eq!(API.in_use() + DISK.in_use(), 0);
    });
}
