//! The `Agent` harness: one `proconsul agent` process (the control plane,
//! which re-executes itself as the data plane) on a loopback address of its
//! own, with default ports, killed on drop.

use std::fs::{self, File};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use tempfile::TempDir;

use super::dns;
use super::http::{self, Response, RESPONSE_TIMEOUT};
use super::process;
use super::run::BIN;

/// How long an agent may take to answer `GET /v1/status/leader`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a stopping agent may take to exit.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Grace period on drop between SIGTERM and SIGKILL.
const DROP_GRACE: Duration = Duration::from_secs(3);
/// Addresses one test process may hand out.
const ADDRESSES_PER_PROCESS_MAX: u32 = 250;

/// A loopback address no other agent of this run uses: `127.A.B.N` where
/// `A.B` comes from this test process's pid (so concurrent `cargo test`
/// runs do not collide) and `N` from a counter (so parallel tests in one
/// binary do not). Never `127.0.0.x`, where a developer's own agent lives.
pub fn fresh_loopback_ip() -> Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    assert!(
        n < ADDRESSES_PER_PROCESS_MAX,
        "more than {ADDRESSES_PER_PROCESS_MAX} agents in one test binary"
    );
    let pid = std::process::id();
    let a = 1 + (pid / 254) % 254;
    let b = 1 + pid % 254;
    Ipv4Addr::new(127, a as u8, b as u8, 2 + n as u8)
}

/// How to start an agent.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub ip: Ipv4Addr,
    /// Ports the tests talk to (what the flags or config files select).
    pub http_port: u16,
    pub dns_port: u16,
    /// `-data-dir`, when the agent is durable.
    pub data_dir: Option<PathBuf>,
    /// Everything after the binary name.
    pub args: Vec<String>,
}

impl AgentSpec {
    /// `proconsul agent -dev -client IP -bind IP`.
    pub fn dev() -> AgentSpec {
        let ip = fresh_loopback_ip();
        AgentSpec {
            ip,
            http_port: 8500,
            dns_port: 8600,
            data_dir: None,
            args: vec![
                "agent".into(),
                "-dev".into(),
                "-client".into(),
                ip.to_string(),
                "-bind".into(),
                ip.to_string(),
            ],
        }
    }

