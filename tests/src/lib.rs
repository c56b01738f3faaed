//! Black-box test harness for the `ferrogrid` binary.
//!
//! [`Server`] starts the real, already built binary (`FERROGRID_BIN`, else
//! `<workspace>/target/debug/ferrogrid`; nothing is built here) on a free loopback port with its
//! own temporary data directory, waits for `GET /health` == 200, reads the admin token and talks
//! to it only over HTTP ([`Client`]). It can SIGKILL, SIGTERM and restart the process on the same
//! data directory and port. The process output goes to a file that is printed when a test fails.

mod client;
pub mod peers;
mod soap;
pub mod webdriver;

pub use client::{encode, metric_value, raw_request, truncate, Client, Resp};
pub use soap::{soap_content_type, soap_field, soap_outcome};

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use tempfile::TempDir;

/// How long a start may take until `/health` answers 200.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`Server::stop`] waits for the process to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The workspace root (`CARGO_MANIFEST_DIR/..`, or `FERROGRID_WORKSPACE`).
pub fn workspace_root() -> PathBuf {
    if let Ok(dir) = std::env::var("FERROGRID_WORKSPACE") {
        return PathBuf::from(dir);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The binary under test: `FERROGRID_BIN`, else `<workspace>/target/debug/ferrogrid`.
pub fn binary_path() -> PathBuf {
    match std::env::var_os("FERROGRID_BIN") {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join("target/debug/ferrogrid"),
    }
}

/// `<workspace>/samples/<name>`.
pub fn sample(name: &str) -> PathBuf {
    workspace_root().join("samples").join(name)
}

/// A `Command` for the binary under test (for `ferrogrid check ...`).
pub fn ferrogrid_command() -> Command {
    Command::new(binary_path())
}

/// A config folder written into a temporary directory: `config.yml` plus extra files.
pub struct ConfigDir {
    dir: TempDir,
}

impl ConfigDir {
    /// Writes `config.yml` with `yaml` and each `(name, content)` of `files` next to it.
    pub fn new(yaml: &str, files: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("ferrogrid-config-").tempdir()?;
        fs::write(dir.path().join("config.yml"), yaml)?;
        for (name, content) in files {
            let path = dir.path().join(name);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(path, content)?;
        }
        Ok(Self { dir })
    }

    /// The folder (what `ferrogrid run` / `ferrogrid check` get).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A copy of `samples/<name>` (its top-level files) that a test may change.
    pub fn sample_copy(name: &str) -> ConfigDir {
        let dir = sample(name);
        let read = |file: &str| {
            fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("reading samples/{name}/{file}: {e}"))
        };
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("samples/{name}: {e}"))
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n != "config.yml")
            .collect();
        let files: Vec<(String, String)> = names.iter().map(|n| (n.clone(), read(n))).collect();
        let files: Vec<(&str, &str)> = files.iter().map(|(n, c)| (n.as_str(), c.as_str())).collect();
        ConfigDir::new(&read("config.yml"), &files).unwrap_or_else(|e| panic!("copying samples/{name}: {e:#}"))
    }

    /// Reads one file of the folder.
    pub fn read(&self, name: &str) -> String {
        let path = self.dir.path().join(name);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    /// Overwrites (or adds) one file of the folder.
    pub fn write(&self, name: &str, content: &str) {
        let path = self.dir.path().join(name);
        if let Err(e) = fs::write(&path, content) {
            panic!("cannot write {}: {e}", path.display());
        }
    }
}

/// The files of a configuration folder (its top level): name -> contents.
pub fn folder_files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        if entry.path().is_file() {
            let name = entry.file_name().into_string().unwrap_or_else(|n| panic!("not UTF-8: {n:?}"));
            let bytes = fs::read(entry.path()).unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
            out.insert(name, bytes);
        }
    }
    out
}

