//! A throwaway PostgreSQL server for the shared-journal tests, started
//! from the installed binaries (`pg_config --bindir`, else the newest
//! `/usr/lib/postgresql/*/bin`): `initdb` into a temporary directory, a
//! server on a free loopback port (its socket in that directory too),
//! stopped and removed when dropped. initdb refuses to run as root, so as
//! root the server runs as the `postgres` system user (`runuser`), the
//! directory handed to it. Missing binaries fail the test: these tests are
//! never skipped (`.ci/run` installs PostgreSQL).
//!
//! Shared by the SDK's and the CLI's tests (the CLI's include this file
//! by path).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running server; stopped (and its files removed) on drop.
pub struct TestPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres_user: bool,
}

fn bindir() -> PathBuf {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_server(&dir) {
            return dir;
        }
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    candidates.sort();
    match candidates.pop() {
        Some((_, dir)) => dir,
        None => panic!(
            "PostgreSQL's server binaries (initdb, pg_ctl) were not found (pg_config --bindir, \
             /usr/lib/postgresql/*/bin): install postgresql (apt-get install -y postgresql) to \
             run the shared batch journal's tests; they are not skipped"
        ),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl TestPostgres {
    /// initdb and start a server; panics with what went wrong.
    pub fn start() -> TestPostgres {
        let bin = bindir();
        let as_postgres_user = is_root();
        let dir = tempfile::Builder::new()
            .prefix("reka-pg-")
            .tempdir()
            .expect("temp dir");
        let mut pg = TestPostgres {
            dir,
            bin,
            port: 0,
            as_postgres_user,
        };
        if as_postgres_user {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(pg.dir.path())
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown the server's directory to postgres");
        }
        let data = pg.data_dir();
        let out = pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        assert!(out.status.success(), "initdb failed: {}", text(&out));
        // A port found free may be taken before the server binds it: try
        // a few.
        let mut last = String::new();
        for _ in 0..5 {
            pg.port = free_port();
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off -c max_connections=100",
                pg.port,
                pg.dir.path().display()
            );
            let log = pg.dir.path().join("server.log").display().to_string();
            let out = pg.run(
                "pg_ctl",
                &[
                    "-D", &data, "-o", &options, "-l", &log, "-w", "-t", "60", "start",
                ],
            );
            if out.status.success() {
                return pg;
            }
            last = format!(
                "{}\n{}",
                text(&out),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        panic!("the PostgreSQL server did not start: {last}");
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let program = self.bin.join(tool);
        let mut command = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL of the database `postgres` (user `postgres`, no password).
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// A URL of database `name` (see [`create_database`](Self::create_database)).
    pub fn url_of(&self, name: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{name}?sslmode=disable",
            self.port
        )
    }

    /// Runs SQL with psql against database `db`; its output (tuples only).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let port = self.port.to_string();
        let out = self.run(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                db,
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        );
        assert!(out.status.success(), "psql {sql}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Creates database `name`; its URL.
    pub fn create_database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url_of(name)
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let data = self.data_dir();
        // Immediate: the test is over, nothing in it needs keeping.
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}
