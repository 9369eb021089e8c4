//! Rule evaluation cost: `cargo bench --bench rules`.

use criterion::{criterion_group, criterion_main, Criterion};
use farewatch::domain::{Currency, Money};
use farewatch::rules::{evaluate, AlertState, MinDrop, Rule};
use jiff::{SignedDuration, Timestamp};
use std::hint::black_box;

fn bench_rules(c: &mut Criterion) {
    let rule = Rule {
        max_price: Money::from_minor(300_00, Currency::EUR),
        min_drop: MinDrop::BasisPoints(500),
        cooldown: Some(SignedDuration::from_hours(6)),
    };
    let now = Timestamp::from_second(1_800_000_000).unwrap();
    let alerted = AlertState {
        last_alerted: Some(Money::from_minor(290_00, Currency::EUR)),
        last_alerted_at: Some(now),
        alerts_sent: 1,
    };
    let mut group = c.benchmark_group("rules");
    group.bench_function("evaluate/first_alert", |b| {
        b.iter(|| {
            evaluate(
                black_box(&rule),
                black_box(&AlertState::default()),
                black_box(Some(Money::from_minor(250_00, Currency::EUR))),
                now,
            )
        })
    });
    group.bench_function("evaluate/deeper_drop_in_cooldown", |b| {
        b.iter(|| {
            evaluate(
                black_box(&rule),
                black_box(&alerted),
                black_box(Some(Money::from_minor(200_00, Currency::EUR))),
                now,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench_rules);
criterion_main!(benches);
