//! One serving thread: its own monoio runtime (io_uring, or the epoll
//! driver when io_uring is unavailable or its ring cannot be created), its
//! own `SO_REUSEPORT` sockets, its own [`Core`]; it installs each version
//! the applier publishes and stops on shutdown.

use std::future::{poll_fn, Future};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use monoio::time::TimeDriver;
use monoio::{FusionRuntime, IoUringDriver, LegacyDriver, RuntimeBuilder};

use crate::blocking::parking::WAKE_BATCH_MAX;
use crate::blocking::wake_pacing::{DnsLoad, WakeDecision, WakePacing};
use crate::core::Core;
use crate::replica::handoff::Hub;
use crate::runtime::client_conns::{ClientConns, ConnSlot};
use crate::runtime::core_inner::CoreInner;
use crate::runtime::sockets::{self, ListenPlan};

/// io_uring submission queue entries per core.
pub const URING_ENTRIES: u32 = 1024;
/// Setting this environment variable to `legacy` forces the epoll driver.
pub const DRIVER_ENV: &str = "PROCONSUL_DATAPLANE_DRIVER";
/// Pause after an accept error (EMFILE...) so it cannot spin the core.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// What one serving thread needs.
pub struct CoreConfig {
    /// Core index.
    pub id: u32,
    /// The hand-off from the applier.
    pub hub: Arc<Hub>,
    /// Addresses to bind.
    pub plan: ListenPlan,
    /// `<run_dir>/control.sock`.
    pub socket_path: PathBuf,
    /// Parked blocking queries allowed on this core.
    pub parked_max: usize,
    /// Concurrent HTTP connections per client IP (0 = unlimited).
    pub http_max_conns_per_client: u32,
    /// Open HTTP connections per client IP, shared by every core; enforces
    /// `http_max_conns_per_client` on accept.
    pub client_conns: Arc<ClientConns>,
    /// `limits.wake_hold_ms_max`: longest a parked query's wake-up is
    /// held while DNS datagrams wait (0 = off).
    pub wake_hold_ms_max: u64,
}

/// This core's std sockets, bound before the runtime starts.
struct CoreSockets {
    http: Vec<TcpListener>,
    dns_udp: Vec<UdpSocket>,
    dns_tcp: Vec<TcpListener>,
}

fn bind_all(plan: &ListenPlan) -> Result<CoreSockets, sockets::BindError> {
    Ok(CoreSockets {
        http: plan
            .http
            .iter()
            .map(|a| sockets::tcp_listener(*a))
            .collect::<Result<_, _>>()?,
        dns_udp: plan
            .dns
            .iter()
            .map(|a| sockets::udp_socket(*a))
            .collect::<Result<_, _>>()?,
        dns_tcp: plan
            .dns
            .iter()
            .map(|a| sockets::tcp_listener(*a))
            .collect::<Result<_, _>>()?,
    })
}

type CoreRuntime = FusionRuntime<TimeDriver<IoUringDriver>, TimeDriver<LegacyDriver>>;

/// Builds this thread's runtime: io_uring when available, else epoll.
fn build_runtime(id: u32) -> std::io::Result<CoreRuntime> {
    let forced_legacy = std::env::var(DRIVER_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("legacy"));
    if !forced_legacy && monoio::utils::detect_uring() {
        match RuntimeBuilder::<IoUringDriver>::new()
            .with_entries(URING_ENTRIES)
            .enable_timer()
            .build()
        {
            Ok(rt) => {
                tracing::debug!(core = id, "io_uring driver");
                return Ok(rt.into());
            }
            Err(e) => tracing::warn!(core = id, error = %e, "io_uring unavailable; using the epoll driver"),
        }
    }
    let rt = RuntimeBuilder::<LegacyDriver>::new().enable_timer().build()?;
    tracing::debug!(core = id, "epoll driver");
    Ok(rt.into())
}

/// Runs one serving thread until shutdown. Reports `Ok(id)` once its
/// sockets are bound and it is serving, or an error.
pub fn core_thread(config: CoreConfig, started: Sender<Result<u32, String>>) {
    let id = config.id;
    let sockets = match bind_all(&config.plan) {
        Ok(s) => s,
        Err(e) => {
            let _ = started.send(Err(e.to_string()));
            return;
        }
    };
    let mut runtime = match build_runtime(id) {
        Ok(rt) => rt,
        Err(e) => {
            let _ = started.send(Err(format!("core {id}: cannot build a runtime: {e}")));
            return;
        }
    };
    runtime.block_on(serve_core(config, sockets, started));
}

