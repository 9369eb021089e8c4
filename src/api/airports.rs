//! Airport codes as the API accepts them: a four-letter ICAO location
//! indicator (`EGLL`), or a three-letter IATA airport code (`LHR`) that
//! [`IATA_TO_ICAO`] knows, normalised to ICAO, since OpenSky and the store
//! speak ICAO.
//!
//! The table is deliberately small: the airports of the test fixtures and
//! the world's busiest hubs. An IATA code it does not hold is refused
//! (422) with a hint to send the ICAO code instead, never guessed; ICAO
//! codes are accepted as they are, whatever the table holds. IATA city
//! codes (`LON`, `NYC`, `PAR`) name several airports and are refused with
//! the airports to choose from.

use super::error::ApiError;

/// IATA airport code -> ICAO location indicator, sorted by IATA code (a
/// unit test checks the order, so lookups can binary-search).
pub const IATA_TO_ICAO: &[(&str, &str)] = &[
    ("ADD", "HAAB"), // Addis Ababa Bole
    ("AKL", "NZAA"), // Auckland
    ("AMS", "EHAM"), // Amsterdam Schiphol
    ("ARN", "ESSA"), // Stockholm Arlanda
    ("ATH", "LGAV"), // Athens
    ("ATL", "KATL"), // Atlanta Hartsfield-Jackson
    ("AUH", "OMAA"), // Abu Dhabi
    ("AUS", "KAUS"), // Austin-Bergstrom
    ("BCN", "LEBL"), // Barcelona El Prat
    ("BER", "EDDB"), // Berlin Brandenburg
    ("BKK", "VTBS"), // Bangkok Suvarnabhumi
    ("BLR", "VOBL"), // Bengaluru Kempegowda
    ("BOG", "SKBO"), // Bogota El Dorado
    ("BOM", "VABB"), // Mumbai Chhatrapati Shivaji
    ("BOS", "KBOS"), // Boston Logan
    ("BRU", "EBBR"), // Brussels
    ("BUD", "LHBP"), // Budapest
    ("CAI", "HECA"), // Cairo
    ("CAN", "ZGGG"), // Guangzhou Baiyun
    ("CAT", "LPCS"), // Cascais (fixtures: TAP583's arrival)
    ("CDG", "LFPG"), // Paris Charles de Gaulle
    ("CGK", "WIII"), // Jakarta Soekarno-Hatta
    ("CGN", "EDDK"), // Cologne Bonn
    ("CLT", "KCLT"), // Charlotte Douglas
    ("CMN", "GMMN"), // Casablanca Mohammed V
    ("CPH", "EKCH"), // Copenhagen Kastrup
    ("CPT", "FACT"), // Cape Town
    ("CUN", "MMUN"), // Cancun
    ("DEL", "VIDP"), // Delhi Indira Gandhi
    ("DEN", "KDEN"), // Denver
    ("DFW", "KDFW"), // Dallas/Fort Worth
    ("DME", "UUDD"), // Moscow Domodedovo
    ("DOH", "OTHH"), // Doha Hamad
    ("DTW", "KDTW"), // Detroit Metropolitan
    ("DUB", "EIDW"), // Dublin
    ("DUS", "EDDL"), // Dusseldorf
    ("DXB", "OMDB"), // Dubai
    ("EDI", "EGPH"), // Edinburgh
    ("EWR", "KEWR"), // Newark Liberty
    ("EZE", "SAEZ"), // Buenos Aires Ezeiza
    ("FCO", "LIRF"), // Rome Fiumicino
    ("FRA", "EDDF"), // Frankfurt
    ("GIG", "SBGL"), // Rio de Janeiro Galeao
    ("GRU", "SBGR"), // Sao Paulo Guarulhos
    ("GVA", "LSGG"), // Geneva
    ("HAM", "EDDH"), // Hamburg
    ("HEL", "EFHK"), // Helsinki-Vantaa
    ("HKG", "VHHH"), // Hong Kong
    ("HND", "RJTT"), // Tokyo Haneda
    ("IAD", "KIAD"), // Washington Dulles
    ("IAH", "KIAH"), // Houston George Bush
    ("ICN", "RKSI"), // Seoul Incheon
    ("IST", "LTFM"), // Istanbul
    ("JED", "OEJN"), // Jeddah King Abdulaziz
    ("JFK", "KJFK"), // New York John F. Kennedy
    ("JNB", "FAOR"), // Johannesburg O. R. Tambo
    ("KEF", "BIKF"), // Reykjavik Keflavik
    ("KIX", "RJBB"), // Osaka Kansai
    ("KUL", "WMKK"), // Kuala Lumpur
    ("LAS", "KLAS"), // Las Vegas Harry Reid
    ("LAX", "KLAX"), // Los Angeles
    ("LED", "ULLI"), // St Petersburg Pulkovo
    ("LGA", "KLGA"), // New York LaGuardia
    ("LGW", "EGKK"), // London Gatwick
    ("LHR", "EGLL"), // London Heathrow
    ("LIM", "SPJC"), // Lima Jorge Chavez
    ("LIS", "LPPT"), // Lisbon
    ("LOS", "DNMM"), // Lagos Murtala Muhammed
    ("LTN", "EGGW"), // London Luton
    ("MAD", "LEMD"), // Madrid Barajas
    ("MAN", "EGCC"), // Manchester
    ("MCO", "KMCO"), // Orlando
    ("MEL", "YMML"), // Melbourne
    ("MEX", "MMMX"), // Mexico City
    ("MIA", "KMIA"), // Miami
    ("MNL", "RPLL"), // Manila Ninoy Aquino
    ("MSP", "KMSP"), // Minneapolis-Saint Paul
    ("MUC", "EDDM"), // Munich
    ("MXP", "LIMC"), // Milan Malpensa
    ("NBO", "HKJK"), // Nairobi Jomo Kenyatta
    ("NRT", "RJAA"), // Tokyo Narita
    ("ORD", "KORD"), // Chicago O'Hare
    ("ORY", "LFPO"), // Paris Orly
    ("OSL", "ENGM"), // Oslo Gardermoen
    ("PEK", "ZBAA"), // Beijing Capital
    ("PEN", "WMKP"), // Penang
    ("PHL", "KPHL"), // Philadelphia
    ("PHX", "KPHX"), // Phoenix Sky Harbor
    ("PKX", "ZBAD"), // Beijing Daxing
    ("PMI", "LEPA"), // Palma de Mallorca
    ("PRG", "LKPR"), // Prague
    ("PTY", "MPTO"), // Panama City Tocumen
    ("PVG", "ZSPD"), // Shanghai Pudong
    ("RUH", "OERK"), // Riyadh King Khalid
    ("SCL", "SCEL"), // Santiago
    ("SEA", "KSEA"), // Seattle-Tacoma
    ("SFO", "KSFO"), // San Francisco
    ("SHA", "ZSSS"), // Shanghai Hongqiao
    ("SIN", "WSSS"), // Singapore Changi
    ("STN", "EGSS"), // London Stansted
    ("SVO", "UUEE"), // Moscow Sheremetyevo
    ("SYD", "YSSY"), // Sydney Kingsford Smith
    ("SZX", "ZGSZ"), // Shenzhen Bao'an
    ("TLV", "LLBG"), // Tel Aviv Ben Gurion
    ("TPE", "RCTP"), // Taipei Taoyuan
    ("VCE", "LIPZ"), // Venice Marco Polo
    ("VIE", "LOWW"), // Vienna
    ("WAW", "EPWA"), // Warsaw Chopin
    ("WUH", "ZHHH"), // Wuhan Tianhe
    ("YUL", "CYUL"), // Montreal Trudeau
    ("YVR", "CYVR"), // Vancouver
    ("YYZ", "CYYZ"), // Toronto Pearson
    ("ZRH", "LSZH"), // Zurich
];

