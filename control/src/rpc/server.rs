//! The control socket: a unix listener at `<run_dir>/control.sock`. Each
//! connection opens with a `Hello` that says what it is: the replication
//! channel (handed to a thread) or a request channel (a tokio task).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proconsul_shared::ipc::frame::FrameDecoder;
use proconsul_shared::ipc::messages::Hello;
use tokio::io::AsyncReadExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

use super::attach::{serve_attach, ReplicationSource};
use super::dispatch::ControlBackend;
use super::hub::AttachHub;
use super::requests::serve_requests;
use crate::agent::shutdown::Shutdown;

/// How long a new connection has to send its hello.
pub const HELLO_TIMEOUT_MS: u64 = 5_000;
/// Most bytes a connection may send before its hello is complete.
pub const HELLO_BYTES_MAX: usize = 64 * 1024;
/// Most connections open at once (a data plane opens one per core, plus
/// the replication channel).
pub const CONNECTIONS_MAX: usize = 256;
/// Longest socket path a `sockaddr_un` holds (without the final NUL).
pub const SOCKET_PATH_BYTES_MAX: usize = 107;

/// The bound control socket.
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
}

/// Reads the first frame of a connection. Returns it with the decoder,
/// which may already hold the frames that followed it.
pub async fn read_hello(stream: &mut UnixStream) -> Result<(Hello, FrameDecoder), String> {
    let read = async {
        let mut decoder = FrameDecoder::default();
        let mut buf = [0u8; 4096];
        let mut received = 0usize;
        loop {
            match decoder.next_message::<Hello>() {
                Ok(Some(hello)) => return Ok((hello, decoder)),
                Ok(None) => {}
                Err(e) => return Err(format!("bad hello: {e}")),
            }
            if received > HELLO_BYTES_MAX {
                return Err(format!("no hello within {HELLO_BYTES_MAX} bytes"));
            }
            let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed before its hello".into());
            }
            received += n;
            decoder.push(&buf[..n]);
        }
    };
    match tokio::time::timeout(Duration::from_millis(HELLO_TIMEOUT_MS), read).await {
        Ok(result) => result,
        Err(_) => Err(format!("no hello within {HELLO_TIMEOUT_MS} ms")),
    }
}

impl ControlServer {
    /// Binds the socket, replacing a stale socket file. Only the agent's
    /// user may connect (the socket is 0600).
    pub fn bind(path: &Path) -> io::Result<ControlServer> {
        let len = path.as_os_str().len();
        if len > SOCKET_PATH_BYTES_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "control socket path {} is {len} bytes, over the {SOCKET_PATH_BYTES_MAX}-byte limit of unix sockets: use a shorter data_dir",
                    path.display()
                ),
            ));
        }
        match std::fs::remove_file(path) {
            Ok(()) => tracing::debug!(target: "agent.rpc", "removed stale control socket {}", path.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(ControlServer {
            listener,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts connections until `shutdown`, then removes the socket file.
    pub async fn serve<C>(self, context: Arc<C>, hub: Arc<AttachHub>, shutdown: Shutdown)
    where
        C: ControlBackend + ReplicationSource,
    {
        let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
        loop {
            let accepted = tokio::select! {
                _ = shutdown.wait() => break,
                accepted = self.listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(target: "agent.rpc", "control socket accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::warn!(
                    target: "agent.rpc",
                    "refusing a control connection: {CONNECTIONS_MAX} already open"
                );
                continue;
            };
            let context = context.clone();
            let hub = hub.clone();
            tokio::spawn(async move {
                handle_connection(stream, context, hub).await;
                drop(slot);
            });
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn handle_connection<C>(mut stream: UnixStream, context: Arc<C>, hub: Arc<AttachHub>)
where
    C: ControlBackend + ReplicationSource,
{
    let (hello, decoder) = match read_hello(&mut stream).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(target: "agent.rpc", "dropping control connection: {e}");
            return;
        }
    };
    match hello {
        Hello::Requests { core } => serve_requests(stream, decoder, context, core).await,
        Hello::Attach {
            pid,
            launch_fingerprint,
        } => {
            let std_stream = match stream.into_std().and_then(|s| s.set_nonblocking(false).map(|_| s)) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(target: "agent.rpc", "cannot serve the replication channel: {e}");
                    return;
                }
            };
            // The channel blocks on its socket: give it a thread of its own,
            // and keep this task (and its connection slot) until it ends.
            let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
            let spawned = std::thread::Builder::new()
                .name("proconsul-attach".into())
                .spawn(move || {
                    serve_attach(std_stream, decoder, pid, launch_fingerprint, context, hub);
                    let _ = done_tx.send(());
                });
            match spawned {
                Ok(_) => {
                    let _ = done_rx.await;
                }
                Err(e) => tracing::warn!(target: "agent.rpc", "cannot start the replication thread: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proconsul_shared::ipc::frame;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn hello_and_following_bytes() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let mut bytes = frame::encode(&Hello::Requests { core: 3 }).unwrap();
        bytes.extend(frame::encode(&7u64).unwrap());
        b.write_all(&bytes).await.unwrap();
        let (hello, mut rest) = read_hello(&mut a).await.unwrap();
        assert_eq!(hello, Hello::Requests { core: 3 });
        assert_eq!(rest.next_message::<u64>().unwrap(), Some(7));
    }

    #[tokio::test]
    async fn bad_or_missing_hello() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        b.write_all(&[1, 0, 0, 0, 9]).await.unwrap();
        assert!(read_hello(&mut a).await.err().unwrap().starts_with("bad hello"));

        let (mut a, b) = UnixStream::pair().unwrap();
        drop(b);
        assert_eq!(read_hello(&mut a).await.err().unwrap(), "closed before its hello");

        let (mut a, mut b) = UnixStream::pair().unwrap();
        let mut big = ((HELLO_BYTES_MAX * 2) as u32).to_le_bytes().to_vec();
        big.extend(vec![0u8; HELLO_BYTES_MAX + 8192]);
        tokio::spawn(async move {
            let _ = b.write_all(&big).await;
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        assert!(read_hello(&mut a).await.err().unwrap().starts_with("no hello within"));
    }

    #[tokio::test]
    async fn long_socket_paths_are_refused_and_stale_files_replaced() {
        let long = PathBuf::from(format!("/tmp/{}/control.sock", "x".repeat(120)));
        let e = ControlServer::bind(&long).err().unwrap();
        assert!(e.to_string().contains("over the 107-byte limit"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        std::fs::write(&path, b"stale").unwrap();
        let server = ControlServer::bind(&path).unwrap();
        let mode = std::fs::metadata(server.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        UnixStream::connect(&path).await.unwrap();
    }
}
