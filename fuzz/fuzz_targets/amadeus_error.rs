//! Amadeus's error-body reader on raw bytes: never panics, and the code and
//! message it keeps are short, printable and free of secrets.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let error = farewatch::fuzzing::amadeus_error(data);
    if let Err(broken) = farewatch::fuzzing::check_amadeus_error(&error) {
        panic!("{broken}");
    }
});
