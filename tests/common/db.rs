//! A throwaway state database per test, on either backend: an SQLite file in
//! a temporary directory, or a fresh PostgreSQL database `fw_test_<random>`
//! created on the server `FAREWATCH_TEST_POSTGRES` names (default
//! `postgres://postgres@127.0.0.1:5432/postgres`; `scripts/test.sh` makes
//! sure one answers) and dropped when the test ends.
//!
//! [`on_both_backends!`] turns one test body into one test per backend.

use farewatch::store::{Store, StoreLocation};
use sqlx::Connection;
use tempfile::TempDir;

/// The server tests create their databases on (its maintenance database).
pub fn postgres_admin_url() -> String {
    std::env::var("FAREWATCH_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One test's database. Open it as often as the test needs: each
/// [`TestDb::open`] is a new connection (or pool), as another process has.
pub struct TestDb {
    pub backend: Backend,
    location: StoreLocation,
    url: String,
    dir: TempDir,
    /// The PostgreSQL database to drop afterwards.
    postgres: Option<String>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("farewatch.db").display());
                Self {
                    backend,
                    location: StoreLocation::parse(&url).unwrap(),
                    url,
                    dir,
                    postgres: None,
                }
            }
            Backend::Postgres => {
                let name = format!("fw_test_{:016x}", rand_u64());
                let admin = postgres_admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "PostgreSQL for the tests does not answer at {admin} ({e}); \
                         start it, or set FAREWATCH_TEST_POSTGRES (scripts/test.sh does both)"
                        )
                    });
                // `name` is ours, made of [a-z0-9_] only: safe to splice in.
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.ok();
                let url = with_database(&admin, &name);
                Self {
                    backend,
                    location: StoreLocation::parse(&url).unwrap(),
                    url,
                    dir,
                    postgres: Some(name),
                }
            }
        }
    }

    /// A new store on this database (migrating it the first time).
    pub async fn open(&self) -> Store {
        Store::open(&self.location)
            .await
            .unwrap_or_else(|e| panic!("open {:?} store: {e}", self.backend))
    }

    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// `DATABASE_URL` for a child process.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A temporary directory that lives as long as the database.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot block on itself:
        // a thread with its own runtime removes the database.
        let admin = postgres_admin_url();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("note: could not drop a test database: {dropped:?}");
        }
    }
}

/// `url` with its database (the path) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("FAREWATCH_TEST_POSTGRES is a URL");
    parsed.set_path(&format!("/{name}"));
    parsed.to_string()
}

/// Enough randomness for unique database names, without a dependency.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// One test per backend from one body: `on_both_backends! { async fn
/// name(db: TestDb) { ... } }` makes `name::sqlite` and `name::postgres`.
/// A leading `#[tokio::test(...)]` sets the runtime for both.
#[macro_export]
macro_rules! on_both_backends {
    (
        $(#[doc = $doc:literal])*
        $(#[tokio::test($($args:tt)*)])?
        async fn $name:ident($db:ident: TestDb) $body:block
    ) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($db: $crate::common::db::TestDb) $body

            #[tokio::test$(($($args)*))?]
            async fn sqlite() {
                body($crate::common::db::TestDb::new($crate::common::db::Backend::Sqlite).await)
                    .await;
            }

            #[tokio::test$(($($args)*))?]
            async fn postgres() {
                body($crate::common::db::TestDb::new($crate::common::db::Backend::Postgres).await)
                    .await;
            }
        }
    };
}
