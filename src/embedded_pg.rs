//! A private PostgreSQL cluster, started and managed from the local server binaries.
//!
//! tradewatch needs PostgreSQL, but asking every developer (and every test run) to set up a
//! server, a role and a database first is friction that buys nothing. This module runs a
//! cluster of its own instead, from whatever PostgreSQL server binaries are installed:
//!
//! * it listens on a **unix socket only** (`listen_addresses = ''`), in a directory of its own,
//!   so it never clashes with a system PostgreSQL on port 5432 and is not reachable over TCP;
//! * its superuser is [`SUPERUSER`] with `trust` authentication; the socket directory is mode
//!   `0700`, so only its owner (and root) can connect at all;
//! * PostgreSQL refuses to run as root, so when this process is root the server programs run
//!   as the unprivileged `postgres` user (or `nobody`), which owns the data and socket
//!   directories.
//!
//! It is used in two ways:
//!
//! 1. [`EmbeddedPostgres::start`]: the server's zero-config default. The cluster lives under a
//!    root directory (e.g. `./.tradewatch`), is initialised on first use, reused across runs
//!    (even while still running, e.g. after the owning process was killed) and stopped with
//!    [`EmbeddedPostgres::stop`] on graceful exit. Its data is real, so `fsync` stays on.
//! 2. [`EmbeddedPostgres::start_temporary`]: the test harness. A throwaway, non-durable cluster
//!    in a fresh temp directory, watched by a detached shell process that stops the server and
//!    deletes the directory once the owning process has exited, even if it was killed.
//!
//! Connect with the URL from [`EmbeddedPostgres::url`].

use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::unistd::{Gid, Uid, User};
use tokio::process::{Child, Command};
use tracing::{info, warn};

/// Name of the cluster's superuser role (`initdb -U tradewatch`, authentication `trust`).
pub const SUPERUSER: &str = "tradewatch";

/// Database created in the cluster after start if it does not exist yet.
pub const DEFAULT_DATABASE: &str = "tradewatch";

/// Port of every embedded cluster. It is only part of the socket file's name
/// (`<socket_dir>/.s.PGSQL.5432`): no TCP port is opened, so it cannot clash with a server
/// listening on TCP port 5432.
const PORT: u16 = 5432;

/// Longest unix socket path the kernel accepts (`sizeof(sun_path)` minus the final NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Upper bound for any one helper command (initdb, pg_ctl, psql, ...).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

/// Seconds `pg_ctl` waits for the server to start or stop.
const PG_CTL_WAIT_SECS: &str = "60";

/// Settings file (inside PGDATA) that is rewritten on every start.
const SETTINGS_FILE: &str = "tradewatch.conf";

/// Line appended to `postgresql.conf` so that [`SETTINGS_FILE`] is read.
const INCLUDE_LINE: &str = "include_if_exists = 'tradewatch.conf'";

