//! Operators on nodes: values, types, literal inference, shared operands,
//! errors.

mod common;

use std::time::Duration;

use common::{fail, Counter};
use delayed::Delayed;

/// A counted node: how often its body ran.
fn counted(x: u64, runs: &Counter) -> Delayed<u64> {
    let runs = runs.clone();
    Delayed::lazy(move || {
        runs.bump();
        x
    })
}

#[tokio::test]
async fn literals_infer_from_the_node_on_either_side() {
    let x = Delayed::value(5_u64);
    let f = Delayed::value(1.5_f64);
    let i = Delayed::value(-7_i32);
    // No annotation on any literal: each is inferred from the node.
    let sum: Delayed<u64> = &x + 1;
    let left: Delayed<u64> = 10 - &x;
    let scaled: Delayed<f64> = 2.0 * &f;
    let halved: Delayed<f64> = &f / 2.0;
    let shifted: Delayed<u64> = &x << 3;
    let masked: Delayed<i32> = &i & 0xff;
    let signed: Delayed<i32> = -3 * &i;
    assert_eq!(sum.compute().await.unwrap(), 6);
    assert_eq!(left.compute().await.unwrap(), 5);
    assert_eq!(scaled.compute().await.unwrap(), 3.0);
    assert_eq!(halved.compute().await.unwrap(), 0.75);
    assert_eq!(shifted.compute().await.unwrap(), 40);
    assert_eq!(masked.compute().await.unwrap(), -7 & 0xff);
    assert_eq!(signed.compute().await.unwrap(), 21);
    // The output type is known without annotations, so methods resolve.
    assert_eq!((&x + 1).compute().await.unwrap().count_ones(), 2);
    assert_eq!((2.0 * &f).compute().await.unwrap().sqrt(), 3.0_f64.sqrt());
    assert_eq!((&x << 1).compute().await.unwrap().leading_zeros(), 60);
}

#[tokio::test]
async fn every_binary_operator_with_nodes_and_plain_values() {
    let a = Delayed::value(12_u64);
    let b = Delayed::value(5_u64);
    let cases: Vec<(Delayed<u64>, u64)> = vec![
        (&a + &b, 17),
        (&a - &b, 7),
        (&a * &b, 60),
        (&a / &b, 2),
        (&a % &b, 2),
        (&a & &b, 4),
        (&a | &b, 13),
        (&a ^ &b, 9),
        (&a + 1, 13),
        (&a - 2, 10),
        (&a * 3, 36),
        (&a / 4, 3),
        (&a % 7, 5),
        (&a & 8, 8),
        (&a | 1, 13),
        (&a ^ 15, 3),
        (100 - &b, 95),
        (100 / &b, 20),
        (3 % &b, 3),
        (1 | &b, 5),
        (&a << 2, 48),
        (&a >> 2, 3),
        (1_u64 << Delayed::value(4_u32), 16),
        (64_u64 >> Delayed::value(3_u32), 8),
    ];
    for (node, expected) in cases {
        assert_eq!(node.compute().await.unwrap(), expected, "{node:?}");
    }
}

#[tokio::test]
async fn by_value_and_by_reference_in_all_four_combinations() {
    let a = Delayed::value(3_i64);
    let b = Delayed::value(4_i64);
    assert_eq!((&a * &b).compute().await.unwrap(), 12);
    assert_eq!((a.clone() * &b).compute().await.unwrap(), 12);
    assert_eq!((&a * b.clone()).compute().await.unwrap(), 12);
    assert_eq!((a - b).compute().await.unwrap(), -1);
}

#[tokio::test]
async fn unary_operators() {
    let x = Delayed::value(5_i64);
    let flags = Delayed::value(0b1010_u8);
    let yes = Delayed::value(true);
    let negated: Delayed<i64> = -&x;
    assert_eq!(negated.compute().await.unwrap(), -5);
    assert_eq!((-x).compute().await.unwrap(), -5);
    assert_eq!((!&flags).compute().await.unwrap(), 0b1111_0101);
    assert!(!(!yes).compute().await.unwrap());
    assert_eq!((-Delayed::value(2.5_f64)).compute().await.unwrap(), -2.5);
}

#[tokio::test]
async fn bools_durations_and_strings() {
    let on = Delayed::value(true);
    let bits = [&on & false, false | &on, &on ^ true, true & &on];
    assert_eq!(
        delayed::compute(bits.to_vec()).await.unwrap(),
        [false, true, false, true]
    );

    let wait = Delayed::value(Duration::from_secs(3));
    let twice: Delayed<Duration> = &wait * 2;
    assert_eq!(twice.compute().await.unwrap(), Duration::from_secs(6));
    assert_eq!((2 * &wait).compute().await.unwrap(), Duration::from_secs(6));
    assert_eq!(
        (&wait + Duration::from_secs(1)).compute().await.unwrap(),
        Duration::from_secs(4)
    );
    assert_eq!((&wait / 3).compute().await.unwrap(), Duration::from_secs(1));

    let name = Delayed::value("load".to_string());
    let full: Delayed<String> = &name + "-1";
    assert_eq!(full.compute().await.unwrap(), "load-1");
}

