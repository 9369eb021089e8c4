//! `farewatch init`: a commented starter `routes.csv` and `.env` in the
//! working directory, so a first run needs no README open beside it.

use std::path::Path;

use crate::Exit;

/// The starter sheet: the repository's example rows, with comments.
const ROUTES: &str = include_str!("../../../routes.csv");
/// The starter settings: every variable, commented.
const DOTENV: &str = include_str!("../../../.env.example");

/// Writes both files; refuses to overwrite one that exists unless `force`.
pub fn run(force: bool) -> Exit {
    let files = [("routes.csv", ROUTES), (".env", DOTENV)];
    if !force {
        let existing: Vec<&str> = files
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| Path::new(name).exists())
            .collect();
        if !existing.is_empty() {
            note!(
                "error: {} already exist{} here; nothing was written (--force overwrites)",
                existing.join(" and "),
                if existing.len() == 1 { "s" } else { "" }
            );
            return Exit::Config;
        }
    }
    for (name, text) in files {
        if let Err(error) = std::fs::write(name, text) {
            note!("error: cannot write {name}: {error}");
            return Exit::Config;
        }
        note!("wrote {name}");
    }
    note!(
        "next: put your routes and phone numbers in routes.csv, a fare source's key \
         and Twilio's in .env, then run `farewatch check` (or `farewatch check --demo` first)"
    );
    Exit::Ok
}