/// IATA city codes that name several airports, with those airports.
const CITY_CODES: &[(&str, &str)] = &[
    ("CHI", "ORD (KORD) or MDW (KMDW)"),
    (
        "LON",
        "LHR (EGLL), LGW (EGKK), STN (EGSS), LTN (EGGW) or LCY (EGLC)",
    ),
    ("MIL", "MXP (LIMC) or LIN (LIML)"),
    ("MOW", "SVO (UUEE), DME (UUDD) or VKO (UUWW)"),
    ("NYC", "JFK (KJFK), EWR (KEWR) or LGA (KLGA)"),
    ("PAR", "CDG (LFPG) or ORY (LFPO)"),
    ("ROM", "FCO (LIRF) or CIA (LIRA)"),
    ("STO", "ARN (ESSA) or BMA (ESSB)"),
    ("TYO", "HND (RJTT) or NRT (RJAA)"),
    ("WAS", "IAD (KIAD) or DCA (KDCA)"),
];

/// The ICAO code for a known IATA airport code (upper case).
pub fn icao_for_iata(iata: &str) -> Option<&'static str> {
    IATA_TO_ICAO
        .binary_search_by(|(code, _)| (*code).cmp(iata))
        .ok()
        .map(|i| IATA_TO_ICAO[i].1)
}

