//! A TCP proxy in front of the test server whose connections can be reset (RST) on demand: the
//! socket breaks under a client the way a failed network or a crashed host breaks it, which a
//! server restart or `pg_terminate_backend` (both say why first) does not.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::config::Host;

use super::TestDatabase;

/// How often a forwarding thread looks whether it should stop.
const POLL: Duration = Duration::from_millis(20);

pub struct ResettingProxy {
    /// A keyword/value connection string to the database through the proxy.
    pub url: String,
    cut: Arc<AtomicBool>,
    forwarders: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl ResettingProxy {
    /// Starts forwarding a free loopback port to `db`'s server.
    pub fn start(db: &TestDatabase) -> ResettingProxy {
        let config: postgres::Config = db.url.parse().expect("the test URL parses");
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let server = match config.get_hosts().first() {
            Some(Host::Tcp(host)) => Upstream::Tcp(format!("{host}:{port}")),
            Some(Host::Unix(dir)) => Upstream::Unix(dir.join(format!(".s.PGSQL.{port}"))),
            None => Upstream::Tcp(format!("localhost:{port}")),
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy_port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let forwarders = Arc::new(Mutex::new(Vec::new()));
        {
            let cut = cut.clone();
            let forwarders = forwarders.clone();
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    let Ok(client) = client else { return };
                    let handles = forward(client, &server, &cut);
                    forwarders.lock().unwrap().extend(handles);
                }
            });
        }
        let mut url = format!("host=127.0.0.1 port={proxy_port}");
        let user = config.get_user().unwrap_or("postgres");
        url.push_str(&format!(" user={}", quote(user)));
        if let Some(password) = config.get_password() {
            url.push_str(&format!(
                " password={}",
                quote(&String::from_utf8_lossy(password))
            ));
        }
        url.push_str(&format!(" dbname={}", quote(&db.name)));
        ResettingProxy {
            url,
            cut,
            forwarders,
        }
    }

    /// Resets every connection made through the proxy so far: the clients get "connection reset
    /// by peer" on their next read or write, the server sees the sessions end.
    pub fn reset_all(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for handle in self.forwarders.lock().unwrap().drain(..) {
            handle.join().unwrap();
        }
        self.cut.store(false, Ordering::SeqCst);
    }
}

enum Upstream {
    Tcp(String),
    Unix(std::path::PathBuf),
}

/// A connection to the server, whichever kind.
trait Stream: Read + Write + Send {
    fn try_clone_boxed(&self) -> Box<dyn Stream>;
    fn poll_reads(&self);
}

impl Stream for TcpStream {
    fn try_clone_boxed(&self) -> Box<dyn Stream> {
        Box::new(self.try_clone().unwrap())
    }
    fn poll_reads(&self) {
        self.set_read_timeout(Some(POLL)).unwrap();
    }
}

impl Stream for UnixStream {
    fn try_clone_boxed(&self) -> Box<dyn Stream> {
        Box::new(self.try_clone().unwrap())
    }
    fn poll_reads(&self) {
        self.set_read_timeout(Some(POLL)).unwrap();
    }
}

/// Two threads copying bytes each way until the proxy is cut; then both drop their ends, and the
/// client's socket, with a zero linger, closes with a reset.
fn forward(client: TcpStream, server: &Upstream, cut: &Arc<AtomicBool>) -> Vec<JoinHandle<()>> {
    set_zero_linger(&client);
    let upstream: Box<dyn Stream> = match server {
        Upstream::Tcp(address) => Box::new(TcpStream::connect(address).unwrap()),
        Upstream::Unix(path) => Box::new(UnixStream::connect(path).unwrap()),
    };
    upstream.poll_reads();
    client.poll_reads();
    let to_server = (client.try_clone_boxed(), upstream.try_clone_boxed());
    let to_client = (upstream, Box::new(client) as Box<dyn Stream>);
    [to_server, to_client]
        .into_iter()
        .map(|(from, to)| {
            let cut = cut.clone();
            std::thread::spawn(move || copy_until_cut(from, to, &cut))
        })
        .collect()
}

fn copy_until_cut(mut from: Box<dyn Stream>, mut to: Box<dyn Stream>, cut: &AtomicBool) {
    let mut buffer = [0u8; 64 * 1024];
    while !cut.load(Ordering::SeqCst) {
        match from.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => {
                if to.write_all(&buffer[..n]).is_err() {
                    return;
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    }
}

/// SO_LINGER with a zero timeout: closing the socket sends a reset instead of an orderly end.
fn set_zero_linger(socket: &TcpStream) {
    let linger = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a correctly sized option value.
    let result = unsafe {
        nix::libc::setsockopt(
            socket.as_raw_fd(),
            nix::libc::SOL_SOCKET,
            nix::libc::SO_LINGER,
            &linger as *const _ as *const nix::libc::c_void,
            std::mem::size_of::<nix::libc::linger>() as nix::libc::socklen_t,
        )
    };
    assert_eq!(result, 0, "setting SO_LINGER");
}

/// A value for a keyword/value connection string.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}
