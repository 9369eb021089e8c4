//! Amadeus's flight-offers reader on a raw 200 body: never panics; an
//! unreadable body is a printable `Decode` error that quotes no secret.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let result = farewatch::fuzzing::amadeus_offers(data);
    if let Err(broken) = farewatch::fuzzing::check_amadeus_offers(&result) {
        panic!("{broken}");
    }
});
