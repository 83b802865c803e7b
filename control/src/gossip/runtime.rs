//! The edge of the gossip layer: the tokio task owning the UDP socket, the
//! clock and the [`GossipCore`], and the TCP push-pull listener. Everything
//! protocol-related happens in the core; this file only moves bytes, time
//! and commands.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{broadcast, mpsc, oneshot, watch, Semaphore};

use super::core::{GossipCore, WireMember};
use super::member::{Member, MemberEvent};
use super::push_pull::{self, ExchangeLimits};
use crate::raft::transport::PeerFaults;

/// Bytes of the UDP receive buffer: any datagram fits, the core then
/// refuses the ones over `packet_bytes_max`.
const RECEIVE_BUFFER_BYTES: usize = 65_536;

/// Requests from the [`super::Gossip`] handle and the push-pull listener.
pub(crate) enum Command {
    /// Our full state for a push-pull exchange.
    ExportState(oneshot::Sender<Vec<WireMember>>),
    /// Merge a peer's push-pull state.
    ApplyState(Vec<WireMember>, oneshot::Sender<Result<usize, String>>),
    /// Announce a graceful leave.
    Leave(oneshot::Sender<Result<(), String>>),
    /// Mark a failed member as left.
    ForceLeave {
        /// Node name.
        name: String,
        /// Forget it right away.
        prune: bool,
    },
    /// Gossip new tags.
    SetTags(
        std::collections::BTreeMap<String, String>,
        oneshot::Sender<Result<(), String>>,
    ),
}

/// Where the task publishes what the handle reads.
pub(crate) struct Publish {
    pub members: watch::Sender<Arc<Vec<Member>>>,
    pub events: broadcast::Sender<MemberEvent>,
}

/// Runs the gossip core until `shutdown` turns true or the handle is gone.
/// While `faults` isolates the agent, packets received are dropped unread
/// and packets produced are dropped unsent (timers still run, so peers
/// turn suspect, then failed, as in a real partition).
pub(crate) async fn run_core(
    mut core: GossipCore,
    udp: UdpSocket,
    mut commands: mpsc::Receiver<Command>,
    publish: Publish,
    mut shutdown: watch::Receiver<bool>,
    clock: Instant,
    faults: PeerFaults,
) {
    let mut buffer = vec![0u8; RECEIVE_BUFFER_BYTES];
    let now_ms = |clock: Instant| u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    publish_changes(&mut core, &publish);
    loop {
        let sleep_ms = core
            .next_timer_ms()
            .map_or(1_000, |due| due.saturating_sub(now_ms(clock)))
            .min(1_000);
        tokio::select! {
            received = udp.recv_from(&mut buffer) => match received {
                Ok(_) if faults.is_isolated() => {}
                Ok((bytes, from)) => {
                    if let Err(error) = core.handle_packet(now_ms(clock), &buffer[..bytes]) {
                        tracing::debug!(%from, %error, "gossip: packet refused");
                    }
                }
                Err(error) => tracing::debug!(%error, "gossip: udp receive"),
            },
            command = commands.recv() => match command {
                Some(command) => handle_command(&mut core, now_ms(clock), command),
                None => break,
            },
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep(Duration::from_millis(sleep_ms)) => {}
        }
        core.advance(now_ms(clock));
        let isolated = faults.is_isolated();
        for (to, packet) in core.drain_outbound() {
            if isolated {
                continue;
            }
            if let Err(error) = udp.try_send_to(&packet, to) {
                tracing::debug!(%to, %error, "gossip: udp send");
            }
        }
        publish_changes(&mut core, &publish);
    }
}

fn handle_command(core: &mut GossipCore, now_ms: u64, command: Command) {
    match command {
        Command::ExportState(reply) => {
            let _ = reply.send(core.export_state());
        }
        Command::ApplyState(members, reply) => {
            let _ = reply.send(core.apply_remote_state(now_ms, members).map_err(|e| e.to_string()));
        }
        Command::Leave(reply) => {
            let _ = reply.send(core.leave(now_ms).map_err(|e| e.to_string()));
        }
        Command::ForceLeave { name, prune } => {
            if let Err(error) = core.force_leave(now_ms, &name, prune) {
                tracing::warn!(node = %name, %error, "gossip: force-leave");
            }
        }
        Command::SetTags(tags, reply) => {
            let _ = reply.send(core.set_tags(now_ms, tags).map_err(|e| e.to_string()));
        }
    }
}

