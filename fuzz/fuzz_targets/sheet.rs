//! The routes sheet parser on raw bytes: never panics, and a sheet it
//! returns keeps its promises (valid routes, real line numbers, printable
//! messages; see `farewatch::fuzzing::check_sheet`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sheet) = farewatch::fuzzing::sheet(data) {
        if let Err(broken) = farewatch::fuzzing::check_sheet(data, &sheet) {
            panic!("{broken}");
        }
    }
});