/// The IATA code of a known ICAO airport, for display.
pub fn iata_for_icao(icao: &str) -> Option<&'static str> {
    IATA_TO_ICAO
        .iter()
        .find(|(_, i)| *i == icao)
        .map(|(iata, _)| *iata)
}

/// `raw` as an upper-case ICAO code, or why not (the message for `field`).
pub fn normalise(raw: &str) -> Result<String, String> {
    let code = raw.trim().to_ascii_uppercase();
    if !code.bytes().all(|b| b.is_ascii_alphabetic()) || !(3..=4).contains(&code.len()) {
        return Err(format!(
            "`{}` is not an airport code; send an ICAO code (four letters, like EGLL) \
             or an IATA code (three letters, like LHR)",
            raw.trim().chars().take(20).collect::<String>()
        ));
    }
    if code.len() == 4 {
        return Ok(code);
    }
    if let Some(icao) = icao_for_iata(&code) {
        return Ok(icao.to_owned());
    }
    if let Some((_, airports)) = CITY_CODES.iter().find(|(city, _)| *city == code) {
        return Err(format!(
            "`{code}` is a city code naming several airports; send one airport: {airports}"
        ));
    }
    Err(format!(
        "`{code}` is not an IATA code farewatch knows; send the airport's four-letter \
         ICAO code instead (LHR is EGLL, JFK is KJFK)"
    ))
}

/// [`normalise`] as a 422 naming `field`.
pub fn normalise_field(field: &str, raw: &str) -> Result<String, ApiError> {
    normalise(raw).map_err(|message| ApiError::invalid_field(field, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_unique_and_well_formed() {
        for pair in IATA_TO_ICAO.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{:?} before {:?}", pair[0], pair[1]);
        }
        for (iata, icao) in IATA_TO_ICAO {
            assert!(iata.len() == 3 && iata.bytes().all(|b| b.is_ascii_uppercase()));
            assert!(icao.len() == 4 && icao.bytes().all(|b| b.is_ascii_uppercase()));
        }
        let mut icaos: Vec<&str> = IATA_TO_ICAO.iter().map(|(_, i)| *i).collect();
        icaos.sort_unstable();
        icaos.dedup();
        assert_eq!(
            icaos.len(),
            IATA_TO_ICAO.len(),
            "one IATA code per ICAO code"
        );
    }

    #[test]
    fn the_fixture_airports_are_known() {
        // tests/fixtures/status/opensky-{arrivals,departures}-EDDF.json
        for (iata, icao) in [
            ("FRA", "EDDF"),
            ("MAD", "LEMD"),
            ("DUB", "EIDW"),
            ("PVG", "ZSPD"),
            ("LHR", "EGLL"),
            ("CAT", "LPCS"),
        ] {
            assert_eq!(icao_for_iata(iata), Some(icao));
            assert_eq!(iata_for_icao(icao), Some(iata));
        }
    }

    #[test]
    fn codes_are_normalised_or_refused_with_a_hint() {
        assert_eq!(normalise(" lhr ").unwrap(), "EGLL");
        assert_eq!(normalise("egll").unwrap(), "EGLL");
        assert_eq!(
            normalise("ZZZZ").unwrap(),
            "ZZZZ",
            "ICAO codes are taken as given"
        );
        assert!(normalise("XQX").unwrap_err().contains("ICAO"));
        assert!(normalise("LON").unwrap_err().contains("EGLL"));
        for bad in ["", "E1LL", "EGLLX", "L", "../x"] {
            assert!(normalise(bad).is_err(), "{bad}");
        }
    }
}
