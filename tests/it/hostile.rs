//! A hostile server for attack tests, on a free port: it records each request's line and
//! headers and answers what the test says — a whole response, a stream in parts the test
//! releases one by one, or a 50 MB body (chunked or with its length) — counting the body bytes
//! it managed to write and reporting each connection it stopped writing to. One request per
//! connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The body an [`Answer::Endless`] sends.
pub const BODY: u64 = 50 * 1024 * 1024;
/// Bytes a client that stops at its limit (a few MiB at most) may still have let through: the
/// limit plus both sockets' kernel buffers. Far below [`BODY`].
pub const BOUNDED: u64 = 24 * 1024 * 1024;

/// A request as the server saw it: the request line and headers (lower-case names).
#[derive(Clone, Debug)]
pub struct Seen {
    pub line: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The credential the request carried (after `Bearer `, or `x-api-key`).
    pub fn credential(&self) -> String {
        let v = self
            .header("authorization")
            .or(self.header("x-api-key"))
            .unwrap_or("");
        v.strip_prefix("Bearer ").unwrap_or(v).to_owned()
    }
}

/// What the server writes back.
pub enum Answer {
    /// These bytes (a whole response), then the connection closes.
    Whole(Vec<u8>),
    /// Each part after the first waits for a message on the receiver.
    Parts(Vec<Vec<u8>>, tokio::sync::mpsc::Receiver<()>),
    /// A 200 JSON answer of [`BODY`] bytes, chunked or with its `Content-Length`.
    Endless { chunked: bool },
}

/// Decides the answer to a request.
pub type Respond = Box<dyn Fn(&Seen) -> Answer + Send + Sync>;

/// A running hostile server.
pub struct Hostile {
    pub addr: std::net::SocketAddr,
    pub url: String,
    /// Every request, in arrival order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Body bytes of [`Answer::Endless`] written over all connections.
    pub written: Arc<AtomicU64>,
    /// One message per connection the server stopped writing to.
    closed: tokio::sync::mpsc::UnboundedReceiver<()>,
}

/// Starts a server answering every request with `respond`.
pub async fn hostile(respond: Respond) -> Hostile {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let written = Arc::new(AtomicU64::new(0));
    let (done, closed) = tokio::sync::mpsc::unbounded_channel();
    let (record, count, respond) = (seen.clone(), written.clone(), Arc::new(respond));
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (record, count, respond, done) =
                (record.clone(), count.clone(), respond.clone(), done.clone());
            tokio::spawn(async move {
                serve(sock, &record, &count, &respond).await;
                let _ = done.send(());
            });
        }
    });
    Hostile {
        addr,
        url: format!("http://{addr}"),
        seen,
        written,
        closed,
    }
}

async fn serve(
    mut sock: TcpStream,
    record: &Mutex<Vec<Seen>>,
    count: &AtomicU64,
    respond: &Respond,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let seen = Seen { line, headers };
    let length: usize = seen
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut have = buf.len() - head_end - 4;
    while have < length {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => have += n,
        }
    }
    record.lock().unwrap().push(seen.clone());
    match respond(&seen) {
        Answer::Whole(bytes) => {
            let _ = sock.write_all(&bytes).await;
        }
        Answer::Parts(parts, mut go) => {
            for (i, part) in parts.iter().enumerate() {
                if i > 0 && go.recv().await.is_none() {
                    return;
                }
                let _ = sock.write_all(part).await;
                let _ = sock.flush().await;
            }
        }
        Answer::Endless { chunked } => endless(&mut sock, chunked, count).await,
    }
    let _ = sock.shutdown().await;
}

async fn endless(sock: &mut TcpStream, chunked: bool, count: &AtomicU64) {
    let framing = if chunked {
        "transfer-encoding: chunked".to_owned()
    } else {
        format!("content-length: {BODY}")
    };
    let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{framing}\r\n\r\n");
    if sock.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let piece = vec![b' '; 64 * 1024];
    let mut sent = 0;
    while sent < BODY {
        let ok = if chunked {
            let mut c = format!("{:x}\r\n", piece.len()).into_bytes();
            c.extend_from_slice(&piece);
            c.extend_from_slice(b"\r\n");
            sock.write_all(&c).await.is_ok()
        } else {
            sock.write_all(&piece).await.is_ok()
        };
        if !ok {
            return;
        }
        sent += piece.len() as u64;
        count.fetch_add(piece.len() as u64, Ordering::Relaxed);
    }
    if chunked {
        let _ = sock.write_all(b"0\r\n\r\n").await;
    }
}

impl Hostile {
    /// Waits until the server stopped writing to `n` connections.
    pub async fn wait_closed(&mut self, n: usize, what: &str) {
        for _ in 0..n {
            tokio::time::timeout(Duration::from_secs(20), self.closed.recv())
                .await
                .unwrap_or_else(|_| panic!("{what}: the connection is still being read"));
        }
    }

    /// Waits until the server stopped writing to `n` connections, then checks it wrote far less
    /// than [`BODY`].
    pub async fn assert_cut_short(&mut self, n: usize, what: &str) {
        self.wait_closed(n, what).await;
        let written = self.written.load(Ordering::Relaxed);
        eprintln!("{what}: the server wrote {written} body bytes before the connection closed");
        assert!(
            written < BOUNDED,
            "{what}: the server wrote {written} bytes before the reader stopped"
        );
    }
}
