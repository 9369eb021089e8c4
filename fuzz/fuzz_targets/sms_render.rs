//! The alert text from arbitrary routes, labels, dates and amounts: never
//! panics, and is always one GSM-7 segment showing the dates, the price and
//! the maximum in full.
#![no_main]

use arbitrary::Arbitrary;
use farewatch::fuzzing::{self, SmsInput};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    route: &'a str,
    label: Option<&'a str>,
    depart: i32,
    back: Option<i32>,
    price: i64,
    max_price: i64,
    currency: u8,
}

fuzz_target!(|input: Input<'_>| {
    let input = SmsInput {
        route: input.route,
        label: input.label,
        depart: input.depart,
        back: input.back,
        price: input.price,
        max_price: input.max_price,
        currency: input.currency,
    };
    if let Err(broken) = fuzzing::sms_render(&input) {
        panic!("{broken}");
    }
});
