//! A throwaway PostgreSQL server for tests: `initdb` and `pg_ctl` into a temporary folder,
//! a free port on 127.0.0.1, trust authentication; as root through the `postgres` system
//! user (initdb refuses root). Dropping it stops the server by its PID and removes the
//! folder. `RUSH_TEST_POSTGRES_URL` points the tests at a server of one's own instead.
//! On a machine without PostgreSQL's binaries, [`start`] says why and returns `None`: the
//! test prints that one line and passes (`.ci/run` installs them, so CI always runs).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A running server (or the one `RUSH_TEST_POSTGRES_URL` names).
pub struct Server {
    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub url: String,
    /// The postmaster's PID, for a server this process started.
    pub pid: Option<u32>,
    folder: Option<tempfile::TempDir>,
    /// How to start it again: binaries, `pg_ctl` arguments, whether through `postgres`.
    restart: Option<(PathBuf, Vec<String>, bool)>,
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb` and `pg_ctl`, or
/// `pg_config --bindir`.
fn binaries() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).or_else(|| {
        let output = Command::new("pg_config").arg("--bindir").output().ok()?;
        let bin = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
        bin.join("initdb").is_file().then_some(bin)
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Runs `program` with `args`, as the `postgres` user when this process is root.
fn run(bin: &Path, program: &str, args: &[&str], root: bool) -> std::process::Output {
    let program = bin.join(program);
    let output = if root {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&program)
            .args(args)
            .output()
    } else {
        Command::new(&program).args(args).output()
    };
    let output = output.unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        output.status.success(),
        "{} {args:?} failed: {}{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Starts a server, or returns `None` after printing why none can run here.
pub fn start() -> Option<Server> {
    start_with(|_| String::new())
}

/// [`start`], letting `configure` prepare the data folder after initdb (as this process's
/// user; [`give_to_postgres`] hands files over) and return extra server options
/// (`-c name=value ...`). A server named by `RUSH_TEST_POSTGRES_URL` is used as it is.
pub fn start_with(configure: impl FnOnce(&Path) -> String) -> Option<Server> {
    if let Ok(url) = std::env::var("RUSH_TEST_POSTGRES_URL") {
        return Some(Server {
            url,
            pid: None,
            folder: None,
            restart: None,
        });
    }
    let Some(bin) = binaries() else {
        println!(
            "skipped: no PostgreSQL binaries (initdb, pg_ctl) on this machine; .ci/run installs them"
        );
        return None;
    };
    let root = is_root();
    let folder = tempfile::tempdir().unwrap();
    if root {
        let owned = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(folder.path())
            .status()
            .is_ok_and(|s| s.success());
        if !owned {
            println!(
                "skipped: running as root, and the folder cannot be given to the `postgres` user"
            );
            return None;
        }
    }
    let data = folder.path().join("data");
    let data = data.to_str().unwrap();
    run(
        &bin,
        "initdb",
        &[
            "-D",
            data,
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        root,
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let extra = configure(Path::new(data));
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=400 {extra}",
        folder.path().display()
    );
    let log = folder.path().join("server.log");
    let args: Vec<String> = [
        "-D",
        data,
        "-l",
        log.to_str().unwrap(),
        "-o",
        &options,
        "-w",
        "-t",
        "60",
        "start",
    ]
    .iter()
    .map(|a| (*a).to_owned())
    .collect();
    let mut server = Server {
        url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        pid: None,
        folder: Some(folder),
        restart: Some((bin, args, root)),
    };
    server.start_again();
    Some(server)
}

/// One server for the whole test process (the suites on `RUSH_TEST_ENGINE=postgres`), or
/// `None` after printing why none can run here. A server this process starts is stopped,
/// and its folder removed, by a watchdog process once this process has ended (statics are
/// never dropped).
pub fn shared() -> Option<&'static Server> {
    static SHARED: std::sync::OnceLock<Option<Server>> = std::sync::OnceLock::new();
    SHARED
        .get_or_init(|| {
            let mut server = start()?;
            if let (Some(pid), Some(folder)) = (server.pid, server.folder.take()) {
                let folder = folder.keep();
                let script = format!(
                    "while kill -0 {me} 2>/dev/null; do sleep 0.2; done; \
                     kill -QUIT {pid} 2>/dev/null; \
                     while kill -0 {pid} 2>/dev/null; do sleep 0.1; done; rm -rf '{}'",
                    folder.display(),
                    me = std::process::id()
                );
                // Not waited for: it outlives this process on purpose.
                #[allow(clippy::zombie_processes)]
                Command::new("sh")
                    .args(["-c", &script])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                // The watchdog owns the server now.
                server.pid = None;
            }
            Some(server)
        })
        .as_ref()
}

impl Server {
    /// Starts the server (again, on the same folder and port).
    pub fn start_again(&mut self) {
        let Some((bin, args, root)) = &self.restart else {
            panic!("not a server this test started");
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(bin, "pg_ctl", &args, *root);
        let data = Path::new(args[1]);
        self.pid = std::fs::read_to_string(data.join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<u32>().ok());
    }

    /// Stops the server at once, as a crash would (`pg_ctl -m immediate`: SIGQUIT), and
    /// waits until it is gone.
    pub fn stop_immediately(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = Command::new("kill")
                .args(["-QUIT", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Gives `path` to the `postgres` user when this process is root (the server refuses a
/// key file it does not own).
pub fn give_to_postgres(path: &Path) {
    if is_root() {
        let status = Command::new("chown")
            .arg("postgres:postgres")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success(), "chown {}", path.display());
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

impl Drop for Server {
    fn drop(&mut self) {
        let Some(pid) = self.pid else {
            return;
        };
        // SIGQUIT: an immediate shutdown, as after a crash; the folder goes anyway.
        let _ = Command::new("kill")
            .args(["-QUIT", &pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(self.folder.take());
    }
}
