//! What `--demo` runs on: the example sheet used when there is no
//! routes.csv in the working directory, and today's flights for the mock
//! status provider. Dates are relative to today so it never goes stale;
//! the phone numbers are from ranges reserved for fiction (UK 020 7946 01xx,
//! US 555-01xx, Australia 0491 570 xxx).

use jiff::civil::Date;
use jiff::ToSpan;

use crate::status::mock::{MockStatus, Scenario};

/// The name shown in messages for the built-in sheet.
pub const NAME: &str = "demo-routes.csv";

/// The built-in sheet for `today`.
pub fn csv(today: Date) -> String {
    let day = |n: i64| today.checked_add(n.days()).unwrap_or(today).to_string();
    format!(
        "origin,destination,depart_date,return_date,max_price,currency,phone,min_drop,cooldown,label\n\
         LHR|LGW,JFK,{d30}..{d36},,450,GBP,+442079460123,5%,,London to New York\n\
         CDG,BCN,{d21},,150,EUR,+442079460124,,6h,Paris weekend\n\
         SFO,NRT|HND,{d60}..{d62},{d70}..{d72},1400,USD,+14155550123,50,,Tokyo in spring\n\
         AMS,LIS,{d14}..{d20},,90,EUR,+442079460125,,,Cheap sun\n\
         MAD,MEX,{d45},{d59},700,EUR,+442079460126|+14155550142,,,Family trip\n\
         SYD,BKK,{d90}..{d92},,350,AUD,+61491570006,,,Bangkok\n",
        d14 = day(14),
        d20 = day(20),
        d21 = day(21),
        d30 = day(30),
        d36 = day(36),
        d45 = day(45),
        d59 = day(59),
        d60 = day(60),
        d62 = day(62),
        d70 = day(70),
        d72 = day(72),
        d90 = day(90),
        d92 = day(92),
    )
}

/// Today's flights out of Frankfurt and London, one of each kind of news.
pub fn status(today: Date) -> MockStatus {
    MockStatus::new()
        .with_flight("LH400", today, Scenario::OnTime)
        .with_flight("LH902", today, Scenario::Delayed { minutes: 45 })
        .with_flight(
            "LH1234",
            today,
            Scenario::GateChange {
                from: "A12".into(),
                to: "B44".into(),
            },
        )
        .with_flight("LH2020", today, Scenario::Cancelled)
        .with_flight("BA117", today, Scenario::Departed)
        .with_flight("BA283", today, Scenario::Landed)
}