/// A tar.gz of `files`, under the top folder `top` when given (what `PUT /admin/api/config`
/// takes).
pub fn tar_gz(files: &std::collections::BTreeMap<String, Vec<u8>>, top: Option<&str>) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        let path = match top {
            Some(top) => format!("{top}/{name}"),
            None => name.clone(),
        };
        if let Err(e) = builder.append_data(&mut header, path, bytes.as_slice()) {
            panic!("tar entry {name}: {e}");
        }
    }
    match builder.into_inner().and_then(|gz| gz.finish()) {
        Ok(bytes) => bytes,
        Err(e) => panic!("tar.gz: {e}"),
    }
}

/// A running (or stopped) `ferrogrid run` process and everything it owns for one test.
pub struct Server {
    bin: PathBuf,
    config: PathBuf,
    config_dir: Option<ConfigDir>,
    data_dir: PathBuf,
    log_path: PathBuf,
    port: u16,
    child: Option<Child>,
    token: String,
    starts: u32,
    client: Client,
    /// Extra environment variables of the process (e.g. `FAILPOINTS`).
    env: Vec<(String, String)>,
    /// Start as `ferrogrid run` without a folder: the data directory's active configuration.
    active_config: bool,
    /// Holds the data dir and the log; removed after `drop` has killed the child.
    _tmp: TempDir,
}

impl Server {
    /// Starts `ferrogrid run <cfg>`; a relative `cfg` (e.g. `samples/library`) is taken from the
    /// workspace root. Panics (with the server output) when it does not become ready.
    pub fn start(cfg: impl AsRef<Path>) -> Server {
        Self::start_with_binary(binary_path(), cfg)
    }

    /// Like [`Server::start`] with an explicit binary (the benchmark uses the release build).
    pub fn start_with_binary(bin: impl AsRef<Path>, cfg: impl AsRef<Path>) -> Server {
        let cfg = cfg.as_ref();
        let cfg = if cfg.is_relative() { workspace_root().join(cfg) } else { cfg.to_path_buf() };
        match Self::try_start(bin.as_ref(), &cfg, None) {
            Ok(s) => s,
            Err(e) => panic!("{e:#}"),
        }
    }

    /// Writes a config folder (`config.yml` = `yaml`, plus `files`) and starts it.
    pub fn start_with_config(yaml: &str, files: &[(&str, &str)]) -> Server {
        Self::start_with_config_env(yaml, files, &[])
    }

    /// Like [`Server::start_with_config`], with extra environment variables for the process
    /// (kept for its restarts), e.g. `FAILPOINTS` for the fault-injection tests.
    pub fn start_with_config_env(yaml: &str, files: &[(&str, &str)], env: &[(&str, &str)]) -> Server {
        let dir = ConfigDir::new(yaml, files).unwrap_or_else(|e| panic!("config dir: {e:#}"));
        let cfg = dir.path().to_path_buf();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        match Self::try_start_env(&binary_path(), &cfg, Some(dir), env) {
            Ok(s) => s,
            Err(e) => panic!("{e:#}"),
        }
    }

    /// Starts the process; retries with another port when the chosen one was taken meanwhile.
    pub fn try_start(bin: &Path, cfg: &Path, config_dir: Option<ConfigDir>) -> anyhow::Result<Server> {
        Self::try_start_env(bin, cfg, config_dir, Vec::new())
    }