/// Errors from finding, initialising, starting or stopping the embedded cluster.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// No directory with the PostgreSQL server programs was found.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in PATH, \
         `pg_config --bindir`, or /usr/lib/postgresql/*/bin; install PostgreSQL \
         (e.g. `apt-get install postgresql` / `brew install postgresql@15`) or set DATABASE_URL \
         to use an existing server. Searched: {}",
        display_paths(searched)
    )]
    NoBinaries {
        /// Every directory that was looked at, in search order.
        searched: Vec<PathBuf>,
    },

    /// A file system or process-spawning operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, including the path involved.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A helper program (initdb, pg_ctl, psql, ...) failed.
    #[error("{what} failed ({status}):\n{output}")]
    Command {
        /// The command line, or a description of it.
        what: String,
        /// Its exit status.
        status: String,
        /// Its stdout and stderr, and for a failed start the tail of the server log.
        output: String,
    },

    /// Running as root, but neither a `postgres` nor a `nobody` user exists to run the server as
    /// (PostgreSQL refuses to run as root).
    #[error(
        "running as root, and neither user `postgres` nor `nobody` exists to run PostgreSQL as \
         (PostgreSQL refuses to run as root); create a `postgres` system user or run as a \
         normal user"
    )]
    NoUnprivilegedUser,

    /// The data directory was initialised by another PostgreSQL major version than the binaries.
    #[error(
        "data directory {data_dir} was initialised by PostgreSQL {data_version}, but the \
         binaries in {bindir} are PostgreSQL {binary_version}; install PostgreSQL \
         {data_version}, or move the data directory away (after a dump) to start afresh"
    )]
    VersionMismatch {
        /// The PGDATA directory.
        data_dir: PathBuf,
        /// Major version in `PG_VERSION`.
        data_version: String,
        /// Major version of the found binaries.
        binary_version: String,
        /// The binaries' directory.
        bindir: PathBuf,
    },

    /// A helper command did not finish in time.
    #[error("{what} did not finish within {seconds} s")]
    Timeout {
        /// The command, or what was waited for.
        what: String,
        /// How long was waited.
        seconds: u64,
    },

    /// The cluster's files are not in a state this module can work with.
    #[error("{0}")]
    BadState(String),
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "(nothing)".to_owned();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EmbeddedError {
    let context = context.into();
    move |source| EmbeddedError::Io { context, source }
}

// ---------------------------------------------------------------------------------------------
// Finding the binaries
// ---------------------------------------------------------------------------------------------

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn is_bindir(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|prog| is_executable(&dir.join(prog)))
}

/// Parses a PostgreSQL version such as `15`, `15.4` or `9.6.24` into a sortable pair.
fn parse_version(s: &str) -> Option<(u32, u32)> {
    let mut parts = s.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// `<parent>/<prefix><version><suffix>` directories, highest version first.
fn versioned_dirs(parent: &Path, prefix: &str, suffix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut found: Vec<((u32, u32), PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name();
            let version = parse_version(name.to_str()?.strip_prefix(prefix)?)?;
            Some((version, entry.path().join(suffix)))
        })
        .collect();
    found.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    found.into_iter().map(|(_, path)| path).collect()
}

/// Finds the directory holding the PostgreSQL server programs (`initdb`, `pg_ctl`,
/// `postgres`).
///
/// Search order:
/// 1. the directory of an `initdb` found on `PATH` (symlinks resolved, so that e.g.
///    `/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb` yields the real directory,
///    which also holds `psql` and `createdb`), if `pg_ctl` and `postgres` are there too;
/// 2. the output of `pg_config --bindir`;
/// 3. `/usr/lib/postgresql/*/bin` (Debian/Ubuntu), highest major version first; then, as
///    further fallbacks, `/usr/pgsql-*/bin` (RHEL/PGDG) and Homebrew's
///    `/opt/homebrew/opt/postgresql@*/bin` and `/usr/local/opt/postgresql@*/bin`.
///
/// A directory qualifies if it contains executable `initdb`, `pg_ctl` and `postgres`.
pub fn find_bindir() -> Result<PathBuf, EmbeddedError> {
    let mut searched: Vec<PathBuf> = Vec::new();
    let consider = |dir: PathBuf, searched: &mut Vec<PathBuf>| -> Option<PathBuf> {
        if searched.contains(&dir) {
            return None;
        }
        let ok = is_bindir(&dir);
        searched.push(dir.clone());
        ok.then_some(dir)
    };

    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if !is_executable(&initdb) {
                continue;
            }
            let real_dir = std::fs::canonicalize(&initdb)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf));
            if let Some(found) = real_dir.and_then(|d| consider(d, &mut searched)) {
                return Ok(found);
            }
            if let Some(found) = consider(dir, &mut searched) {
                return Ok(found);
            }
        }
    }

    if let Ok(out) = std::process::Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        && out.status.success()
    {
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !text.is_empty()
            && let Some(found) = consider(PathBuf::from(text), &mut searched)
        {
            return Ok(found);
        }
    }

    let families: [(&str, &str, &str); 4] = [
        ("/usr/lib/postgresql", "", "bin"),
        ("/usr", "pgsql-", "bin"),
        ("/opt/homebrew/opt", "postgresql@", "bin"),
        ("/usr/local/opt", "postgresql@", "bin"),
    ];
    for (parent, prefix, suffix) in families {
        for dir in versioned_dirs(Path::new(parent), prefix, suffix) {
            if let Some(found) = consider(dir, &mut searched) {
                return Ok(found);
            }
        }
    }

    if !searched
        .iter()
        .any(|p| p.starts_with("/usr/lib/postgresql"))
    {
        searched.push(PathBuf::from("/usr/lib/postgresql/*/bin"));
    }
    Err(EmbeddedError::NoBinaries { searched })
}

// ---------------------------------------------------------------------------------------------
// Running helper programs
// ---------------------------------------------------------------------------------------------

/// Uid and gid that the server programs run as (`None`: as this process).
type RunAs = Option<(Uid, Gid)>;

/// A command with a clean environment for PostgreSQL tools: no inherited `PG*` variables
/// (e.g. `PGOPTIONS`, `PGPORT`), stdin closed, working directory `/` (always traversable by the
/// unprivileged user), optionally switched to `run_as`.
fn pg_command(program: &Path, run_as: RunAs) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, _) in std::env::vars_os() {
        if key.as_bytes().starts_with(b"PG") {
            cmd.env_remove(key);
        }
    }
    if let Some((uid, gid)) = run_as {
        cmd.uid(uid.as_raw()).gid(gid.as_raw());
    }
    cmd
}

fn describe(cmd: &Command) -> String {
    let std_cmd = cmd.as_std();
    let mut s = std_cmd.get_program().to_string_lossy().into_owned();
    for arg in std_cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

fn combined_output(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim_end();
    if !stderr.is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(stderr);
    }
    text
}

/// Runs `cmd` to completion (with a timeout) and returns its output whatever its exit status.
async fn run_raw(cmd: &mut Command) -> Result<Output, EmbeddedError> {
    let what = describe(cmd);
    let child = cmd
        .spawn()
        .map_err(io_err(format!("could not run {what}")))?;
    match tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output()).await {
        Ok(result) => result.map_err(io_err(format!("could not wait for {what}"))),
        Err(_) => Err(EmbeddedError::Timeout {
            what,
            seconds: COMMAND_TIMEOUT.as_secs(),
        }),
    }
}

/// Runs `cmd` and fails with [`EmbeddedError::Command`] unless it exits successfully.
async fn run_ok(cmd: &mut Command) -> Result<Output, EmbeddedError> {
    let out = run_raw(cmd).await?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(EmbeddedError::Command {
            what: describe(cmd),
            status: out.status.to_string(),
            output: combined_output(&out),
        })
    }
}

/// The last `lines` lines of a (log) file, or a note why there are none.
async fn tail(path: &Path, lines: usize) -> String {
    match tokio::fs::read(path).await {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            all[start..].join("\n")
        }
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}

/// Finds a client program (`psql`, `createdb`) in `bindir`, else on `PATH`.
fn client_program(bindir: &Path, name: &str) -> Option<PathBuf> {
    let in_bindir = bindir.join(name);
    if is_executable(&in_bindir) {
        return Some(in_bindir);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

// ---------------------------------------------------------------------------------------------
// File system helpers
// ---------------------------------------------------------------------------------------------

fn chown(path: &Path, run_as: RunAs) -> Result<(), EmbeddedError> {
    if let Some((uid, gid)) = run_as {
        std::os::unix::fs::chown(path, Some(uid.as_raw()), Some(gid.as_raw())).map_err(io_err(
            format!("could not chown {} to uid {uid}", path.display()),
        ))?;
    }
    Ok(())
}

async fn set_mode(path: &Path, mode: u32) -> Result<(), EmbeddedError> {
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .await
        .map_err(io_err(format!("could not chmod {}", path.display())))
}

async fn exists(path: &Path) -> bool {
    tokio::fs::try_exists(path).await.unwrap_or(false)
}

/// Creates `dir` (if missing) owned by `run_as` (or this process) with mode 0700, refusing an
/// existing directory that belongs to somebody else (it may be under a shared `/tmp`).
async fn ensure_private_dir(dir: &Path, run_as: RunAs) -> Result<(), EmbeddedError> {
    match tokio::fs::create_dir(dir).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(format!("could not create {}", dir.display()))(e)),
    }
    let meta = tokio::fs::symlink_metadata(dir)
        .await
        .map_err(io_err(format!("could not stat {}", dir.display())))?;
    let expected = run_as.map_or_else(|| Uid::effective().as_raw(), |(uid, _)| uid.as_raw());
    if !meta.is_dir() {
        return Err(EmbeddedError::BadState(format!(
            "{} exists but is not a directory",
            dir.display()
        )));
    }
    if meta.uid() != expected && meta.uid() != Uid::effective().as_raw() {
        return Err(EmbeddedError::BadState(format!(
            "{} belongs to uid {}, expected uid {expected}; remove it",
            dir.display(),
            meta.uid()
        )));
    }
    chown(dir, run_as)?;
    set_mode(dir, 0o700).await
}

/// A stable 64-bit FNV-1a hash (std's `DefaultHasher` is not guaranteed stable across
/// releases, and the fallback socket directory name should not change between builds).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Where the private clusters of data folders that PostgreSQL's user cannot reach live
/// (see [`EmbeddedPostgres::start`]).
pub const RELOCATED_ROOT: &str = "/var/lib/tradewatch";

/// The first ancestor of `dir` (not `dir` itself, which is made 0755) that `uid`/`gid`
/// cannot traverse, by its mode bits.
fn untraversable_ancestor(dir: &Path, uid: Uid, gid: Gid) -> Option<PathBuf> {
    dir.ancestors().skip(1).find_map(|a| {
        let meta = std::fs::metadata(a).ok()?;
        let mode = meta.mode();
        let ok = if meta.uid() == uid.as_raw() {
            mode & 0o100 != 0
        } else if meta.gid() == gid.as_raw() {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        (!ok).then(|| a.to_path_buf())
    })
}

/// `root/run`, or `/tmp/tw-<hash of data dir>` when the socket path under `root/run` would
/// exceed the kernel's limit.
fn choose_socket_dir(root: &Path, data_dir: &Path) -> PathBuf {
    let preferred = root.join("run");
    let socket_name_len = format!("/.s.PGSQL.{PORT}").len();
    if preferred.as_os_str().len() + socket_name_len <= MAX_SOCKET_PATH {
        preferred
    } else {
        PathBuf::from(format!(
            "/tmp/tw-{:016x}",
            fnv1a(data_dir.as_os_str().as_bytes())
        ))
    }
}

fn path_str(path: &Path) -> Result<&str, EmbeddedError> {
    path.to_str().ok_or_else(|| {
        EmbeddedError::BadState(format!("path {} is not valid UTF-8", path.display()))
    })
}

/// Percent-encodes everything except RFC 3986 unreserved characters.
fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A TCP port on 127.0.0.1 that is free now (the kernel's pick; the cluster binds it a
/// moment later).
fn free_tcp_port() -> Result<u16, EmbeddedError> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(io_err(
            "could not find a free TCP port for the test cluster",
        ))
}

/// Socket directory and port of a running server, from lines 5 and 4 of `postmaster.pid`, once
/// its status line says `ready` (waits up to 60 s).
async fn running_server_socket(data_dir: &Path) -> Result<(PathBuf, u16), EmbeddedError> {
    let pid_file = data_dir.join("postmaster.pid");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = tokio::fs::read_to_string(&pid_file)
            .await
            .map_err(io_err(format!("could not read {}", pid_file.display())))?;
        let lines: Vec<&str> = text.lines().collect();
        let ready = lines.get(7).is_some_and(|s| s.trim() == "ready");
        if ready {
            let port = lines.get(3).and_then(|s| s.trim().parse::<u16>().ok());
            let socket = lines.get(4).map(|s| s.trim()).filter(|s| !s.is_empty());
            return match (port, socket) {
                (Some(port), Some(socket)) => Ok((PathBuf::from(socket), port)),
                _ => Err(EmbeddedError::BadState(format!(
                    "the server running on {} has no unix socket or port in {}; stop it \
                     (pg_ctl -D {} stop) and try again",
                    data_dir.display(),
                    pid_file.display(),
                    data_dir.display()
                ))),
            };
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(EmbeddedError::Timeout {
                what: format!(
                    "waiting for the server on {} to be ready",
                    data_dir.display()
                ),
                seconds: 60,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------------

/// Which kind of cluster is being set up.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Persistent,
    Temporary,
}

/// A running private PostgreSQL cluster (see the module documentation).
///
/// Dropping it leaves the server running: call [`EmbeddedPostgres::stop`] on graceful exit. A
/// temporary cluster is in any case stopped and deleted by its watchdog once the owning process
/// has exited.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    bindir: PathBuf,
    root: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    run_as: RunAs,
    /// For a temporary cluster: the watchdog process, killed by a successful [`Self::stop`].
    watchdog: Option<Child>,
    /// Whether this process started the server (rather than reusing a running one).
    started: bool,
}

impl EmbeddedPostgres {
    /// Starts (or reuses) the persistent cluster under `root` (e.g. `./.tradewatch`).
    ///
    /// PGDATA is `root/pgdata`, the socket directory `root/run` (or `/tmp/tw-<hash>` if that
    /// path would be too long for a unix socket), the server log `root/postgres.log`. The
    /// cluster is initialised on first use; a server already running on this data directory
    /// (per `postmaster.pid` and `pg_ctl status`) is reused as it is, else it is started.
    /// Then [`DEFAULT_DATABASE`] is created if missing.
    pub async fn start(root: &Path) -> Result<Self, EmbeddedError> {
        let root = std::path::absolute(root)
            .map_err(io_err(format!("could not resolve {}", root.display())))?;
        let bindir = find_bindir()?;
        tokio::fs::create_dir_all(&root)
            .await
            .map_err(io_err(format!("could not create {}", root.display())))?;
        let root = Self::reachable_root(root).await?;
        Self::launch(bindir, root, Kind::Persistent).await
    }

    /// Where the cluster of the data folder `root` lives: `root` itself, unless this
    /// process is root and the unprivileged user that runs PostgreSQL cannot reach it (a
    /// checkout in root's own home, mode 0700): then a folder of its own under
    /// [`RELOCATED_ROOT`], named after `root` (the same one on every run). Said in the log.
    async fn reachable_root(root: PathBuf) -> Result<PathBuf, EmbeddedError> {
        let data_dir = root.join("pgdata");
        if exists(&data_dir.join("PG_VERSION")).await {
            return Ok(root);
        }
        let Some((uid, gid)) = resolve_run_as(&data_dir, false).await? else {
            return Ok(root);
        };
        let Some(blocked) = untraversable_ancestor(&root, uid, gid) else {
            return Ok(root);
        };
        let name = root
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("data")
            .trim_start_matches('.');
        let relocated = Path::new(RELOCATED_ROOT).join(format!(
            "{name}-{:016x}",
            fnv1a(root.as_os_str().as_bytes())
        ));
        tokio::fs::create_dir_all(&relocated)
            .await
            .map_err(io_err(format!("could not create {}", relocated.display())))?;
        set_mode(Path::new(RELOCATED_ROOT), 0o755).await?;
        info!(
            data_dir = %root.display(),
            cluster = %relocated.display(),
            blocked = %blocked.display(),
            "the private PostgreSQL cluster lives in {} (PostgreSQL refuses to run as root, and uid {uid} cannot reach {}: {} is not traversable)",
            relocated.display(),
            root.display(),
            blocked.display()
        );
        Ok(relocated)
    }

    /// Starts a throwaway cluster in a fresh temp directory, tuned for tests (no fsync,
    /// `max_connections = 200`).
    ///
    /// A detached watchdog (`sh`, in its own process group, ignoring SIGHUP and SIGINT, so it
    /// survives the owner's death) polls `kill -0 owner_pid`; once that process is gone it
    /// stops the server immediately (SIGQUIT to the postmaster, the equivalent of
    /// `pg_ctl stop -m immediate`) and deletes the directory. On Linux an exited but unreaped
    /// (zombie) owner counts as gone; elsewhere it must be reaped first. For the test process
    /// itself, pass [`std::process::id()`].
    pub async fn start_temporary(owner_pid: u32) -> Result<Self, EmbeddedError> {
        let bindir = find_bindir()?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let root = std::path::absolute(std::env::temp_dir())
            .map_err(io_err("could not resolve the temp dir"))?
            .join(format!("tradewatch-pg-{}-{nanos}", std::process::id()));
        tokio::fs::create_dir(&root)
            .await
            .map_err(io_err(format!("could not create {}", root.display())))?;
        let data_dir = root.join("pgdata");
        let socket_dir = choose_socket_dir(&root, &data_dir);
        let outside_socket_dir = (!socket_dir.starts_with(&root)).then_some(socket_dir.as_path());

        let watchdog = match spawn_watchdog(owner_pid, &data_dir, &root, outside_socket_dir) {
            Ok(child) => child,
            Err(e) => {
                let _ = tokio::fs::remove_dir_all(&root).await;
                return Err(e);
            }
        };
        match Self::launch(bindir, root.clone(), Kind::Temporary).await {
            Ok(mut pg) => {
                pg.watchdog = Some(watchdog);
                Ok(pg)
            }
            // The watchdog stays: it cleans up whatever the failed start left behind once
            // the owner exits. Still try to tidy up now.
            Err(e) => {
                let pid_file = data_dir.join("postmaster.pid");
                if exists(&pid_file).await {
                    warn!(dir = %root.display(), "temporary cluster start failed; leaving cleanup to its watchdog");
                } else {
                    let _ = tokio::fs::remove_dir_all(&root).await;
                    if let Some(dir) = outside_socket_dir {
                        let _ = tokio::fs::remove_dir_all(dir).await;
                    }
                }
                Err(e)
            }
        }
    }

    async fn launch(bindir: PathBuf, root: PathBuf, kind: Kind) -> Result<Self, EmbeddedError> {
        let data_dir = root.join("pgdata");
        let initialized = exists(&data_dir.join("PG_VERSION")).await;
        let run_as = resolve_run_as(&data_dir, initialized).await?;
        if run_as.is_some() {
            // The unprivileged user must be able to reach PGDATA and the log through `root`.
            set_mode(&root, 0o755).await?;
        }
        let user_hint = match run_as {
            Some((uid, _)) => format!(
                " (running as uid {uid} because PostgreSQL refuses to run as root; every \
                 parent directory of {} must be traversable by that user)",
                data_dir.display()
            ),
            None => String::new(),
        };

        if initialized {
            check_version(&bindir, &data_dir).await?;
        } else {
            match tokio::fs::create_dir(&data_dir).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(io_err(format!("could not create {}", data_dir.display()))(
                        e,
                    ));
                }
            }
            chown(&data_dir, run_as)?;
            info!(data_dir = %data_dir.display(), bindir = %bindir.display(), "initialising PostgreSQL cluster (initdb)");
            let mut cmd = pg_command(&bindir.join("initdb"), run_as);
            cmd.arg("-D").arg(&data_dir).args([
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ]);
            if kind == Kind::Temporary {
                cmd.arg("--no-sync");
            }
            run_ok(&mut cmd)
                .await
                .map_err(|e| add_hint(e, &user_hint))?;
        }

        let mut pg = EmbeddedPostgres {
            socket_dir: choose_socket_dir(&root, &data_dir),
            bindir,
            root,
            data_dir,
            port: PORT,
            run_as,
            watchdog: None,
            started: false,
        };

        if kind == Kind::Persistent && pg.is_running().await? {
            let (socket_dir, port) = running_server_socket(&pg.data_dir).await?;
            info!(data_dir = %pg.data_dir.display(), socket_dir = %socket_dir.display(), "reusing running PostgreSQL cluster");
            pg.socket_dir = socket_dir;
            pg.port = port;
        } else {
            if kind == Kind::Temporary {
                pg.port = free_tcp_port()?;
            }
            ensure_private_dir(&pg.socket_dir, run_as).await?;
            pg.write_settings(kind).await?;
            pg.pg_ctl_start(&user_hint).await?;
            pg.started = true;
        }
        pg.ensure_database(DEFAULT_DATABASE).await?;
        Ok(pg)
    }

    /// Whether a server is running on the data directory (`pg_ctl status`).
    async fn is_running(&self) -> Result<bool, EmbeddedError> {
        if !exists(&self.data_dir.join("postmaster.pid")).await {
            return Ok(false);
        }
        let mut cmd = pg_command(&self.bindir.join("pg_ctl"), self.run_as);
        cmd.arg("-D").arg(&self.data_dir).arg("status");
        let out = run_raw(&mut cmd).await?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(3) => Ok(false),
            _ => Err(EmbeddedError::Command {
                what: describe(&cmd),
                status: out.status.to_string(),
                output: combined_output(&out),
            }),
        }
    }

    /// Writes `PGDATA/tradewatch.conf` and makes sure `postgresql.conf` includes it.
    async fn write_settings(&self, kind: Kind) -> Result<(), EmbeddedError> {
        let socket_dir = path_str(&self.socket_dir)?.replace('\'', "''");
        // A throwaway test cluster also listens on 127.0.0.1 (on a port picked free),
        // for the tests of the production set-up: DATABASE_URL over TCP.
        let listen = if kind == Kind::Temporary {
            "127.0.0.1"
        } else {
            ""
        };
        let mut settings = format!(
            "# Written by tradewatch on every start of this cluster: edits here are lost.\n\
             listen_addresses = '{listen}'\n\
             unix_socket_directories = '{socket_dir}'\n\
             port = {}\n",
            self.port
        );
        if kind == Kind::Temporary {
            settings.push_str(
                "# Throwaway test cluster: durability is not needed.\n\
                 fsync = off\n\
                 synchronous_commit = off\n\
                 full_page_writes = off\n\
                 max_connections = 200\n",
            );
        }
        let settings_path = self.data_dir.join(SETTINGS_FILE);
        tokio::fs::write(&settings_path, settings)
            .await
            .map_err(io_err(format!(
                "could not write {}",
                settings_path.display()
            )))?;
        chown(&settings_path, self.run_as)?;

        let conf = self.data_dir.join("postgresql.conf");
        let text = tokio::fs::read_to_string(&conf)
            .await
            .map_err(io_err(format!("could not read {}", conf.display())))?;
        if !text.lines().any(|line| line.trim() == INCLUDE_LINE) {
            let mut new_text = text;
            if !new_text.ends_with('\n') {
                new_text.push('\n');
            }
            new_text.push_str("\n# Settings managed by tradewatch.\n");
            new_text.push_str(INCLUDE_LINE);
            new_text.push('\n');
            tokio::fs::write(&conf, new_text)
                .await
                .map_err(io_err(format!("could not write {}", conf.display())))?;
        }
        Ok(())
    }

    async fn pg_ctl_start(&self, user_hint: &str) -> Result<(), EmbeddedError> {
        let log = self.root.join("postgres.log");
        // pg_ctl opens the log as the server's user, which cannot create files in `root`.
        tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .await
            .map_err(io_err(format!("could not create {}", log.display())))?;
        chown(&log, self.run_as)?;

        info!(data_dir = %self.data_dir.display(), socket_dir = %self.socket_dir.display(), "starting PostgreSQL cluster");
        let mut cmd = pg_command(&self.bindir.join("pg_ctl"), self.run_as);
        cmd.arg("-D").arg(&self.data_dir).arg("-l").arg(&log).args([
            "-w",
            "-t",
            PG_CTL_WAIT_SECS,
            "start",
        ]);
        match run_ok(&mut cmd).await {
            Ok(_) => Ok(()),
            Err(EmbeddedError::Command {
                what,
                status,
                output,
            }) => Err(EmbeddedError::Command {
                what,
                status,
                output: format!(
                    "{output}\n--- last lines of {}{user_hint} ---\n{}",
                    log.display(),
                    tail(&log, 40).await
                ),
            }),
            Err(e) => Err(e),
        }
    }

    /// Creates `database` unless it exists: checked with `psql`, created with `CREATE DATABASE`
    /// (or, without `psql`, with `createdb`, accepting "already exists").
    async fn ensure_database(&self, database: &str) -> Result<(), EmbeddedError> {
        let conn_args = |cmd: &mut Command| {
            cmd.arg("-h").arg(&self.socket_dir).args([
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
            ]);
        };
        if let Some(psql) = client_program(&self.bindir, "psql") {
            let literal = database.replace('\'', "''");
            let mut check = pg_command(&psql, None);
            conn_args(&mut check);
            check.args(["-X", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-tAc"]);
            check.arg(format!(
                "select 1 from pg_database where datname = '{literal}'"
            ));
            let out = run_ok(&mut check).await?;
            if String::from_utf8_lossy(&out.stdout).trim() == "1" {
                return Ok(());
            }
            info!(database, "creating database");
            let ident = database.replace('"', "\"\"");
            let mut create = pg_command(&psql, None);
            conn_args(&mut create);
            create.args(["-X", "-q", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c"]);
            create.arg(format!("CREATE DATABASE \"{ident}\""));
            run_ok(&mut create).await?;
            return Ok(());
        }
        let Some(createdb) = client_program(&self.bindir, "createdb") else {
            return Err(EmbeddedError::BadState(format!(
                "neither psql nor createdb found in {} or PATH to create database {database}",
                self.bindir.display()
            )));
        };
        let mut cmd = pg_command(&createdb, None);
        conn_args(&mut cmd);
        cmd.arg(database);
        let out = run_raw(&mut cmd).await?;
        let text = combined_output(&out);
        if out.status.success() {
            info!(database, "created database");
            Ok(())
        } else if text.contains("already exists") {
            Ok(())
        } else {
            Err(EmbeddedError::Command {
                what: describe(&cmd),
                status: out.status.to_string(),
                output: text,
            })
        }
    }

    /// Directory holding the server's unix socket (`<socket_dir>/.s.PGSQL.<port>`).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The server's port. No TCP port is opened; it only names the socket file, so it is
    /// 5432 without clashing with a server on TCP port 5432.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory (PGDATA).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The directory of the PostgreSQL programs in use (`initdb`, `pg_ctl`, `postgres`, and
    /// usually `psql`).
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// A libpq-style URL for `database`, usable by sqlx and by `psql`:
    /// `postgres://tradewatch@localhost/<database>?host=<socket dir>&port=<port>`.
    ///
    /// The database name and the socket directory are percent-encoded. A `host` query
    /// parameter that starts with `/` is a unix socket directory for both libpq and sqlx, so
    /// the `localhost` in the authority is never used; no password is needed (`trust`).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@localhost/{}?host={}&port={}",
            percent_encode(database.as_bytes()),
            percent_encode(self.socket_dir.as_os_str().as_bytes()),
            self.port
        )
    }

    /// For a temporary (test) cluster, which also listens on 127.0.0.1: a URL for
    /// `database` over TCP, `postgres://tradewatch@127.0.0.1:<port>/<database>`.
    pub fn tcp_url(&self, database: &str) -> Option<String> {
        self.watchdog.is_some().then(|| {
            format!(
                "postgres://{SUPERUSER}@127.0.0.1:{}/{}",
                self.port,
                percent_encode(database.as_bytes())
            )
        })
    }

    /// Whether this process started the server: a cluster found running (another
    /// process's) is reused, and must be left running.
    pub fn started_here(&self) -> bool {
        self.started
    }

    /// Stops the server (`pg_ctl stop -m fast`, waiting up to 60 s for it to exit).
    ///
    /// For a temporary cluster it then deletes the cluster's directory and ends its watchdog.
    pub async fn stop(mut self) -> Result<(), EmbeddedError> {
        info!(data_dir = %self.data_dir.display(), "stopping PostgreSQL cluster");
        let mut cmd = pg_command(&self.bindir.join("pg_ctl"), self.run_as);
        cmd.arg("-D").arg(&self.data_dir).args([
            "-m",
            "fast",
            "-w",
            "-t",
            PG_CTL_WAIT_SECS,
            "stop",
        ]);
        run_ok(&mut cmd).await?;

        if let Some(mut watchdog) = self.watchdog.take() {
            tokio::fs::remove_dir_all(&self.root)
                .await
                .map_err(io_err(format!("could not remove {}", self.root.display())))?;
            if !self.socket_dir.starts_with(&self.root) {
                let _ = tokio::fs::remove_dir_all(&self.socket_dir).await;
            }
            let _ = watchdog.start_kill();
            let _ = watchdog.wait().await;
            info!(dir = %self.root.display(), "removed temporary PostgreSQL cluster");
        }
        Ok(())
    }
}

