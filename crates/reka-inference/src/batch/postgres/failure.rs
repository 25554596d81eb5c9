//! Why a database call failed, and which failures another try may pass:
//! the connection failing or the server saying to try again, never an
//! answer to the statement.

/// Why a call failed, and whether another try may pass.
pub(super) enum Failure {
    Pool(deadpool_postgres::PoolError),
    Db(tokio_postgres::Error),
    Timeout,
}

impl Failure {
    pub(super) fn transient(&self) -> bool {
        match self {
            Failure::Timeout => true,
            Failure::Pool(deadpool_postgres::PoolError::Timeout(_)) => true,
            Failure::Pool(deadpool_postgres::PoolError::Backend(e)) | Failure::Db(e) => {
                connection_failed(e)
            }
            Failure::Pool(_) => false,
        }
    }
}

/// Whether `e` is the connection failing (refused, reset, closed, timed
/// out), or the server saying to try again (a serialization failure, a
/// deadlock, a shutdown), rather than an answer to the statement.
fn connection_failed(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        Some(code) => matches!(code.code(), "40001" | "40P01" | "57P01" | "57P02" | "57P03"),
        None => {
            e.is_closed()
                || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
                || e.to_string().contains("timed out")
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Pool(e) => write!(f, "no connection: {e}"),
            Failure::Db(e) => match e.as_db_error() {
                Some(db) => write!(f, "{}", db.message()),
                None => write!(f, "{e}"),
            },
            Failure::Timeout => f.write_str("the database did not answer in time"),
        }
    }
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::Db(e)
    }
}