/// A user type: node with node works for any `T: Add<U>`, output type
/// and all.
#[derive(Clone, Debug, PartialEq)]
struct Money(u64);

#[derive(Clone, Debug, PartialEq)]
struct Cents(u64);

impl std::ops::Add<Cents> for Money {
    type Output = Cents;
    fn add(self, rhs: Cents) -> Cents {
        Cents(self.0 * 100 + rhs.0)
    }
}

impl std::ops::Neg for Money {
    type Output = String;
    fn neg(self) -> String {
        format!("-{}", self.0)
    }
}

#[tokio::test]
async fn user_types_work_node_with_node_and_plain_values_go_in_as_nodes() {
    let price = Delayed::value(Money(3));
    let total: Delayed<Cents> = &price + Delayed::value(Cents(50));
    assert_eq!(total.compute().await.unwrap(), Cents(350));
    let owed: Delayed<String> = -&price;
    assert_eq!(owed.compute().await.unwrap(), "-3");
}

#[tokio::test]
async fn operator_nodes_are_named_for_their_operator() {
    let x = Delayed::value(6_i32);
    let names = [
        (&x + &x).key().name(),
        (&x - 1).key().name(),
        (2 * &x).key().name(),
        (&x / 2).key().name(),
        (&x % 4).key().name(),
        (&x & 1).key().name(),
        (&x | 1).key().name(),
        (&x ^ 1).key().name(),
        (&x << 1).key().name(),
        (&x >> 1).key().name(),
        (-&x).key().name(),
        (!&x).key().name(),
    ];
    assert_eq!(
        names,
        [
            "add", "sub", "mul", "div", "rem", "bitand", "bitor", "bitxor", "shl", "shr", "neg",
            "not"
        ]
    );
}

#[tokio::test]
async fn a_shared_operand_runs_once() {
    let runs = Counter::new();
    let a = counted(7, &runs);
    let square = &a * &a;
    let sum = &square + &a + (&a - 1);
    assert_eq!(sum.compute().await.unwrap(), 49 + 7 + 6);
    assert_eq!(runs.get(), 1);
    let graph = (&a + &a).graph();
    assert_eq!(graph.nodes().len(), 2, "`&a + &a` is one add over one `a`");
}

/// A payload whose clones are counted, with an `Add`.
#[derive(Clone)]
struct Payload(common::Tracked);

impl std::ops::Add<u64> for Payload {
    type Output = u64;
    fn add(self, rhs: u64) -> u64 {
        self.0.payload + rhs
    }
}

#[tokio::test]
async fn the_last_handle_moves_into_the_operator_and_a_shared_one_is_cloned() {
    let live = common::Live::new();
    let moved = Delayed::value(Payload(live.make(1))) + 1;
    assert_eq!(moved.compute().await.unwrap(), 2);
    assert_eq!(live.clones(), 0, "the operator held the only handle");

    let shared = Delayed::value(Payload(live.make(2)));
    let sum = &shared + 1;
    assert_eq!(sum.compute().await.unwrap(), 3);
    assert_eq!(live.clones(), 1, "the caller's handle keeps the original");
}

#[tokio::test]
async fn a_failing_operand_fails_the_result_with_its_key() {
    let bad = fail(1).named("bad-input");
    let good = Delayed::value(2_u64);
    for node in [&bad + &good, &good * &bad, &bad + 1, 1 + &bad, &bad << 1] {
        let err = node.compute().await.unwrap_err();
        assert_eq!(err.key().to_string(), "bad-input");
        assert!(err.is_failed());
    }
}

#[tokio::test]
async fn a_panicking_operator_fails_its_node_not_the_caller() {
    let zero = Delayed::value(0_u64);
    let quotient = 1 / &zero;
    let key = quotient.key();
    let err = quotient.compute().await.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.key(), &key);
    assert!(err.panic_message().unwrap().contains("divide by zero"));
}

#[tokio::test]
async fn a_long_chain_of_operators_computes_and_drops_without_recursion() {
    let start = Delayed::value(0_u64);
    let end = (0..100_000).fold(start, |acc, _| acc + 1);
    assert_eq!(end.compute().await.unwrap(), 100_000);
    let unfinished = (0..100_000).fold(Delayed::value(1_i64), |acc, _| -acc);
    drop(unfinished);
}