/// Adds `hint` to a failed command's output.
fn add_hint(err: EmbeddedError, hint: &str) -> EmbeddedError {
    match err {
        EmbeddedError::Command {
            what,
            status,
            output,
        } if !hint.is_empty() => EmbeddedError::Command {
            what,
            status,
            output: format!("{output}\n{}", hint.trim()),
        },
        other => other,
    }
}

/// Who runs the server programs: this process unless it is root. As root, the owner of an
/// existing cluster's data directory, else the `postgres` user, else `nobody`.
async fn resolve_run_as(data_dir: &Path, initialized: bool) -> Result<RunAs, EmbeddedError> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    if initialized {
        let meta = tokio::fs::metadata(data_dir)
            .await
            .map_err(io_err(format!("could not stat {}", data_dir.display())))?;
        if meta.uid() == 0 {
            return Err(EmbeddedError::BadState(format!(
                "{} is owned by root, but PostgreSQL refuses to run as root; chown -R it to an \
                 unprivileged user (e.g. postgres)",
                data_dir.display()
            )));
        }
        return Ok(Some((Uid::from_raw(meta.uid()), Gid::from_raw(meta.gid()))));
    }
    for name in ["postgres", "nobody"] {
        match User::from_name(name) {
            Ok(Some(user)) if !user.uid.is_root() => return Ok(Some((user.uid, user.gid))),
            Ok(_) => {}
            Err(errno) => warn!(user = name, %errno, "could not look up user"),
        }
    }
    Err(EmbeddedError::NoUnprivilegedUser)
}

