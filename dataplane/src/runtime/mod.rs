//! The data-plane process: threads, sockets, the epoll fallback.
//!
//! [`run`] is the process's main for `proconsul __dataplane <launch>`:
//! logging, signal handlers, the descriptor limit, a bind probe of every
//! listen address, the pid file, the replica applier thread (and a bounded
//! wait for its first version), then one serving thread per core. It
//! returns the exit code once a shutdown was requested (SIGTERM/SIGINT,
//! `ToDataplane::Shutdown`, or the control plane leaving in dev mode).

pub mod client_conns;
mod core_inner;
pub mod dns_queue_probe;
pub mod logging;
pub mod rlimit;
pub mod serve;
pub mod signals;
pub mod sockets;

pub use core_inner::{CoreInner, HTTP_MAX_CONNS_PER_CLIENT_DEFAULT, READ_YOUR_WRITES_WAIT};

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use proconsul_shared::agent_info::DataplaneLaunch;

use crate::replica::{spawn_applier, ApplierConfig, Hub};

/// Longest wait for the first snapshot before giving up.
pub const FIRST_VERSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for every serving thread to bind and start.
pub const CORES_START_TIMEOUT: Duration = Duration::from_secs(10);
/// Most serving threads.
pub const THREADS_MAX: usize = 256;
/// How often the main thread looks at signals and thread health.
const SUPERVISE_TICK: Duration = Duration::from_millis(20);

/// Why the data plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    /// A listen address cannot be bound.
    Bind(#[from] sockets::BindError),
    #[error("installing signal handlers: {0}")]
    /// Signal handlers could not be installed.
    Signals(nix::Error),
    #[error("writing the pid file {path}: {source}")]
    /// The pid file could not be written.
    PidFile {
        /// Its path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    #[error("starting a thread: {0}")]
    /// A thread could not be started.
    Thread(std::io::Error),
    #[error("no snapshot from the control plane at {0} within {FIRST_VERSION_TIMEOUT:?}")]
    /// The control plane sent no snapshot in time.
    NoSnapshot(PathBuf),
    #[error("{0}")]
    /// A serving thread failed to start.
    Core(String),
}

/// Runs the data plane until shutdown. Returns the process exit code.
pub fn run(launch: DataplaneLaunch) -> i32 {
    logging::init(&launch.log_level);
    match start_and_serve(&launch) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = %e, "data plane failed to start");
            eprintln!("Error starting agent: {e}");
            1
        }
    }
}

/// The number of serving threads for `requested` (0 = one per core).
pub fn thread_count(requested: usize) -> usize {
    let n = if requested == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        requested
    };
    n.clamp(1, THREADS_MAX)
}

fn start_and_serve(launch: &DataplaneLaunch) -> Result<i32, StartError> {
    signals::install().map_err(StartError::Signals)?;
    let nofile = rlimit::raise_nofile();
    let plan = sockets::probe(&launch.http_addrs, &launch.dns_addrs)?;
    let run_dir = PathBuf::from(&launch.run_dir);
    let pid_path = run_dir.join("dataplane.pid");
    let _pid_file = proconsul_shared::pid_file::PidFile::create(&pid_path, std::process::id()).map_err(|source| {
        StartError::PidFile {
            path: pid_path.clone(),
            source,
        }
    })?;
    let socket_path = run_dir.join("control.sock");
    let threads = thread_count(launch.threads);
    let hub = Hub::new(threads);

    let (first_tx, first_rx) = mpsc::sync_channel(1);
    let applier = spawn_applier(
        ApplierConfig {
            socket_path: socket_path.clone(),
            launch_fingerprint: launch.fingerprint(),
            exit_with_control_plane: launch.exit_with_control_plane,
        },
        hub.clone(),
        first_tx,
    )
    .map_err(StartError::Thread)?;
    let mut supervisor = Supervisor {
        hub: hub.clone(),
        socket_path: socket_path.clone(),
        applier: Some(applier),
        cores: Vec::new(),
    };

    match supervisor.wait_first_version(&first_rx) {
        Ok(true) => {}
        Ok(false) => return Ok(supervisor.stop()),
        Err(e) => {
            supervisor.stop();
            return Err(e);
        }
    }

    let parked_max = rlimit::parked_per_core(nofile);
    let client_conns = client_conns::ClientConns::new(launch.http_max_conns_per_client);
    let (started_tx, started_rx) = mpsc::channel();
    for id in 0..threads {
        let config = serve::CoreConfig {
            id: id as u32,
            hub: hub.clone(),
            plan: plan.clone(),
            socket_path: socket_path.clone(),
            parked_max,
            http_max_conns_per_client: launch.http_max_conns_per_client,
            wake_hold_ms_max: launch.wake_hold_ms_max,
            client_conns: client_conns.clone(),
        };
        let started = started_tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("proconsul-core-{id}"))
            .spawn(move || serve::core_thread(config, started))
            .map_err(StartError::Thread)?;
        supervisor.cores.push(handle);
    }
    drop(started_tx);
    if let Err(e) = supervisor.wait_cores_started(&started_rx, threads) {
        hub.request_shutdown(1);
        supervisor.stop();
        return Err(e);
    }
    tracing::info!(threads, parked_max, listen = %serve::describe(&plan), "data plane serving");
    Ok(supervisor.supervise())
}

