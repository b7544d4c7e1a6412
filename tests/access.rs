//! Pure element and field access: one node per equal access, errors that
//! name the index or key and the task, never a panic.

mod common;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::error::Error as _;
use std::hash::{Hash, Hasher};

use common::{fail, Counter, Live};
use delayed::{Delayed, TaskState};

/// A list whose body counts its runs.
fn counted_list(runs: &Counter) -> Delayed<Vec<u64>> {
    let runs = runs.clone();
    Delayed::lazy(move || {
        runs.bump();
        vec![10, 20, 30]
    })
}

fn state<T: Send + Sync + 'static>(node: &Delayed<T>) -> TaskState {
    let key = node.key().to_string();
    node.graph().get(&key).unwrap().state()
}

#[tokio::test]
async fn equal_indexes_are_one_node() {
    let runs = Counter::new();
    let list = counted_list(&runs);
    let a = list.index(1);
    let b = list.index(1);
    assert_eq!(a.key(), b.key());
    assert_eq!(a.key().name(), "index");
    assert_ne!(a.key(), list.index(2).key(), "another index, another node");
    assert_ne!(
        a.key(),
        counted_list(&runs).index(1).key(),
        "another list, another node"
    );
    assert_eq!(a.compute().await.unwrap(), 20);
    // Computing one finished the other: it is the same node.
    assert_eq!(state(&b), TaskState::Done);
    assert_eq!(b.compute().await.unwrap(), 20);
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn an_index_borrows_the_list_and_clones_one_element() {
    let live = Live::new();
    let list = Delayed::value(vec![live.make(1), live.make(2), live.make(3)]);
    let second = list.index(1).map_ref(|t| t.payload);
    assert_eq!(second.compute().await.unwrap(), 2);
    assert_eq!(live.clones(), 1);
}

#[tokio::test]
async fn an_out_of_range_index_is_an_error_naming_the_index_and_the_list() {
    let list = Delayed::value(vec![1_u64, 2, 3]).named("rows");
    let past = list.index(3);
    let key = past.key();
    let err = past.compute().await.unwrap_err();
    assert!(err.is_failed() && !err.is_panic());
    assert_eq!(err.key(), &key);
    assert_eq!(
        err.source().unwrap().to_string(),
        "index 3 is out of range: the output of `rows` has 3 items"
    );
    let one = Delayed::value([7_u8]).named("one");
    let err = one.index(9).compute().await.unwrap_err();
    assert_eq!(
        err.source().unwrap().to_string(),
        "index 9 is out of range: the output of `one` has 1 item"
    );
}

#[tokio::test]
async fn arrays_and_deques_index_too() {
    let array = Delayed::value([1_i32, -2, 3]);
    assert_eq!(array.index(1).compute().await.unwrap(), -2);
    assert_eq!(array.index(1).key(), array.index(1).key());
    let deque = Delayed::value(VecDeque::from(["x", "y"]));
    assert_eq!(deque.index(0).compute().await.unwrap(), "x");
    assert!(deque.index(2).compute().await.is_err());
}

#[tokio::test]
async fn a_failed_list_fails_its_index_naming_the_root_task() {
    let bad = fail(0).named("bad-load").map(|x| vec![x]);
    let err = bad.index(0).compute().await.unwrap_err();
    assert_eq!(err.key().to_string(), "bad-load");
}

#[tokio::test]
async fn map_look_ups_are_one_node_per_key() {
    let config = Delayed::value(HashMap::from([
        ("port".to_string(), 8080_u16),
        ("workers".to_string(), 4),
    ]));
    let port = config.get("port");
    // A borrowed and an owned key are the same look-up.
    assert_eq!(port.key(), config.get(&"port".to_string()).key());
    assert_eq!(port.key().name(), "get");
    assert_ne!(port.key(), config.get("workers").key());
    assert_eq!(port.compute().await.unwrap(), 8080);
    assert_eq!(state(&config.get("port")), TaskState::Done);
    assert_eq!(config.get("workers").compute().await.unwrap(), 4);

    let scores = Delayed::value(BTreeMap::from([(1_u32, 0.5_f64), (2, 0.25)]));
    assert_eq!(scores.get(&2).compute().await.unwrap(), 0.25);
    assert_eq!(scores.get(&2).key(), scores.get(&2).key());
}

#[tokio::test]
async fn a_missing_map_key_is_an_error_naming_the_key_and_the_map() {
    let config = Delayed::value(HashMap::from([("port".to_string(), 1_u16)])).named("config");
    let err = config.get("host").compute().await.unwrap_err();
    assert!(err.is_failed() && !err.is_panic());
    assert_eq!(err.key().name(), "get");
    assert_eq!(
        err.source().unwrap().to_string(),
        "key \"host\" is not in the map that `config` returned"
    );
}

/// A map key whose `Ord` works and whose `Hash` panics.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct BadHash(u8);

impl Hash for BadHash {
    fn hash<H: Hasher>(&self, _: &mut H) {
        panic!("no hashing here");
    }
}

#[tokio::test]
async fn a_panicking_key_hash_fails_the_node_not_the_caller() {
    let map = Delayed::value(BTreeMap::from([(BadHash(1), 1_u64)]));
    let node = map.get(&BadHash(1));
    let err = node.compute().await.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("no hashing here"));
}

#[derive(Clone, Debug)]
struct User {
    name: String,
    age: u32,
}

fn age(user: &User) -> &u32 {
    &user.age
}

#[tokio::test]
async fn equal_projections_are_one_node() {
    let runs = Counter::new();
    let user = {
        let runs = runs.clone();
        Delayed::lazy(move || {
            runs.bump();
            User {
                name: "ada".into(),
                age: 36,
            }
        })
    };
    let names: Vec<Delayed<String>> = (0..3).map(|_| user.field(|u| &u.name)).collect();
    assert!(names.iter().all(|n| n.key() == names[0].key()));
    assert_eq!(names[0].key().name(), "field");
    assert_eq!(user.field(age).key(), user.field(age).key());
    assert_ne!(user.field(age).key(), names[0].key());
    assert_ne!(
        user.field(|u| &u.name).key(),
        names[0].key(),
        "a closure written apart is another projection"
    );
    assert_eq!(names[0].compute().await.unwrap(), "ada");
    assert_eq!(state(&names[2]), TaskState::Done);
    assert_eq!(user.field(age).compute().await.unwrap(), 36);
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn a_projection_of_another_node_is_another_node() {
    // One closure, so one projection, over two nodes.
    fn ages(user: &Delayed<User>) -> Delayed<u32> {
        user.field(|u| &u.age)
    }
    let a = Delayed::value(User {
        name: "a".into(),
        age: 1,
    });
    let b = Delayed::value(User {
        name: "b".into(),
        age: 2,
    });
    assert_eq!(ages(&a).key(), ages(&a).key());
    assert_ne!(ages(&a).key(), ages(&b).key());
    assert_eq!(ages(&b).compute().await.unwrap(), 2);
}

#[tokio::test]
async fn a_capturing_projection_works_and_is_a_node_per_call() {
    let list = Delayed::value(vec![1_u64, 2, 3]);
    let pick = |i: usize| list.field(move |v: &Vec<u64>| &v[i]);
    assert_ne!(pick(1).key(), pick(1).key());
    assert_eq!(pick(1).compute().await.unwrap(), 2);
    assert_eq!(pick(2).compute().await.unwrap(), 3);
}