    fn try_start_env(
        bin: &Path,
        cfg: &Path,
        config_dir: Option<ConfigDir>,
        env: Vec<(String, String)>,
    ) -> anyhow::Result<Server> {
        if !bin.exists() {
            bail!(
                "ferrogrid binary not found at {} (build it with `cargo build -p ferrogrid-engine` \
                 or set FERROGRID_BIN)",
                bin.display()
            );
        }
        let tmp = tempfile::Builder::new().prefix("ferrogrid-test-").tempdir()?;
        let data_dir = tmp.path().join("data");
        let log_path = tmp.path().join("ferrogrid.log");
        let mut server = Server {
            bin: bin.to_path_buf(),
            config: cfg.to_path_buf(),
            config_dir,
            data_dir,
            log_path,
            port: 0,
            child: None,
            token: String::new(),
            starts: 0,
            client: Client::new("http://127.0.0.1:1", None),
            env,
            active_config: false,
            _tmp: tmp,
        };
        let mut last_err = None;
        for _ in 0..5 {
            server.port = free_port()?;
            match server.spawn_and_wait() {
                Ok(()) => return Ok(server),
                Err(e) => {
                    let log = server.output();
                    let port_taken = log.contains("in use") || log.contains("AddrInUse");
                    server.kill();
                    if !port_taken {
                        return Err(
                            e.context(format!("ferrogrid did not start; its output:\n{}", truncate(&log, 20_000)))
                        );
                    }
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("no free port")))
    }

    fn spawn_and_wait(&mut self) -> anyhow::Result<()> {
        self.starts += 1;
        let mut log = OpenOptions::new().create(true).append(true).open(&self.log_path)?;
        let listen = format!("127.0.0.1:{}", self.port);
        let folder: Vec<&Path> = if self.active_config { Vec::new() } else { vec![self.config.as_path()] };
        writeln!(
            log,
            "===== start #{}: {} run {} --data-dir {} --listen {listen} =====",
            self.starts,
            self.bin.display(),
            folder.first().map_or_else(|| "(active configuration)".to_string(), |f| f.display().to_string()),
            self.data_dir.display()
        )?;
        let child = Command::new(&self.bin)
            .arg("run")
            .args(&folder)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(&listen)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("spawn {}", self.bin.display()))?;
        self.child = Some(child);
        self.wait_ready()?;
        let token_path = self.data_dir.join("admin.token");
        let token = fs::read_to_string(&token_path)
            .with_context(|| format!("read {} after /health was 200", token_path.display()))?;
        self.token = token.trim_end_matches(['\n', '\r']).to_string();
        if self.token.is_empty() {
            bail!("{} is empty", token_path.display());
        }
        self.client = Client::new(&self.base_url(), Some(&self.token));
        Ok(())
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let probe = Client::with_timeout(&self.base_url(), None, Duration::from_secs(2));
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    bail!("ferrogrid exited with {status} before /health was 200");
                }
            }
            if let Ok(r) = probe.try_get("/health") {
                if r.status == 200 {
                    return Ok(());
                }
            }
            if started.elapsed() > START_TIMEOUT {
                bail!("GET /health was not 200 within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Set an environment variable of the process from its next (re)start on.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The listening port (kept across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin token read from `<data-dir>/admin.token`.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The data directory (kept across restarts).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The config folder written by [`Server::start_with_config`], if any.
    pub fn config_dir(&self) -> Option<&ConfigDir> {
        self.config_dir.as_ref()
    }

    /// How many times the process was started.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// Everything the process wrote to stdout/stderr so far (all starts).
    pub fn output(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// A new authorized client with its own connection pool.
    pub fn client(&self) -> Client {
        Client::new(&self.base_url(), Some(&self.token))
    }

    /// A client that sends no `Authorization` header.
    pub fn unauthorized(&self) -> Client {
        Client::new(&self.base_url(), None)
    }

    /// A client that sends `Authorization: Bearer <token>` with the given token.
    pub fn with_token(&self, token: &str) -> Client {
        Client::new(&self.base_url(), Some(token))
    }

    /// Authorized `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.client.post_json(path, body)
    }

    /// Authorized `POST path` with raw bytes and a content type.
    pub fn post_raw(&self, path: &str, content_type: &str, bytes: &[u8]) -> Resp {
        self.client.post_raw(path, content_type, bytes)
    }

    /// Authorized `POST path` of a SOAP envelope, with the content type of its version.
    pub fn post_soap(&self, path: &str, xml: &str) -> Resp {
        self.client.post_raw(path, soap_content_type(xml), xml.as_bytes())
    }

    /// Authorized `POST path` without a body.
    pub fn post_empty(&self, path: &str) -> Resp {
        self.client.post_empty(path)
    }

    /// Authorized `GET path`.
    pub fn get(&self, path: &str) -> Resp {
        self.client.get(path)
    }

    /// Authorized `DELETE path`.
    pub fn delete(&self, path: &str) -> Resp {
        self.client.delete(path)
    }

    /// Authorized `GET /data/{type}?{query}`: the items of the 200 JSON array.
    pub fn data(&self, type_name: &str, query: &str) -> Vec<Value> {
        self.client.data(type_name, query)
    }

    /// Every repair-queue entry matching `query` (all pages).
    pub fn repair_entries(&self, query: &str) -> Vec<Value> {
        self.client.repair_entries(query)
    }

    /// `POST /graphql` (see [`Client::graphql`]): the whole answer, `data` and `errors`.
    pub fn graphql(&self, query: &str, variables: Value) -> Value {
        self.client.graphql(query, variables, false)
    }

    /// `POST /graphql` with `schema: admin`.
    pub fn graphql_admin(&self, query: &str, variables: Value) -> Value {
        self.client.graphql(query, variables, true)
    }

    /// `POST /http?sync=true` with `obj`; asserts 200 and returns the JSON answer.
    pub fn post_sync(&self, obj: &Value) -> Value {
        let r = self.post_json("/http?sync=true", obj);
        r.assert_status(200, &format!("POST /http?sync=true {obj}"));
        r.json()
    }

    /// The process id of the running child.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the child process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILL and reap the process (no-op when it is not running).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// From the next restart on, run without a configuration folder (`ferrogrid run` runs the
    /// data directory's active configuration), or with the folder again.
    pub fn run_active_config(&mut self, active: bool) {
        self.active_config = active;
    }

    /// Apply the configuration folder `dir` (its top-level files) as a tar.gz upload.
    pub fn apply_folder(&self, dir: &Path) -> Resp {
        self.put_raw("/admin/api/config", "application/gzip", &tar_gz(&folder_files(dir), None))
    }

    /// `PUT path` with a content type and raw bytes.
    pub fn put_raw(&self, path: &str, content_type: &str, bytes: &[u8]) -> Resp {
        self.client
            .try_put_raw(path, content_type, bytes)
            .unwrap_or_else(|e| panic!("PUT {path} ({content_type}): transport error: {e}"))
    }

    /// Starts the process again on the same data directory and port; panics when it does not
    /// become ready.
    pub fn restart(&mut self) {
        if let Err(e) = self.try_restart() {
            panic!("{e:#}");
        }
    }

    /// [`Server::restart`] returning the failure (with the server output) instead of panicking.
    pub fn try_restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn_and_wait().map_err(|e| {
            let out = self.output();
            self.kill();
            e.context(format!(
                "ferrogrid restart #{} failed; its output:\n{}",
                self.starts,
                truncate(&tail(&out, 20_000), 20_000)
            ))
        })
    }

    /// SIGTERM, wait for the exit (panics after [`STOP_TIMEOUT`]) and return the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let Some(mut child) = self.child.take() else {
            panic!("stop(): ferrogrid is not running");
        };
        let pid = child.id() as libc::pid_t;
        // SAFETY: plain kill(2) on the pid of our own, not yet reaped child.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
        let started = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if started.elapsed() > STOP_TIMEOUT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("ferrogrid did not exit within {STOP_TIMEOUT:?} after SIGTERM");
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("waiting for ferrogrid: {e}"),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "----- ferrogrid output ({}) -----\n{}\n----- end of ferrogrid output -----",
                self.log_path.display(),
                tail(&self.output(), 30_000)
            );
        }
    }
}

/// The last `max` bytes of a text.
fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &s[start..])
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Polls `f` every 50 ms until it returns `Some`, panicking with `what` after `timeout`.
pub fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if started.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `GET /data/{type}?{query}` returns at least one item; returns the items.
pub fn wait_for_data(server: &Server, type_name: &str, query: &str) -> Vec<Value> {
    wait_until(Duration::from_secs(30), &format!("GET /data/{type_name}?{query} to return an object"), || {
        let items = server.data(type_name, query);
        (!items.is_empty()).then_some(items)
    })
}