/// Major version (`15`, or `9.6` before PostgreSQL 10) of the `postgres` binary.
async fn binary_major_version(bindir: &Path) -> Result<String, EmbeddedError> {
    let mut cmd = pg_command(&bindir.join("postgres"), None);
    cmd.arg("--version");
    let out = run_ok(&mut cmd).await?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // "postgres (PostgreSQL) 15.14 (Debian 15.14-1.pgdg12+1)"
    let version = text.split_whitespace().find_map(parse_version);
    match version {
        Some((major, minor)) if major < 10 => Ok(format!("{major}.{minor}")),
        Some((major, _)) => Ok(major.to_string()),
        None => Err(EmbeddedError::BadState(format!(
            "could not parse the version from `{} --version`: {}",
            bindir.join("postgres").display(),
            text.trim()
        ))),
    }
}

async fn check_version(bindir: &Path, data_dir: &Path) -> Result<(), EmbeddedError> {
    let pg_version = data_dir.join("PG_VERSION");
    let data_version = tokio::fs::read_to_string(&pg_version)
        .await
        .map_err(io_err(format!("could not read {}", pg_version.display())))?
        .trim()
        .to_owned();
    let binary_version = binary_major_version(bindir).await?;
    if data_version == binary_version {
        Ok(())
    } else {
        Err(EmbeddedError::VersionMismatch {
            data_dir: data_dir.to_path_buf(),
            data_version,
            binary_version,
            bindir: bindir.to_path_buf(),
        })
    }
}

