//! Random operation sequences checked against a `HashMap` model, with evictions off
//! and memory to spare, so that the cache must agree with the model on every answer.

use std::collections::HashMap;

use proptest::prelude::*;

use super::arith::parse_u64;
use super::tests::Harness;
use super::*;

#[derive(Clone, Debug)]
enum Op {
    Store(StoreMode, u8, Vec<u8>, u32),
    Cas(u8, bool, Vec<u8>),
    Get(u8),
    Delete(u8),
    Arith(u8, bool, u64),
    Touch(u8),
    Number(u8, u64),
}

#[derive(Clone, Debug)]
struct Entry {
    value: Vec<u8>,
    flags: u32,
    cas: u64,
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..64),
        1 => proptest::collection::vec(any::<u8>(), 0..3000),
        1 => Just(b" 12 ".to_vec()),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let mode = prop_oneof![
        Just(StoreMode::Set),
        Just(StoreMode::Add),
        Just(StoreMode::Replace),
        Just(StoreMode::Append),
        Just(StoreMode::Prepend),
    ];
    let key = 0u8..12;
    let store = (mode, key.clone(), value(), any::<u32>());
    let delta = prop_oneof![3 => 0u64..1000, 1 => any::<u64>()];
    let arith = (key.clone(), any::<bool>(), delta);
    prop_oneof![
        4 => store.prop_map(|(m, k, v, f)| Op::Store(m, k, v, f)),
        1 => (key.clone(), any::<bool>(), value()).prop_map(|(k, good, v)| Op::Cas(k, good, v)),
        3 => key.clone().prop_map(Op::Get),
        1 => key.clone().prop_map(Op::Delete),
        2 => arith.prop_map(|(k, incr, delta)| Op::Arith(k, incr, delta)),
        1 => key.clone().prop_map(Op::Touch),
        1 => (key, any::<u64>()).prop_map(|(k, n)| Op::Number(k, n)),
    ]
}

struct Checker {
    h: Harness,
    model: HashMap<u8, Entry>,
}

impl Checker {
    fn name(key: u8) -> Vec<u8> {
        format!("key-{key}").into_bytes()
    }

    fn run(&mut self, op: Op) {
        match op {
            Op::Store(mode, k, v, flags) => self.store(mode, k, v, flags),
            Op::Cas(k, good, v) => self.cas(k, good, v),
            Op::Get(k) => self.get(k),
            Op::Delete(k) => self.delete(k),
            Op::Arith(k, incr, delta) => self.arith(k, incr, delta),
            Op::Touch(k) => self.touch(k),
            Op::Number(k, n) => self.store(StoreMode::Set, k, n.to_string().into_bytes(), 0),
        }
    }

    fn store(&mut self, mode: StoreMode, k: u8, v: Vec<u8>, flags: u32) {
        let outcome = self.h.store(mode, &Self::name(k), &v, flags, 0);
        let present = self.model.get(&k).cloned();
        let expected = match (mode, present) {
            (StoreMode::Set, _) | (StoreMode::Add, None) => Some(Entry {
                value: v,
                flags,
                cas: 0,
            }),
            (StoreMode::Replace, Some(_)) => Some(Entry {
                value: v,
                flags,
                cas: 0,
            }),
            (StoreMode::Append, Some(old)) => Some(Entry {
                value: [old.value, v].concat(),
                ..old
            }),
            (StoreMode::Prepend, Some(old)) => Some(Entry {
                value: [v, old.value].concat(),
                ..old
            }),
            _ => None,
        };
        self.expect_stored(k, outcome, expected);
    }

    fn expect_stored(&mut self, k: u8, outcome: StoreOutcome, expected: Option<Entry>) {
        match (outcome, expected) {
            (StoreOutcome::Stored { cas }, Some(entry)) => {
                assert!(self.model.values().all(|e| e.cas < cas));
                self.model.insert(k, Entry { cas, ..entry });
            }
            (StoreOutcome::NotStored, None) => {}
            (outcome, expected) => panic!("{outcome:?} but the model expected {expected:?}"),
        }
    }

    fn cas(&mut self, k: u8, good: bool, v: Vec<u8>) {
        let current = self.model.get(&k).map_or(1, |e| e.cas);
        let guess = if good { current } else { current + 1 };
        let outcome = self
            .h
            .store(StoreMode::Cas(guess), &Self::name(k), &v, 9, 0);
        match (self.model.contains_key(&k), good) {
            (false, _) => assert_eq!(outcome, StoreOutcome::NotFound),
            (true, false) => assert_eq!(outcome, StoreOutcome::Exists),
            (true, true) => self.expect_stored(
                k,
                outcome,
                Some(Entry {
                    value: v,
                    flags: 9,
                    cas: 0,
                }),
            ),
        }
    }

    fn get(&mut self, k: u8) {
        let got = self.h.get(&Self::name(k));
        match self.model.get(&k) {
            Some(e) => assert_eq!(got, Ok((e.value.clone(), e.flags, e.cas))),
            None => assert_eq!(got, Err(Miss::NotFound)),
        }
    }

    fn delete(&mut self, k: u8) {
        let expected = match self.model.remove(&k) {
            Some(_) => DeleteOutcome::Deleted,
            None => DeleteOutcome::NotFound,
        };
        assert_eq!(self.h.delete(&Self::name(k), 0), expected);
    }

    fn touch(&mut self, k: u8) {
        let expected = match self.model.contains_key(&k) {
            true => TouchOutcome::Touched,
            false => TouchOutcome::NotFound,
        };
        assert_eq!(self.h.touch(&Self::name(k), 0), expected);
    }

    fn arith(&mut self, k: u8, incr: bool, delta: u64) {
        let outcome = self.h.arith(&Self::name(k), incr, delta);
        let Some(entry) = self.model.get_mut(&k) else {
            return assert_eq!(outcome, ArithOutcome::NotFound);
        };
        let Some(current) = parse_u64(&entry.value) else {
            return assert_eq!(outcome, ArithOutcome::NonNumeric);
        };
        let next = if incr {
            current.wrapping_add(delta)
        } else {
            current.saturating_sub(delta)
        };
        let ArithOutcome::Value { value, cas } = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(value, next);
        let mut digits = next.to_string().into_bytes();
        if digits.len() < entry.value.len() {
            digits.resize(entry.value.len(), b' ');
        }
        (entry.value, entry.cas) = (digits, cas);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn shard_agrees_with_a_hashmap(ops in proptest::collection::vec(op(), 1..300)) {
        let config = SlabConfig { evictions: false, hashpower: 2, ..SlabConfig::default() };
        let mut checker = Checker { h: Harness::new(config, 64 << 20), model: HashMap::new() };
        for op in ops {
            checker.run(op);
        }
        for k in 0..12 {
            checker.get(k);
        }
        prop_assert_eq!(checker.h.stats().curr_items as usize, checker.model.len());
    }
}