async fn serve_core(config: CoreConfig, sockets: CoreSockets, started: Sender<Result<u32, String>>) {
    let id = config.id;
    let hub = config.hub.clone();
    let Some(first) = hub.latest() else {
        let _ = started.send(Err(format!("core {id}: no version published")));
        return;
    };
    let core = Core::new(
        CoreInner::new(id, hub.clone(), &first, config.socket_path.clone(), config.parked_max)
            .with_http_max_conns_per_client(config.http_max_conns_per_client)
            .with_wake_hold_ms_max(config.wake_hold_ms_max),
    );
    if let Err(e) = spawn_servers(&core, sockets, &config.client_conns) {
        let _ = started.send(Err(format!("core {id}: {e}")));
        return;
    }
    let _ = started.send(Ok(id));
    follow_versions(&core, &hub).await;
    tracing::debug!(core = id, "serving thread stopping");
}

/// What the version follower does next.
enum Turn {
    /// Install what the applier published (and queue the wake-ups).
    Install,
    /// Wake the next batch of a wake storm.
    Release,
    /// Answer parked queries whose deadline passed.
    Expire,
    /// Held wake-ups' recheck time came: decide again.
    Recheck,
}

/// Wake pacing decisions between two debug lines with its counters.
const PACING_LOG_EVERY: u64 = 4_096;

/// A sleep armed at an instant, re-armed only when the instant changes.
type ArmedSleep = Option<(Instant, Pin<Box<monoio::time::Sleep>>)>;

/// Installs every version the applier publishes on `core` until shutdown;
/// releases the wake backlog of a large wake storm one batch
/// ([`WAKE_BATCH_MAX`]) per turn, yielding between batches so the core's
/// other tasks (DNS, plain reads) run in between (issue #4 item 4); and is
/// the core's one timer for parked queries' deadlines (one sleep until the
/// earliest, not one timer per query).
pub(crate) async fn follow_versions(core: &Core, hub: &Hub) {
    let feed = hub.feed(core.id() as usize);
    // Anything published before this core started listening.
    core.inner().install_published();
    let mut timer: ArmedSleep = None;
    let mut pacing = WakePacing::new(core.inner().wake_hold_ms_max());
    let mut hold_timer: ArmedSleep = None;
    while !hub.is_shutdown() {
        let turn = {
            let mut signalled = pin!(feed.signalled());
            poll_fn(|cx| {
                if signalled.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Turn::Install);
                }
                if core.inner().poll_wake_backlog(cx).is_ready() {
                    if let Poll::Ready(turn) = pace_wakes(core, &mut pacing, &mut hold_timer, cx) {
                        return Poll::Ready(turn);
                    }
                } else {
                    pacing.drained();
                    hold_timer = None;
                }
                poll_deadline(core, &mut timer, cx)
            })
            .await
        };
        if hub.is_shutdown() {
            break;
        }
        match turn {
            Turn::Install => core.inner().install_published(),
            Turn::Release => {
                core.inner().release_wake_batch(WAKE_BATCH_MAX);
                YieldNow { yielded: false }.await;
            }
            Turn::Expire => {
                timer = None;
                if core.inner().expire_parked(Instant::now(), WAKE_BATCH_MAX) == WAKE_BATCH_MAX {
                    YieldNow { yielded: false }.await;
                }
            }
            Turn::Recheck => hold_timer = None,
        }
    }
    feed.clear_waker();
}

/// With wake-ups queued: `Release` now, or hold them (wake pacing, issue
/// #4) with `hold_timer` armed at the recheck time (`Recheck` once it has
/// passed). The bound is checked on this turn with the follower's own
/// timer: no timer per query, and a held batch goes out by the bound even
/// if nothing else happens.
fn pace_wakes(core: &Core, pacing: &mut WakePacing, hold_timer: &mut ArmedSleep, cx: &mut Context<'_>) -> Poll<Turn> {
    if pacing.is_off() {
        return Poll::Ready(Turn::Release);
    }
    let dns = DnsLoad {
        datagrams_waiting: core.inner().dns_datagrams_waiting(),
        datagrams_received: core.inner().dns_datagrams_received(),
    };
    let decision = pacing.decide(Instant::now(), dns);
    let stats = pacing.stats();
    if (stats.held + stats.delivered_at_bound + stats.delivered_dns_idle).is_multiple_of(PACING_LOG_EVERY) {
        tracing::debug!(
            core = core.id(),
            held = stats.held,
            delivered_at_bound = stats.delivered_at_bound,
            delivered_dns_idle = stats.delivered_dns_idle,
            "wake pacing"
        );
    }
    match decision {
        WakeDecision::Deliver => {
            *hold_timer = None;
            Poll::Ready(Turn::Release)
        }
        WakeDecision::Hold { recheck_at } => poll_sleep_until(hold_timer, recheck_at, cx).map(|()| Turn::Recheck),
    }
}