/// The watchdog script. Arguments: `$1` owner pid, `$2` PGDATA, `$3` directory to delete,
/// `$4` socket directory to delete too (empty if inside `$3`). On Linux a zombie owner counts
/// as exited, since not every init reaps orphans promptly.
///
/// It stops the postmaster with SIGQUIT (immediate shutdown) rather than `pg_ctl`, which
/// refuses to run as root; on Linux it first checks that the pid from `postmaster.pid` really
/// is a `postgres` process, so a stale pid file cannot make it signal an unrelated process.
const WATCHDOG_SCRIPT: &str = r#"trap '' HUP INT
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  # A zombie (exited, not yet reaped) still answers kill -0; on Linux, count it as gone.
  [ -r "/proc/$1/stat" ] || return 0
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
  [ "$state" != Z ]
}
while alive "$1"; do sleep 0.5; done
pm=$(head -n 1 "$2/postmaster.pid" 2>/dev/null)
case "$pm" in
  ''|*[!0-9]*) pm= ;;
esac
if [ -n "$pm" ] && [ -r "/proc/$pm/comm" ] && [ "$(cat "/proc/$pm/comm" 2>/dev/null)" != postgres ]; then
  pm=
fi
if [ -n "$pm" ]; then
  kill -QUIT "$pm" 2>/dev/null
  i=0
  while alive "$pm" && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  if alive "$pm"; then kill -KILL "$pm" 2>/dev/null; fi