    /// `proconsul agent -server -bootstrap -data-dir DIR -node NAME -client IP -bind IP`.
    pub fn durable(data_dir: &Path, node: &str) -> AgentSpec {
        let ip = fresh_loopback_ip();
        AgentSpec {
            ip,
            http_port: 8500,
            dns_port: 8600,
            data_dir: Some(data_dir.to_path_buf()),
            args: vec![
                "agent".into(),
                "-server".into(),
                "-bootstrap".into(),
                format!("-data-dir={}", data_dir.display()),
                format!("-node={node}"),
                "-client".into(),
                ip.to_string(),
                "-bind".into(),
                ip.to_string(),
            ],
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> AgentSpec {
        self.args.push(arg.into());
        self
    }

    /// `-http-port P`.
    pub fn http_port(mut self, port: u16) -> AgentSpec {
        self.http_port = port;
        self.arg("-http-port").arg(port.to_string())
    }

    /// `-dns-port P`.
    pub fn dns_port(mut self, port: u16) -> AgentSpec {
        self.dns_port = port;
        self.arg("-dns-port").arg(port.to_string())
    }

    /// Tells the harness the HTTP port a config file selects (no flag added).
    pub fn expect_http_port(mut self, port: u16) -> AgentSpec {
        self.http_port = port;
        self
    }

    /// Starts the agent and waits until it is ready.
    #[track_caller]
    pub fn spawn(self) -> Agent {
        let mut agent = self.start();
        agent.wait_ready();
        agent
    }

    /// Starts the agent without waiting.
    pub fn start(self) -> Agent {
        let mut agent = Agent {
            spec: self,
            child: None,
            logs: tempfile::tempdir().expect("temp dir for agent logs"),
            generation: 0,
            seen_dataplanes: Vec::new(),
        };
        agent.start_control_plane();
        agent
    }
}

/// A running agent. Dropping it stops the control plane (SIGTERM, then
/// SIGKILL) and kills any data plane it left, each by PID.
pub struct Agent {
    pub spec: AgentSpec,
    child: Option<Child>,
    logs: TempDir,
    /// How many control planes this agent has started (log files are per start).
    generation: u32,
    seen_dataplanes: Vec<u32>,
}

impl Agent {
    pub fn ip(&self) -> Ipv4Addr {
        self.spec.ip
    }

    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.spec.ip), self.spec.http_port)
    }

    pub fn dns_addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.spec.ip), self.spec.dns_port)
    }

    /// `-http-addr` value for CLI commands.
    pub fn http_addr_flag(&self) -> String {
        format!("-http-addr={}", self.http_addr())
    }

    fn start_control_plane(&mut self) {
        assert!(self.child.is_none(), "control plane already running");
        self.generation += 1;
        let stdout = File::create(self.log_path("stdout")).expect("create stdout log");
        let stderr = File::create(self.log_path("stderr")).expect("create stderr log");
        let child = Command::new(BIN)
            .args(&self.spec.args)
            .current_dir(self.logs.path())
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {BIN} {:?}: {e}", self.spec.args));
        self.child = Some(child);
    }

    fn log_path(&self, stream: &str) -> PathBuf {
        self.logs.path().join(format!("{stream}.{}", self.generation))
    }

    /// What the current control plane printed on stdout so far.
    pub fn stdout(&self) -> String {
        fs::read_to_string(self.log_path("stdout")).unwrap_or_default()
    }

    /// What the current control plane printed on stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.log_path("stderr")).unwrap_or_default()
    }

    /// The end of both logs, for failure messages.
    pub fn logs_tail(&self) -> String {
        fn tail(s: String) -> String {
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        }
        format!(
            "agent {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.spec.args,
            tail(self.stdout()),
            tail(self.stderr())
        )
    }

    /// PID of the running control plane.
    pub fn control_pid(&self) -> u32 {
        self.child.as_ref().expect("control plane is running").id()
    }

    /// `<data_dir>/run`, for durable agents.
    pub fn run_dir(&self) -> Option<PathBuf> {
        self.spec.data_dir.as_ref().map(|d| d.join("run"))
    }

    /// The running data plane: from `<run_dir>/dataplane.pid` when there is
    /// one, else found by its command line (it names this agent's address).
    pub fn dataplane_pid(&self) -> Option<u32> {
        if let Some(run_dir) = self.run_dir() {
            if let Some(pid) = process::read_pid_file(&run_dir.join("dataplane.pid")) {
                if process::is_dataplane_of(pid, self.spec.ip) {
                    return Some(pid);
                }
            }
        }
        process::dataplanes_of(self.spec.ip).into_iter().next()
    }

    /// Waits (bounded) for a data plane to be running and returns its PID.
    #[track_caller]
    pub fn wait_dataplane_pid(&mut self, timeout: Duration) -> u32 {
        let pid = process::poll_until(timeout, Duration::from_millis(20), || self.dataplane_pid())
            .unwrap_or_else(|| panic!("no data plane running after {timeout:?}\n{}", self.logs_tail()));
        self.remember_dataplane(pid);
        pid
    }

    fn remember_dataplane(&mut self, pid: u32) {
        if !self.seen_dataplanes.contains(&pid) {
            self.seen_dataplanes.push(pid);
        }
    }

    /// Waits until `GET /v1/status/leader` answers 200 with a non-empty
    /// JSON string.
    #[track_caller]
    pub fn wait_ready(&mut self) {
        if let Err(why) = self.try_wait_ready(READY_TIMEOUT) {
            panic!("agent not ready: {why}\n{}", self.logs_tail());
        }
    }

    /// [`Agent::wait_ready`] without the panic.
    pub fn try_wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut last: String;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("control plane exited with {status} before it was ready"));
                }
            }
            match self.try_request("GET", "/v1/status/leader", &[], b"", Duration::from_secs(1)) {
                Ok(r) if r.status == 200 => match serde_json::from_slice::<serde_json::Value>(&r.body) {
                    Ok(serde_json::Value::String(s)) if !s.is_empty() => {
                        if let Some(pid) = self.dataplane_pid() {
                            self.remember_dataplane(pid);
                        }
                        return Ok(());
                    }
                    _ => last = format!("leader answer {:?}", r.text()),
                },
                Ok(r) => last = format!("leader status {} body {:?}", r.status, r.text()),
                Err(e) => last = format!("leader request failed: {e}"),
            }
            if Instant::now() >= deadline {
                return Err(format!("not ready after {timeout:?}; last: {last}"));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// One HTTP request; `Err` on connection or protocol failure.
    pub fn try_request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout: Duration,
    ) -> io::Result<Response> {
        http::request(self.http_addr(), method, target, headers, body, timeout)
    }

    /// One HTTP request; panics (with the agent's logs) if it gets no answer.
    #[track_caller]
    pub fn request(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        self.request_timeout(method, target, headers, body, RESPONSE_TIMEOUT)
    }

    /// [`Agent::request`] with a custom response timeout.
    #[track_caller]
    pub fn request_timeout(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout: Duration,
    ) -> Response {
        self.try_request(method, target, headers, body, timeout)
            .unwrap_or_else(|e| panic!("{method} {target}: no answer: {e}\n{}", self.logs_tail()))
    }

    #[track_caller]
    pub fn get(&self, target: &str) -> Response {
        self.request("GET", target, &[], b"")
    }

    #[track_caller]
    pub fn put(&self, target: &str, body: &[u8]) -> Response {
        self.request("PUT", target, &[], body)
    }

    #[track_caller]
    pub fn delete(&self, target: &str) -> Response {
        self.request("DELETE", target, &[], b"")
    }

    /// `PUT /v1/kv/<key>` that must answer `200 true`; returns the key's
    /// ModifyIndex read back afterwards.
    #[track_caller]
    pub fn kv_put(&self, key: &str, value: &[u8]) -> u64 {
        let r = self.put(&format!("/v1/kv/{key}"), value);
        r.expect_status(200);
        assert_eq!(
            r.json(),
            serde_json::Value::Bool(true),
            "PUT {key} answered {:?}",
            r.text()
        );
        self.kv_modify_index(key)
    }

    /// The ModifyIndex of an existing key.
    #[track_caller]
    pub fn kv_modify_index(&self, key: &str) -> u64 {
        let r = self.get(&format!("/v1/kv/{key}"));
        r.expect_status(200);
        r.json()[0]["ModifyIndex"]
            .as_u64()
            .unwrap_or_else(|| panic!("no ModifyIndex for {key} in {}", r.text()))
    }

    /// One DNS query over UDP; panics if there is no answer.
    #[track_caller]
    pub fn dns_udp(&self, name: &str, rtype: RecordType) -> Message {
        dns::udp_exchange(self.dns_addr(), &dns::query(name, rtype, None), dns::DNS_TIMEOUT)
            .unwrap_or_else(|e| panic!("DNS/UDP {name} {rtype}: {e}\n{}", self.logs_tail()))
    }

    /// One DNS query over TCP; panics if there is no answer.
    #[track_caller]
    pub fn dns_tcp(&self, name: &str, rtype: RecordType) -> Message {
        dns::tcp_exchange(self.dns_addr(), &dns::query(name, rtype, None), dns::DNS_TIMEOUT)
            .unwrap_or_else(|e| panic!("DNS/TCP {name} {rtype}: {e}\n{}", self.logs_tail()))
    }

    /// Waits (bounded) for the control plane to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM to the control plane; panics (after killing it) if it does
    /// not exit within `timeout`.
    #[track_caller]
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(pid) = self.dataplane_pid() {
            self.remember_dataplane(pid);
        }
        let pid = self.control_pid();
        process::send_signal(pid, libc::SIGTERM);
        match self.wait_exit(timeout) {
            Some(status) => status,
            None => {
                let tail = self.logs_tail();
                self.kill_control_plane();
                panic!("control plane ignored SIGTERM for {timeout:?}\n{tail}");
            }
        }
    }

    /// `kill -9` of the control plane (the data plane is left alone).
    pub fn kill_control_plane(&mut self) {
        if let Some(pid) = self.dataplane_pid() {
            self.remember_dataplane(pid);
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a new control plane with the same spec (same address, same
    /// data dir) and waits until it is ready.
    #[track_caller]
    pub fn respawn(&mut self) {
        self.start_control_plane();
        self.wait_ready();
    }

    /// Data planes this harness has seen that are still running.
    pub fn live_dataplanes(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .seen_dataplanes
            .iter()
            .copied()
            .filter(|p| process::is_dataplane_of(*p, self.spec.ip))
            .collect();
        for pid in process::dataplanes_of(self.spec.ip) {
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
        pids
    }

    fn stop_everything(&mut self) {
        if let Some(pid) = self.dataplane_pid() {
            self.remember_dataplane(pid);
        }
        if let Some(child) = self.child.as_ref() {
            process::send_signal(child.id(), libc::SIGTERM);
        }
        if self.wait_exit(DROP_GRACE).is_none() {
            self.kill_control_plane();
        }
        for pid in self.live_dataplanes() {
            if !process::wait_pid_gone(pid, Duration::from_millis(500)) {
                process::kill9(pid);
                process::wait_pid_gone(pid, Duration::from_secs(2));
            }
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop_everything();
    }
}
