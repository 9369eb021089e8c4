//! Every Twilio reply reader on the same raw bytes: the 201 of a message
//! create, a page of the message list, and the error classifier under the
//! statuses that matter. Never panics, and errors land in the class the
//! retry table in `src/notify/twilio.rs` gives their status.
#![no_main]

use farewatch::fuzzing;
use farewatch::notify::NotifyError;
use libfuzzer_sys::fuzz_target;

/// Statuses with a rule of their own, and a few ordinary ones.
const STATUSES: [u16; 8] = [400, 401, 403, 404, 429, 500, 502, 503];

fuzz_target!(|data: &[u8]| {
    if let Err(error) = fuzzing::twilio_created(data) {
        assert!(
            matches!(error, NotifyError::Ambiguous(_)),
            "an unreadable 201 must stay ambiguous: {error:?}"
        );
    }
    if let Err(error) = fuzzing::twilio_list(data) {
        assert!(matches!(error, NotifyError::Ambiguous(_)), "{error:?}");
    }
    for status in STATUSES {
        let error = fuzzing::twilio_error(status, data).expect("a 4xx or 5xx is classified");
        if let Err(broken) = fuzzing::check_twilio_error(status, &error) {
            panic!("{broken}");
        }
    }
});