/// Polls `slot`'s sleep, (re-)armed at `at` when it was armed elsewhere.
fn poll_sleep_until(slot: &mut ArmedSleep, at: Instant, cx: &mut Context<'_>) -> Poll<()> {
    if slot.as_ref().is_none_or(|(armed, _)| *armed != at) {
        let sleep = monoio::time::sleep_until(monoio::time::Instant::from_std(at));
        *slot = Some((at, Box::pin(sleep)));
    }
    match slot.as_mut() {
        Some((_, sleep)) => sleep.as_mut().poll(cx),
        None => Poll::Ready(()),
    }
}

/// Ready when the earliest parked deadline has passed; otherwise keeps
/// `timer` armed at it (re-armed when the earliest deadline changes).
fn poll_deadline(core: &Core, timer: &mut ArmedSleep, cx: &mut Context<'_>) -> Poll<Turn> {
    let Some(at) = core.inner().next_park_deadline() else {
        *timer = None;
        return Poll::Pending;
    };
    if at <= Instant::now() {
        return Poll::Ready(Turn::Expire);
    }
    poll_sleep_until(timer, at, cx).map(|()| Turn::Expire)
}

/// Pending once (re-scheduling itself at the back of the run queue), then
/// ready: lets every task woken before it run first.
struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn spawn_servers(core: &Rc<Core>, sockets: CoreSockets, client_conns: &Arc<ClientConns>) -> std::io::Result<()> {
    for listener in sockets.http {
        let listener = monoio::net::TcpListener::from_std(listener)?;
        monoio::spawn(accept_http(core.clone(), listener, client_conns.clone()));
    }
    for socket in sockets.dns_udp {
        if let Err(e) = core.inner().watch_dns_socket(&socket) {
            tracing::warn!(core = core.id(), error = %e, "wake pacing cannot see this dns socket");
        }
        let socket = monoio::net::udp::UdpSocket::from_std(socket)?;
        monoio::spawn(crate::dns::udp::serve(core.clone(), socket));
    }
    for listener in sockets.dns_tcp {
        let listener = monoio::net::TcpListener::from_std(listener)?;
        monoio::spawn(crate::dns::tcp::serve(core.clone(), listener));
    }
    Ok(())
}

/// Accepts HTTP connections: each is counted against its client IP's
/// limit for as long as it is open; one over the limit is answered 429
/// and closed instead of being served.
async fn accept_http(core: Rc<Core>, listener: monoio::net::TcpListener, client_conns: Arc<ClientConns>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => match client_conns.admit(peer.ip()) {
                Ok(slot) => {
                    monoio::spawn(serve_counted(core.clone(), stream, peer, slot));
                }
                Err(refused) => {
                    tracing::debug!(core = core.id(), %peer, reason = %refused, "http connection refused");
                    monoio::spawn(crate::http::refuse_connection(stream));
                }
            },
            Err(e) => {
                tracing::warn!(core = core.id(), error = %e, "http accept failed");
                monoio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// Serves one admitted connection; its count is released when it closes.
async fn serve_counted(core: Rc<Core>, stream: monoio::net::TcpStream, peer: SocketAddr, slot: ConnSlot) {
    crate::http::serve_connection(core, stream, peer).await;
    drop(slot);
}

/// The listen addresses a core serves (for logs).
pub fn describe(plan: &ListenPlan) -> String {
    let http: Vec<String> = plan.http.iter().map(SocketAddr::to_string).collect();
    let dns: Vec<String> = plan.dns.iter().map(SocketAddr::to_string).collect();
    format!("http [{}] dns [{}]", http.join(", "), dns.join(", "))
}