fi
rm -rf "$3"
if [ -n "$4" ]; then rm -rf "$4"; fi
"#;

fn spawn_watchdog(
    owner_pid: u32,
    data_dir: &Path,
    root: &Path,
    outside_socket_dir: Option<&Path>,
) -> Result<Child, EmbeddedError> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(WATCHDOG_SCRIPT)
        .arg("tradewatch-pg-watchdog")
        .arg(owner_pid.to_string())
        .arg(data_dir)
        .arg(root)
        .arg(outside_socket_dir.unwrap_or(Path::new("")))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C (SIGINT to the foreground group) or a signal to
        // the test process's group does not reach it.
        .process_group(0)
        .kill_on_drop(false);
    let child = cmd
        .spawn()
        .map_err(io_err("could not spawn the cleanup watchdog (/bin/sh)"))?;
    info!(owner_pid, dir = %root.display(), watchdog_pid = ?child.id(), "temporary PostgreSQL cluster will be removed when its owner exits");
    Ok(child)
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn percent_encoding_and_url() {
        assert_eq!(percent_encode(b"/tmp/a b"), "%2Ftmp%2Fa%20b");
        let pg = EmbeddedPostgres {
            bindir: PathBuf::from("/x"),
            root: PathBuf::from("/r"),
            data_dir: PathBuf::from("/r/pgdata"),
            socket_dir: PathBuf::from("/r/run"),
            port: 5432,
            run_as: None,
            watchdog: None,
            started: false,
        };
        assert_eq!(
            pg.url("tradewatch"),
            "postgres://tradewatch@localhost/tradewatch?host=%2Fr%2Frun&port=5432"
        );
    }

    #[test]
    fn long_roots_get_a_short_socket_dir() {
        let short = Path::new("/tmp/x");
        assert_eq!(
            choose_socket_dir(short, &short.join("pgdata")),
            short.join("run")
        );
        let long = PathBuf::from(format!("/tmp/{}", "a".repeat(120)));
        let dir = choose_socket_dir(&long, &long.join("pgdata"));
        assert!(dir.to_string_lossy().starts_with("/tmp/tw-"));
        assert_eq!(dir, choose_socket_dir(&long, &long.join("pgdata")));
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("15"), Some((15, 0)));
        assert_eq!(parse_version("9.6.24"), Some((9, 6)));
        assert_eq!(parse_version("abc"), None);
    }
}