fn publish_changes(core: &mut GossipCore, publish: &Publish) {
    let events = core.drain_events();
    if events.is_empty() {
        return;
    }
    publish.members.send_replace(Arc::new(core.members()));
    for event in events {
        log_event(&event);
        let _ = publish.events.send(event);
    }
}

fn log_event(event: &MemberEvent) {
    match event {
        MemberEvent::Joined(m) => tracing::info!(member = %m.name, addr = %m.addr, "serf: EventMemberJoin"),
        MemberEvent::Updated(m) => {
            tracing::info!(member = %m.name, status = m.status.as_str(), "serf: EventMemberUpdate")
        }
        MemberEvent::Failed(m) => tracing::info!(member = %m.name, "serf: EventMemberFailed"),
        MemberEvent::Left(m) => tracing::info!(member = %m.name, "serf: EventMemberLeave"),
        MemberEvent::Reaped(name) => tracing::info!(member = %name, "serf: EventMemberReap"),
    }
}

/// Accepts push-pull connections, at most `connections_max` at once;
/// while `faults` isolates the agent, each is closed unanswered.
pub(crate) async fn serve_push_pull(
    listener: TcpListener,
    commands: mpsc::Sender<Command>,
    limits: ExchangeLimits,
    connections_max: usize,
    mut shutdown: watch::Receiver<bool>,
    faults: PeerFaults,
) {
    let slots = Arc::new(Semaphore::new(connections_max));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        let (stream, from) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "gossip: push-pull accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if faults.is_isolated() {
            drop(stream);
            continue;
        }
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(%from, connections_max, "gossip: too many push-pull connections, closing");
            drop(stream);
            continue;
        };
        let commands = commands.clone();
        tokio::spawn(async move {
            if let Err(error) = answer_push_pull(stream, &commands, limits).await {
                tracing::debug!(%from, %error, "gossip: push-pull");
            }
            drop(slot);
        });
    }
}

async fn answer_push_pull(
    mut stream: TcpStream,
    commands: &mpsc::Sender<Command>,
    limits: ExchangeLimits,
) -> Result<(), String> {
    let theirs = push_pull::read_state(&mut stream, limits)
        .await
        .map_err(|e| e.to_string())?;
    let ours = export_state(commands).await?;
    push_pull::write_state(&mut stream, &ours, limits)
        .await
        .map_err(|e| e.to_string())?;
    apply_state(commands, theirs).await.map(|_| ())
}

/// Asks the core for its full state.
pub(crate) async fn export_state(commands: &mpsc::Sender<Command>) -> Result<Vec<WireMember>, String> {
    let (reply, answer) = oneshot::channel();
    commands
        .send(Command::ExportState(reply))
        .await
        .map_err(|_| "gossip: stopped".to_string())?;
    answer.await.map_err(|_| "gossip: stopped".to_string())
}

/// Hands a peer's state to the core.
pub(crate) async fn apply_state(commands: &mpsc::Sender<Command>, members: Vec<WireMember>) -> Result<usize, String> {
    let (reply, answer) = oneshot::channel();
    commands
        .send(Command::ApplyState(members, reply))
        .await
        .map_err(|_| "gossip: stopped".to_string())?;
    answer.await.map_err(|_| "gossip: stopped".to_string())?
}

/// Push-pull with one peer: connect, exchange, merge.
pub(crate) async fn push_pull_with(
    peer: SocketAddr,
    commands: &mpsc::Sender<Command>,
    limits: ExchangeLimits,
) -> Result<usize, String> {
    let connect = tokio::time::timeout(Duration::from_millis(limits.timeout_ms), TcpStream::connect(peer));
    let mut stream = connect
        .await
        .map_err(|_| format!("dial tcp {peer}: i/o timeout"))?
        .map_err(|e| dial_error_text(peer, &e))?;
    let ours = export_state(commands).await?;
    let theirs = push_pull::exchange(&mut stream, &ours, limits)
        .await
        .map_err(|e| e.to_string())?;
    apply_state(commands, theirs).await
}

/// Go-style dial error text, as Consul prints it.
fn dial_error_text(peer: SocketAddr, error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => format!("dial tcp {peer}: connect: connection refused"),
        _ => format!("dial tcp {peer}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_dial_reads_like_go() {
        let peer: SocketAddr = "127.0.0.1:8301".parse().unwrap();
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            dial_error_text(peer, &refused),
            "dial tcp 127.0.0.1:8301: connect: connection refused"
        );
    }
}
