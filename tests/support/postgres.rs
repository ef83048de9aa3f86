//! One real PostgreSQL server per test binary, from Debian's `postgresql` package
//! (`scripts/test.sh` installs it): `initdb` in a temporary directory, a free loopback port,
//! password authentication. A watchdog shell stops the server (fast shutdown) and removes its
//! directory when the test process ends, however it ends. As root the server runs as the
//! `postgres` user, which PostgreSQL requires.
//!
//! Each test takes a database of its own (`Postgres::database`), so tests run in parallel.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The superuser's name and password.
pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-pw-7Qx";

/// The running server.
pub struct Postgres {
    pub port: u16,
    dir: PathBuf,
    /// With TLS: the PEM file of the private CA that signed the server's certificate.
    pub ca: Option<PathBuf>,
}

static SERVER: OnceLock<Postgres> = OnceLock::new();
static TLS_SERVER: OnceLock<Postgres> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// The test binary's server, started on first use.
pub fn server() -> &'static Postgres {
    SERVER.get_or_init(|| Postgres::start(false))
}

/// A second server that also offers TLS, with a certificate for 127.0.0.1 signed by a
/// private CA made for it (`Postgres::ca`), started on first use.
pub fn tls_server() -> &'static Postgres {
    TLS_SERVER.get_or_init(|| Postgres::start(true))
}

/// A private CA and a certificate for 127.0.0.1 it signed, made with `openssl` in `dir`:
/// `ca.pem`, `server.crt`, `server.key`.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| run(Command::new("openssl").current_dir(dir).args(args));
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=annoform test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
}

impl Postgres {
    fn start(tls: bool) -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("annoform-pg-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let data = dir.join("data");
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, ADMIN_PASSWORD).expect("write password file");
        let as_root = is_root();
        let ssl = if tls {
            make_certificates(&dir);
            format!(
                "-c ssl=on -c ssl_cert_file='{d}/server.crt' -c ssl_key_file='{d}/server.key'",
                d = dir.display()
            )
        } else {
            String::new()
        };
        if as_root {
            // PostgreSQL refuses to run as root: the postgres user owns the directory.
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir));
        }
        run(as_server_user(as_root, &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "--username",
                ADMIN,
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display())));
        let port = free_port();
        // The server and its watchdog: when this test process is gone, stop the server and
        // remove its directory.
        let script = format!(
            "{postgres} -D '{data}' -p {port} -k '{dir}' -c listen_addresses=127.0.0.1 \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off {ssl} \
             >'{dir}/log' 2>&1 & pg=$!
             while kill -0 {parent} 2>/dev/null && kill -0 $pg 2>/dev/null; do sleep 0.5; done
             kill -INT $pg 2>/dev/null; wait $pg; rm -rf '{dir}'",
            postgres = as_server_user_prefix(as_root, &bin.join("postgres")),
            data = data.display(),
            dir = dir.display(),
            parent = std::process::id(),
        );
        // The watchdog outlives this process by design: it is what stops the server.
        #[allow(clippy::zombie_processes)]
        Command::new("bash")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        let ca = tls.then(|| dir.join("ca.pem"));
        let server = Postgres { port, dir, ca };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match postgres::Client::connect(&self.admin_url("postgres"), postgres::NoTls) {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => panic!(
                    "PostgreSQL did not start: {e}\n{}",
                    std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// A URL for `user` with `password` to `database`.
    pub fn url(&self, user: &str, password: &str, database: &str) -> String {
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// The superuser's URL to `database`.
    pub fn admin_url(&self, database: &str) -> String {
        self.url(ADMIN, ADMIN_PASSWORD, database)
    }

    /// The superuser's session on `database`.
    pub fn admin(&self, database: &str) -> postgres::Client {
        postgres::Client::connect(&self.admin_url(database), postgres::NoTls)
            .expect("connect as admin")
    }

    /// A new empty database for one test.
    pub fn database(&self, prefix: &str) -> String {
        let name = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::SeqCst)
        );
        self.admin("postgres")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        name
    }

    /// A login role with `password` and no privileges beyond PUBLIC's.
    pub fn role(&self, name: &str, password: &str) {
        self.admin("postgres")
            .batch_execute(&format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"))
            .expect("create role");
    }
}

/// Debian installs the server under /usr/lib/postgresql/<version>/bin; the newest wins.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b).expect(
        "PostgreSQL server binaries not found under /usr/lib/postgresql: run scripts/test.sh, which installs Debian's `postgresql` package",
    )
}

/// Switch to the postgres user (util-linux's setpriv).
const SETPRIV: [&str; 3] = ["--reuid=postgres", "--regid=postgres", "--init-groups"];

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `program` run as the postgres user when we are root.
fn as_server_user(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut c = Command::new("setpriv");
        c.args(SETPRIV).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn as_server_user_prefix(as_root: bool, program: &Path) -> String {
    if as_root {
        // setpriv execs in place, so the watchdog's signal reaches the server itself.
        format!("setpriv {} '{}'", SETPRIV.join(" "), program.display())
    } else {
        format!("'{}'", program.display())
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A loopback port nothing listens on (right now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}