/// The threads the main thread watches over.
struct Supervisor {
    hub: std::sync::Arc<Hub>,
    socket_path: PathBuf,
    applier: Option<JoinHandle<()>>,
    cores: Vec<JoinHandle<()>>,
}

impl Supervisor {
    /// Waits for the applier's first version. `Ok(false)` means a shutdown
    /// arrived first.
    fn wait_first_version(&self, first: &mpsc::Receiver<()>) -> Result<bool, StartError> {
        let started = Instant::now();
        loop {
            if signals::stop_requested() {
                self.hub.request_shutdown(0);
            }
            if self.hub.is_shutdown() {
                return Ok(false);
            }
            match first.recv_timeout(SUPERVISE_TICK) {
                Ok(()) => return Ok(true),
                Err(mpsc::RecvTimeoutError::Timeout) if started.elapsed() < FIRST_VERSION_TIMEOUT => {}
                Err(_) => {
                    self.hub.request_shutdown(1);
                    return Err(StartError::NoSnapshot(self.socket_path.clone()));
                }
            }
        }
    }

    fn wait_cores_started(
        &self,
        started: &mpsc::Receiver<Result<u32, String>>,
        threads: usize,
    ) -> Result<(), StartError> {
        let deadline = Instant::now() + CORES_START_TIMEOUT;
        for _ in 0..threads {
            let left = deadline.saturating_duration_since(Instant::now());
            match started.recv_timeout(left) {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(StartError::Core(e)),
                Err(_) => return Err(StartError::Core("a serving thread did not start in time".into())),
            }
        }
        Ok(())
    }

    /// Watches signals and threads until a shutdown; returns the exit code.
    fn supervise(mut self) -> i32 {
        while !self.hub.is_shutdown() {
            if signals::stop_requested() {
                tracing::info!("stop signal received; shutting down");
                self.hub.request_shutdown(0);
                break;
            }
            if self.cores.iter().any(JoinHandle::is_finished) {
                tracing::error!("a serving thread stopped unexpectedly; shutting down");
                self.hub.request_shutdown(1);
                break;
            }
            if self.applier.as_ref().is_some_and(JoinHandle::is_finished) && !self.hub.is_shutdown() {
                tracing::error!("the replica applier stopped unexpectedly; shutting down");
                self.hub.request_shutdown(1);
                break;
            }
            std::thread::sleep(SUPERVISE_TICK);
        }
        let code = self.stop();
        tracing::info!(code, "data plane stopped");
        code
    }

    /// Requests shutdown (if not yet), joins every thread, returns the
    /// exit code.
    fn stop(&mut self) -> i32 {
        self.hub.request_shutdown(0);
        for core in self.cores.drain(..) {
            if core.join().is_err() {
                tracing::error!("a serving thread panicked");
            }
        }
        if let Some(applier) = self.applier.take() {
            if applier.join().is_err() {
                tracing::error!("the replica applier panicked");
            }
        }
        self.hub.exit_code()
    }
}

#[cfg(test)]
mod fairness_tests;
#[cfg(test)]
mod test_control_plane;
#[cfg(test)]
pub(crate) mod test_core;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod wake_pacing_tests;

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn thread_count_defaults_to_the_cores_and_is_bounded() {
        assert!(thread_count(0) >= 1);
        assert_eq!(thread_count(3), 3);
        assert_eq!(thread_count(100_000), THREADS_MAX);
    }
}
